package child

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	out  fanout[*childpb.Transition]

	// Transitions before core's first Transitions call are kept for it: the engine starts
	// in Start, and core subscribes only after Start returns, so the first transitions
	// (INIT to BACKUP at once, say) would otherwise be lost, and their notify actions too.
	tmu        sync.Mutex
	early      []*childpb.Transition
	subscribed bool

	mu  sync.Mutex
	eng *vrrp.Engine
	// checkAt is when each check's state that vrrp last took was made: core replays every
	// state after a reload while new ones keep coming, and an older one must not win.
	checkAt map[string]int64
	setMu   sync.Mutex // one SetCheck at a time, so that the check above and the post agree
}

// maxEarly bounds the transitions kept for core before it subscribes.
const maxEarly = 1024

func newVRRPServer(log hclog.Logger) *vrrpServer { return &vrrpServer{log: log} }

// parseChildConfig reads the configuration core sent. Core validated it already, so an
// error here means core and child disagree, which restarting cannot fix.
func parseChildConfig(req *childpb.StartRequest) (*config.Config, error) {
	cfg, ds := config.Parse(req.ConfigName, []byte(req.ConfigText), config.Options{DisableIncludes: true})
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
	// The sockets are open and netlink is ready: from here on the process keeps only
	// CAP_NET_ADMIN and CAP_NET_RAW, so a bug in it cannot do anything else as root.
	if err := dropCapabilities(vrrpCaps); err != nil {
		s.log.Warn("running with all of root's capabilities", "reason", err)
	}
	eng.OnTransition(func(name string, t fsm.Transition) { s.transition(eng, name, t) })
	eng.OnLowerPriority(func(name string, h fsm.LowerPriorityHeard) {
		// Core tells it from a state change by its To (notify.MasterRxLowerPri).
		s.send(eng, name, &childpb.Transition{Instance: name, From: fsm.Master.String(), To: "MASTER_RX_LOWER_PRI",
			Reason: fmt.Sprintf("advert from %s with priority %d", h.From, h.Priority), UnixNano: time.Now().UnixNano()})
	})
	s.eng = eng
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
	for _, st := range eng.Status() {
		if st.Name == name {
			tr.Group, tr.Priority, tr.Vips = st.Group, int32(st.EffectivePriority), st.VIPs
			if st.EffectivePriority == 0 && tr.To != fsm.Fault.String() {
				// Nothing published yet (the first transition, at start): the configured one.
				tr.Priority = int32(st.Priority)
			}
			break
		}
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.subscribed {
		if len(s.early) < maxEarly {
			s.early = append(s.early, tr)
		}
		return
	}
	s.out.publish(tr, s.log)
}

func (s *vrrpServer) Transitions(_ *childpb.Empty, srv childpb.VRRP_TransitionsServer) error {
	s.tmu.Lock()
	ch := s.out.subscribe(s.early)
	s.early, s.subscribed = nil, true
	s.tmu.Unlock()
	defer s.out.unsubscribe(ch)
	for {
		select {
		case <-srv.Context().Done():
			return nil
		case v := <-ch:
			if err := srv.Send(v); err != nil {
				return err
			}
		}
	}
}

func (s *vrrpServer) SetCheck(ctx context.Context, c *childpb.CheckState) (*childpb.Empty, error) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	eng := s.eng
	stale := c.UnixNano != 0 && c.UnixNano < s.checkAt[c.Name]
	if !stale && c.UnixNano != 0 {
		if s.checkAt == nil {
			s.checkAt = map[string]int64{}
		}
		s.checkAt[c.Name] = c.UnixNano
	}
	s.mu.Unlock()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "not started")
	}
	if stale {
		return &childpb.Empty{}, nil
	}
	var dynamic *int
	if c.Weight != nil {
		w := int(*c.Weight)
		dynamic = &w
	}
	eng.SetCheck(ctx, c.Name, c.Up, dynamic)
	return &childpb.Empty{}, nil
}

func (s *vrrpServer) Status(context.Context, *childpb.Empty) (*childpb.VRRPStatus, error) {
	s.mu.Lock()
	eng := s.eng
	s.mu.Unlock()
	out := &childpb.VRRPStatus{}
	if eng == nil {
		return out, nil
	}
	for _, st := range eng.Status() {
		is := &childpb.InstanceStatus{
			Name: st.Name, Group: st.Group, State: st.State, Priority: int32(st.Priority),
			EffectivePriority: int32(st.EffectivePriority), Interface: st.Interface, Vrid: uint32(st.VRID), Vips: st.VIPs,
		}
		if st.Master.IsValid() {
			is.Master = st.Master.String()
		}
		out.Instances = append(out.Instances, is)
	}
	out.Drops = eng.Drops()
	return out, nil
}

func (s *vrrpServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

// shutdown resigns every master and removes the addresses, waiting at most 5 s.
func (s *vrrpServer) shutdown() { s.work.shutdown(s.log) }
