package child

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/vrrp"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// vrrpServer runs the VRRP engine in the vrrp child.
type vrrpServer struct {
	childpb.UnimplementedVRRPServer
	log  hclog.Logger
	work work
	out  *fanout[*childpb.Transition]
	prio *scheduling // vrrp_priority, vrrp_rt_priority ...
	// keep is --dont-release-vrrp: at stop the instances are left as they are.
	keep bool

	// Transitions before core's first Transitions call are kept for it: the engine starts
	// in Start, and core subscribes only after Start returns, so the first transitions
	// (INIT to BACKUP at once, say) would otherwise be lost, and their notify actions too.
	tmu        sync.Mutex
	early      *queue[*childpb.Transition]
	subscribed bool

	mu  sync.Mutex
	eng *vrrp.Engine
	// checks are the checks the configuration's instances and sync groups track: the only
	// ones SetCheck takes a state of. Set with the engine's configuration, under mu.
	checks map[string]bool
	// checkOrder is the order of each check's state that vrrp last took: core replays
	// every state after a reload or a restart of this child while new ones keep coming,
	// and an older one must not win (see childpb.CheckState). Guarded by setMu.
	checkOrder map[string]childpb.Order
	setMu      sync.Mutex // one SetCheck at a time, so that the order above and the post agree

	// demoted is the set of demoted instances core last sent (SetDemoted), kept for the
	// engine that Start makes: core sends it before Start. Guarded by mu; demMu takes
	// SetDemoted calls one at a time, so that core's last set is the one that holds.
	demoted []string
	demMu   sync.Mutex

	metrics childMetrics // the registry core's Metrics call gathers (metrics.go)

	// bgp announces the instances' addresses over BGP (bgp.go).
	bgp bgpState
}

// maxPending is how many transitions a subscriber (or core, before it subscribes) may have
// pending before one supersedes the pending one of its instance: each transition runs
// notify actions, so they are all kept while that stays bounded.
const maxPending = 1024

func newVRRPServer(log hclog.Logger, o Options) *vrrpServer {
	out := newFanout(transitionKey, maxPending)
	return &vrrpServer{log: log, out: out, early: out.newQueue(), prio: newScheduling(log, "vrrp", false), keep: o.DontReleaseVRRP}
}

// transitionKey is what a transition supersedes, once a subscriber has too many pending:
// the earlier transition of its instance (the newest says the state it is in now), but
// never a state change for a MASTER_RX_LOWER_PRI event, or the other way round.
func transitionKey(t *childpb.Transition) string {
	if t.To == fsm.MasterRxLowerPri {
		return t.Instance + "\x00" + t.To
	}
	return t.Instance
}

// parseChildConfig reads the configuration core sent. Core validated it already, so an
// error here means core and child disagree, which restarting cannot fix.
func parseChildConfig(req *childpb.StartRequest) (*config.Config, error) {
	cfg, ds := config.Parse(req.ConfigName, []byte(req.ConfigText), config.Options{DisableIncludes: true, Places: placesOf(req)})
	if ds.HasErrors() {
		return nil, status.Errorf(codes.InvalidArgument, "configuration: %v", ds.Errors())
	}
	return cfg, nil
}

func (s *vrrpServer) Start(ctx context.Context, req *childpb.StartRequest) (*childpb.StartResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil {
		return nil, status.Error(codes.FailedPrecondition, "already started")
	}
	// The engine opens its sockets here, so that a missing privilege or interface is
	// reported to core by Start itself.
	eng, err := vrrp.New(ctx, cfg, s.log)
	if err != nil {
		if isPermission(err) {
			return nil, status.Errorf(codes.PermissionDenied, "%v", err)
		}
		// Anything else (an interface that does not exist yet ...) may pass: core retries.
		return nil, status.Errorf(codes.Unavailable, "%v", err)
	}
	// Scheduling as keepalived sets it: once the engine is ready, before its threads start
	// work, and while the process may still raise its priority (CAP_SYS_NICE, CAP_IPC_LOCK).
	prio := cfg.Global.VRRPProcess
	s.prio.apply(prio)
	// The sockets are open and netlink is ready: from here on the process keeps only
	// CAP_NET_ADMIN and CAP_NET_RAW, so a bug in it cannot do anything else as root; and,
	// when the configuration sets a priority, what a reload needs to change or undo it (and
	// locked memory needs CAP_IPC_LOCK for as long as it stays locked: see setNoSwap).
	if err := dropCapabilities(append(slices.Clone(vrrpCaps), permitted(PriorityCaps(prio))...)); err != nil {
		s.log.Warn("running with all of root's capabilities", "reason", err)
	}
	eng.OnTransition(func(name string, t fsm.Transition) {
		s.transition(eng, name, t)
		if a := s.announcer(); a != nil {
			a.Changed()
		}
	})
	eng.OnLowerPriority(func(name string, h fsm.LowerPriorityHeard) {
		// Core tells it from a state change by its To (notify.MasterRxLowerPri).
		s.send(eng, name, &childpb.Transition{Instance: name, From: fsm.Master.String(), To: fsm.MasterRxLowerPri,
			Reason: fmt.Sprintf("advert from %s with priority %d", h.From, h.Priority), UnixNano: time.Now().UnixNano()})
	})
	if s.keep {
		eng.KeepOnStop()
	}
	// Before the units start: a demoted instance never goes MASTER, even for a moment.
	eng.SetDemoted(s.demoted)
	s.eng, s.checks = eng, trackedChecks(cfg)
	s.bgp.mu.Lock()
	s.bgp.cur.Store(s.startBGP(ctx, cfg, eng))
	s.bgp.mu.Unlock()
	s.work.start(func(ctx context.Context) {
		if err := eng.Run(ctx); err != nil {
			s.log.Error("VRRP engine stopped", "error", err)
		}
	})
	return &childpb.StartResponse{}, nil
}

// Reload applies a new configuration to the running engine (vrrp.Engine.Reload): what
// kept its identity keeps its state.
func (s *vrrpServer) Reload(ctx context.Context, req *childpb.StartRequest) (*childpb.ReloadResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	eng := s.eng
	s.mu.Unlock()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "not started")
	}
	res, err := eng.Reload(ctx, cfg)
	if errors.Is(err, vrrp.ErrNotApplied) {
		// The engine still runs the old instances: they keep the checks they track.
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	// A priority added by the reload needs what the process kept at Start: without it, the
	// kernel refuses it and apply says so, naming the keyword.
	s.prio.apply(cfg.Global.VRRPProcess)
	// Even a reload that failed in part runs the new configuration's instances.
	s.reloadBGP(ctx, cfg, eng)
	checks := trackedChecks(cfg)
	s.mu.Lock()
	s.checks = checks
	s.mu.Unlock()
	// What is kept of checks stays within the tracked ones.
	s.setMu.Lock()
	for name := range s.checkOrder {
		if !checks[name] {
			delete(s.checkOrder, name)
		}
	}
	s.setMu.Unlock()
	out := &childpb.ReloadResponse{Kept: res.Kept, Changed: res.Changed, Added: res.Added, Removed: res.Removed, Restarted: res.Restarted}
	if err != nil {
		// The rest of the reload applied; gRPC carries no response with an error, so the
		// message says what did.
		return nil, status.Errorf(codes.Aborted, "%v (applied otherwise: kept %v, changed %v, added %v, removed %v, restarted %v)",
			err, res.Kept, res.Changed, res.Added, res.Removed, res.Restarted)
	}
	s.log.Info("reloaded", "kept", len(res.Kept), "changed", res.Changed, "added", res.Added, "removed", res.Removed, "restarted", res.Restarted)
	return out, nil
}

// isPermission tells a missing privilege (not root, no CAP_NET_ADMIN/CAP_NET_RAW), which no
// restart can cure.
func isPermission(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

// transition reports one state change to core, with what notify actions pass on: the
// group, the priority and the VIPs. The priority is the one the instance last published,
// which a transition caused by a priority change (tracking) has not caught up with yet.
func (s *vrrpServer) transition(eng *vrrp.Engine, name string, t fsm.Transition) {
	s.send(eng, name, &childpb.Transition{Instance: name, From: t.From.String(), To: t.To.String(), Reason: t.Reason, UnixNano: time.Now().UnixNano()})
}

// send completes tr with the instance's group, priority and VIPs and passes it to core.
func (s *vrrpServer) send(eng *vrrp.Engine, name string, tr *childpb.Transition) {
	if st, ok := eng.StatusOf(name); ok {
		tr.Group, tr.Priority, tr.Vips = st.Group, int32(st.EffectivePriority), st.VIPs
		if st.EffectivePriority == 0 && tr.To != fsm.Fault.String() {
			// Nothing published yet (the first transition, at start): the configured one.
			tr.Priority = int32(st.Priority)
		}
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.subscribed {
		s.early.push(tr)
		return
	}
	s.out.publish(tr)
}

func (s *vrrpServer) Transitions(_ *childpb.Empty, srv childpb.VRRP_TransitionsServer) error {
	s.tmu.Lock()
	early, left := s.early.take()
	if left > 0 {
		s.log.Warn("core subscribed late; of the transitions before, only the newest of each instance was kept for it", "left_out", left)
	}
	q := s.out.subscribe(early)
	s.subscribed = true
	s.tmu.Unlock()
	return stream(srv.Context(), s.out, q, srv.Send, s.log)
}

// SetCheck applies a check's state, unless a newer state of the check was applied already
// (core's replay racing a change: see childpb.CheckState), or refuses it (admitCheck).
func (s *vrrpServer) SetCheck(ctx context.Context, c *childpb.CheckState) (*childpb.Empty, error) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	eng, checks := s.eng, s.checks
	s.mu.Unlock()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "not started")
	}
	apply, dynamic, err := s.admitCheck(c, checks)
	if err != nil || !apply {
		return &childpb.Empty{}, err
	}
	eng.SetCheck(ctx, c.Name, c.Up, dynamic)
	return &childpb.Empty{}, nil
}

// admitCheck decides on a check state from core, under setMu: it refuses one of a check that
// no instance tracks (NotFound: core sends the states of a check a reload added before it
// reloads this child, and all of them again after), one without its number, and one with a
// weight beyond what a priority can take (InvalidArgument), so that none of them is applied
// or kept; it reports whether the state is newer than the check's last one (apply), and
// then takes its number, and the dynamic weight to apply.
func (s *vrrpServer) admitCheck(c *childpb.CheckState, checks map[string]bool) (apply bool, dynamic *int, err error) {
	switch {
	case !checks[c.GetName()]:
		return false, nil, status.Errorf(codes.NotFound, "check %q: no instance or sync group tracks it", checksched.Message(c.GetName()))
	case c.GetEpoch() == 0 || c.GetSeq() == 0:
		return false, nil, status.Errorf(codes.InvalidArgument, "check %s: a state without its number (epoch %d, seq %d)", c.GetName(), c.GetEpoch(), c.GetSeq())
	case c.Weight != nil && !checksched.ValidWeight(int64(c.GetWeight())):
		return false, nil, status.Errorf(codes.InvalidArgument, "check %s: weight %d, beyond %d..%d", c.GetName(), c.GetWeight(), -checksched.MaxWeight, checksched.MaxWeight)
	}
	if last, ok := s.checkOrder[c.Name]; ok && c.Order().Before(last) {
		return false, nil, nil
	}
	if s.checkOrder == nil {
		s.checkOrder = map[string]childpb.Order{}
	}
	s.checkOrder[c.Name] = c.Order()
	return true, checksched.Weight[int](c.Weight), nil
}

// trackedChecks names the checks that cfg's instances and sync groups track.
func trackedChecks(cfg *config.Config) map[string]bool {
	names := map[string]bool{}
	for _, r := range checksched.Tracked(cfg) {
		names[r.Name] = true
	}
	return names
}

func (s *vrrpServer) Status(ctx context.Context, _ *childpb.Empty) (*childpb.VRRPStatus, error) {
	s.mu.Lock()
	eng := s.eng
	s.mu.Unlock()
	out := &childpb.VRRPStatus{Goroutines: uint32(runtime.NumGoroutine())}
	if eng == nil {
		return out, nil
	}
	for _, st := range eng.Status() {
		is := &childpb.InstanceStatus{
			Name: st.Name, Group: st.Group, State: st.State, Priority: int32(st.Priority),
			EffectivePriority: int32(st.EffectivePriority), Interface: st.Interface, Vrid: uint32(st.VRID), Vips: st.VIPs,
			Demoted: st.Demoted,
			Fault:   st.Fault,
		}
		if !st.NoMasterSince.IsZero() {
			is.NoMasterSinceUnixNano = st.NoMasterSince.UnixNano()
		}
		if st.Master.IsValid() {
			is.Master = st.Master.String()
		}
		out.Instances = append(out.Instances, is)
	}
	out.Drops = eng.Drops()
	out.Bgp = s.bgpStatus(ctx)
	return out, nil
}

// SetDemoted replaces the set of demoted instances (childpb.DemoteRequest). Before Start
// it is kept for the engine; after, the engine applies it before it answers.
func (s *vrrpServer) SetDemoted(ctx context.Context, req *childpb.DemoteRequest) (*childpb.Empty, error) {
	s.demMu.Lock()
	defer s.demMu.Unlock()
	names := slices.Clone(req.GetInstances())
	s.mu.Lock()
	s.demoted = names
	eng := s.eng
	s.mu.Unlock()
	if eng != nil {
		// The anycast routes of instances demoted now leave gracefully first
		// (Announcer.DrainInstances); master-mode ones go when the instance leaves MASTER.
		a, fresh := s.announcer(), newlyDemoted(eng.Demoted(), names)
		if a != nil {
			a.DrainInstances(ctx, fresh)
		}
		eng.SetDemoted(names) // not under mu: status and checks go on meanwhile
		if a != nil {
			a.Undrain(fresh)
		}
	}
	return &childpb.Empty{}, nil
}

func (s *vrrpServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

// shutdown drains the BGP routes (within bgp.StopBudget), then resigns every master and
// removes the addresses, waiting at most 5 s, and ends what the scheduling settings run.
func (s *vrrpServer) shutdown() {
	s.drainBGP()
	s.work.shutdown(s.log)
	s.prio.stop()
}

// newlyDemoted are the names in next that were not demoted before.
func newlyDemoted(before, next []string) []string {
	var out []string
	for _, n := range next {
		if !slices.Contains(before, n) {
			out = append(out, n)
		}
	}
	return out
}
