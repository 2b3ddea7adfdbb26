package child

import (
	"cmp"
	"context"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/loglimit"
	"github.com/vigil-ha/vigil/core/lvs"
	"github.com/vigil-ha/vigil/core/plugin"
)

// checkServer runs the check scheduler in the check child.
type checkServer struct {
	childpb.UnimplementedCheckServer
	log  hclog.Logger
	work work
	out  *fanout[*childpb.CheckState] // published under mu, so that Changes starts from latest exactly
	prio *scheduling                  // checker_priority, checker_rt_priority ...
	// now stamps each state with the time it was made, for people (vigil status); the
	// order of the states is (epoch, seq), never this clock, which may step back.
	now func() time.Time
	// lines limits the "check changed" lines of a flapping check (see forward).
	lines *loglimit.Limiter

	mu     sync.Mutex
	epoch  uint64 // core's epoch of this child (StartRequest.Epoch)
	seq    uint64 // the last state's sequence number
	latest map[string]*childpb.CheckState
	// gone names the checks that a reload removed: forward drops a change that one sent
	// just before it stopped, which would otherwise bring its state back.
	gone map[string]bool

	// The load balancer (lvs.go): nil while the configuration has no virtual_server and no
	// lvs_sync_daemon. keepIPVS is --dont-release-ipvs; masters the VRRP instances that core
	// says are master, for a balancer that a reload starts. lvsOut carries the balancer's
	// notifications to core; lvsEnded is closed once it has stopped (and sent its last).
	lvs      *balancer
	lvsCfg   *config.Config // the configuration lvs last took, to take back a failed reload
	keepIPVS bool
	masters  map[string]bool
	lvsOut   *fanout[*childpb.LVSEvent]
	lvsEnded chan struct{}
	endOnce  sync.Once
	// timeouts applies lvs_timeouts while the load balancer runs, and puts the kernel's
	// back at the stop.
	timeouts *ipvsTimeouts
	// lvsMu orders the notifications (lvsSeq) with core's subscriptions (lvsSubs):
	// those made while core has no stream open (at start, before it subscribes) wait in
	// lvsBacklog, at most lvsEventLimit of them, for the next one.
	lvsMu      sync.Mutex
	lvsSeq     uint64
	lvsSubs    int
	lvsBacklog []*childpb.LVSEvent

	// rmu orders Start, Reload and the end of the work: they replace the scheduler's checks
	// and the plugin host.
	rmu     sync.Mutex
	sched   *checksched.Scheduler // set by Start
	host    *plugin.Host          // the plugin host, kept across reloads; nil once the work ended
	hostKey string                // checksched.PluginHostKey of the settings host was made with
	ended   bool                  // the work ended (Stop): no reload any more

	// metrics is the registry core's Metrics call gathers (metrics.go); probeMetrics counts
	// every probe, whether anyone scrapes or not (an atomic add per probe).
	metrics      childMetrics
	probeMetrics *checkMetrics
}

func newCheckServer(log hclog.Logger, o Options) *checkServer {
	return &checkServer{log: log, out: newFanout(checkKey, 0), probeMetrics: newCheckMetrics(), now: time.Now, lines: loglimit.ForTransitions(), latest: map[string]*childpb.CheckState{}, gone: map[string]bool{},
		prio: newScheduling(log, "checker", true), keepIPVS: o.DontReleaseIPVS, masters: map[string]bool{},
		lvsOut: newFanout(lvsEventKey, lvsEventLimit), lvsEnded: make(chan struct{}),
		timeouts: &ipvsTimeouts{log: log.Named("lvs"), open: ipvs.Open}}
}

// startLVS starts the load balancer for cfg when it has one and none runs. Callers hold rmu.
func (s *checkServer) startLVS(cfg *config.Config) {
	s.mu.Lock()
	running := s.lvs != nil
	masters := maps.Clone(s.masters)
	s.mu.Unlock()
	if running || !lvsWanted(cfg) {
		return
	}
	b := newBalancer(s.log, cfg, masters, s.keepIPVS, ipvs.Open, s.publishLVS)
	s.mu.Lock()
	s.lvs, s.lvsCfg = b, cfg
	// States that came while it started: the director takes the same state twice as once.
	for name, m := range s.masters {
		if masters[name] != m {
			b.instance(name, m)
		}
	}
	s.mu.Unlock()
}

// checkKey is what a check state supersedes: the earlier state of its check. Only the
// newest state of a check matters to VRRP, so a subscriber that falls behind gets that.
func checkKey(st *childpb.CheckState) string { return st.Name }

func (s *checkServer) Start(ctx context.Context, req *childpb.StartRequest) (*childpb.StartResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.sched != nil || s.ended {
		return nil, status.Error(codes.FailedPrecondition, "already started")
	}
	s.mu.Lock()
	s.epoch = req.GetEpoch()
	s.mu.Unlock()
	// The load balancer starts before the checks are configured on their plugins, which
	// takes seconds with a thousand real servers: the real servers go into IPVS at once, as
	// keepalived's checker puts them there before any check ran. Their first results find
	// their checkers in the director.
	raiseCheckCaps(s.log, s.caps(cfg))
	s.timeouts.apply(cfg)
	s.startLVS(cfg)
	host := plugin.New(plugin.ConfigOptions(cfg.Global, s.log))
	specs, err := checksched.FromConfig(ctx, cfg, host)
	if err != nil {
		host.Close()
		s.stopLVS() // the configuration does not run: what it programmed goes
		// A plugin that is missing, insecure or rejects its params will not get better by
		// restarting; core stops with the message.
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	s.logNotes(specs, func(string) bool { return true })
	ready := make(chan *checksched.Scheduler)
	started := s.work.start(func(ctx context.Context) {
		// The channel is drained all the time by forward: its size only spares the checks
		// of a start from waiting on each other with their initial states.
		changes := make(chan checksched.Change, len(specs)+1)
		sched := checksched.NewScheduler(ctx, changes)
		sched.Observe(s.probeMetrics.observe)
		ready <- sched
		go s.forward(ctx, changes)
		sched.Wait()
		s.rmu.Lock()
		defer s.rmu.Unlock()
		s.host.Close()
		s.host, s.ended = nil, true
	})
	if !started {
		host.Close()
		return nil, status.Error(codes.FailedPrecondition, "already started")
	}
	s.sched, s.host, s.hostKey = <-ready, host, checksched.PluginHostKey(cfg.Global)
	s.sched.Update(specs)
	s.log.Info("checks started", "count", len(specs))
	s.applyScheduling(cfg)
	return &childpb.StartResponse{}, nil
}

// Reload applies a new configuration to the running checks (see checksched.Scheduler.Update):
// a check whose definition (checksched.Spec.Key) is unchanged keeps running with its state, and
// is not configured on its plugin again; a new one starts, a removed one stops and leaves
// Status; a changed one restarts with a fresh state and is answered as restarted (never as
// changed: no new definition is applied in place). The plugin processes keep running,
// unless plugin_dir or a check plugin's plugin_sha256 changed: then every plugin check
// restarts on a new plugin host. A configuration that cannot run fails with InvalidArgument
// and leaves the running checks as they were. Reload before Start fails with
// FailedPrecondition: the checks start with Start, which core calls first.
func (s *checkServer) Reload(ctx context.Context, req *childpb.StartRequest) (*childpb.ReloadResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	switch {
	case s.ended:
		return nil, status.Error(codes.FailedPrecondition, "stopped")
	case s.sched == nil:
		return nil, status.Error(codes.FailedPrecondition, "not started")
	}
	host, hostKey := s.host, checksched.PluginHostKey(cfg.Global)
	newHost := hostKey != s.hostKey
	if newHost {
		host = plugin.New(plugin.ConfigOptions(cfg.Global, s.log))
	}
	// The load balancer takes the new configuration before the checks are built: a new
	// real server goes into IPVS at once, as keepalived adds it at its reload before its
	// checker runs, and the director knows the new checkers before their first results. A
	// configuration the checks refuse is taken back. A new or changed real_server checker
	// is configured on its plugin by its own task (core/checksched's pending), never here: a
	// busy plugin (seconds per answer with a thousand TCP_CHECKs under qemu TCG) holds
	// neither this reload nor the next. A new or changed vrrp_check still is, since a
	// plugin's refusal fails the reload.
	s.mu.Lock()
	b, prev := s.lvs, s.lvsCfg
	s.mu.Unlock()
	if b != nil {
		b.reload(cfg)
		s.mu.Lock()
		s.lvsCfg = cfg
		s.mu.Unlock()
	} else {
		raiseCheckCaps(s.log, s.caps(cfg))
		s.startLVS(cfg)
	}
	specs, err := checksched.FromConfigReusing(ctx, cfg, host, s.sched.Running)
	if err != nil {
		if newHost {
			host.Close()
		}
		if b != nil {
			b.reload(prev)
			s.mu.Lock()
			s.lvsCfg = prev
			s.mu.Unlock()
		} else {
			s.stopLVS()
		}
		if ctx.Err() != nil {
			// Core gave up waiting (a plugin slow to start): not the configuration's fault.
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	// A check that an earlier reload removed may come back: it must not be gone when it
	// sends its initial state.
	s.mu.Lock()
	for _, sp := range specs {
		delete(s.gone, sp.Name)
	}
	s.mu.Unlock()
	s.timeouts.apply(cfg)
	d := s.sched.Update(specs)
	s.probeMetrics.forget(d.Removed)
	s.mu.Lock()
	for _, name := range d.Removed {
		s.gone[name] = true
		delete(s.latest, name)
	}
	s.mu.Unlock()
	if newHost {
		// Every check on the old host restarted on the new one (their Key holds hostKey).
		old := s.host
		s.host, s.hostKey = host, hostKey
		old.Close()
	}
	starting := map[string]bool{}
	for _, name := range append(d.Added, d.Restarted...) {
		starting[name] = true
	}
	s.logNotes(specs, func(name string) bool { return starting[name] })
	s.log.Info("checks reloaded", "kept", len(d.Kept), "added", len(d.Added), "removed", len(d.Removed), "restarted", len(d.Restarted), "new_plugin_host", newHost)
	s.applyScheduling(cfg)
	return &childpb.ReloadResponse{Kept: d.Kept, Added: d.Added, Removed: d.Removed, Restarted: d.Restarted}, nil
}

// applyScheduling applies checker_priority and the like to the check process: its checks
// and plugins, and what it runs for vrrp_script (which keepalived runs from its vrrp
// process, so that there checker_* leave them alone). Scripts and plugins it starts do not
// inherit a raised priority (see scheduling).
func (s *checkServer) applyScheduling(cfg *config.Config) {
	p := cfg.Global.CheckerProcess
	// What was applied before stays effective too: undoing it needs CAP_SYS_NICE, and locked
	// memory needs CAP_IPC_LOCK until it is unlocked (see scheduling.setNoSwap). Once undone,
	// neither stays effective.
	raiseCheckCaps(s.log, s.caps(cfg))
	s.prio.apply(p)
	raiseCheckCaps(s.log, s.caps(cfg))
}

// caps are the capabilities the check process needs besides ScriptCaps: those of
// checker_priority and the like, and CAP_NET_ADMIN while it programs IPVS (the kernel checks
// it when the netlink socket is opened and at each command; a reload that removes the last
// virtual_server still has to remove its services).
func (s *checkServer) caps(cfg *config.Config) []int {
	c := PriorityCaps(cfg.Global.CheckerProcess, s.prio.current())
	s.mu.Lock()
	lvsOn := s.lvs != nil
	s.mu.Unlock()
	if lvsOn || lvsWanted(cfg) {
		c = append(c, unix.CAP_NET_ADMIN)
	}
	return c
}

// logNotes logs the notes of the specs that start: a kept check said its note already.
func (s *checkServer) logNotes(specs []checksched.Spec, starts func(name string) bool) {
	for _, sp := range specs {
		if sp.Note != "" && starts(sp.Name) {
			s.log.Warn("check", "check", sp.Name, "note", sp.Note)
		}
	}
}

// forward keeps the latest state of every check and passes each change to core, numbered
// in the order they come (see childpb.CheckState).
//
// A check that flaps (up, down, up ...) would write a line per change: its lines are
// limited as a VRRP instance's transitions are, and core still gets every change.
func (s *checkServer) forward(ctx context.Context, changes <-chan checksched.Change) {
	if s.lines != nil {
		defer s.lines.Flush() // the last state of a flapping check, before the child ends
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			if !c.Initial {
				args := []any{"check", c.Name, "up", c.Up, "detail", c.Msg}
				if c.Weight != nil {
					args = append(args, "weight", *c.Weight)
				}
				if s.lines != nil {
					s.lines.Log(s.log, c.Name, hclog.Info, "check changed", args...)
				} else {
					s.log.Info("check changed", args...)
				}
			}
			s.mu.Lock()
			if !s.gone[c.Name] {
				s.seq++
				st := &childpb.CheckState{Name: c.Name, Up: c.Up, Message: c.Msg, Initial: c.Initial, Metrics: c.Metrics,
					UnixNano: s.now().UnixNano(), Epoch: s.epoch, Seq: s.seq}
				st.Weight = checksched.Weight[int32](c.Weight)
				s.latest[c.Name] = st
				s.out.publish(st)
				if s.lvs != nil {
					// A real server's checker (named as checksched.RealServerChecks names them);
					// the director ignores any other check.
					s.lvs.check(c.Name, lvs.Result{Up: c.Up, Weight: checksched.Weight[int](c.Weight), Initial: c.Initial})
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *checkServer) current() []*childpb.CheckState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currentLocked()
}

// currentLocked is current for a caller that holds s.mu.
func (s *checkServer) currentLocked() []*childpb.CheckState {
	out := make([]*childpb.CheckState, 0, len(s.latest))
	for _, st := range s.latest {
		out = append(out, st)
	}
	// In their order, so that a subscriber that starts from them sees what forward sent.
	slices.SortFunc(out, func(a, b *childpb.CheckState) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Changes sends the current state of every check, then each change. A stream that falls
// behind gets the newest state of every check (see fanout), never an older one last.
func (s *checkServer) Changes(_ *childpb.Empty, srv childpb.Check_ChangesServer) error {
	// Subscribing under mu, which forward publishes under: each state is either in the
	// current ones or published after, never lost between the two.
	s.mu.Lock()
	q := s.out.subscribe(s.currentLocked())
	s.mu.Unlock()
	return stream(srv.Context(), s.out, q, srv.Send, s.log)
}

func (s *checkServer) Status(ctx context.Context, _ *childpb.Empty) (*childpb.CheckStatus, error) {
	st := &childpb.CheckStatus{Checks: s.current(), Goroutines: uint32(runtime.NumGoroutine())}
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	if b != nil {
		st.Lvs = b.status(ctx)
	}
	return st, nil
}

// SetInstance takes a VRRP instance's state from core, for the load balancer.
func (s *checkServer) SetInstance(_ context.Context, in *childpb.InstanceState) (*childpb.Empty, error) {
	if in.GetInstance() == "" {
		return nil, status.Error(codes.InvalidArgument, "an instance state without an instance")
	}
	master := in.GetState() == "MASTER"
	s.mu.Lock()
	defer s.mu.Unlock()
	if master {
		s.masters[in.GetInstance()] = true
	} else {
		delete(s.masters, in.GetInstance())
	}
	if s.lvs != nil {
		s.lvs.instance(in.GetInstance(), master)
	}
	return &childpb.Empty{}, nil
}

// publishLVS numbers a notification of the load balancer and hands it to core's stream, or
// keeps it until core opens one.
func (s *checkServer) publishLVS(ev *childpb.LVSEvent) {
	s.lvsMu.Lock()
	defer s.lvsMu.Unlock()
	s.lvsSeq++
	ev.Seq = s.lvsSeq
	if s.lvsSubs > 0 {
		s.lvsOut.publish(ev)
		return
	}
	if len(s.lvsBacklog) >= lvsEventLimit {
		s.lvsBacklog = s.lvsBacklog[1:]
	}
	s.lvsBacklog = append(s.lvsBacklog, ev)
}

// LVSEvents sends the load balancer's notifications in order: those made while no stream
// was open (the start's, before core subscribed), then each new one.
// It ends once the balancer has stopped and every notification of the stop was sent: core
// reads this stream until then, so that the shutdown's own (omega) reach its notify path.
func (s *checkServer) LVSEvents(_ *childpb.Empty, srv childpb.Check_LVSEventsServer) error {
	s.lvsMu.Lock()
	q := s.lvsOut.subscribe(s.lvsBacklog)
	s.lvsBacklog = nil
	s.lvsSubs++
	s.lvsMu.Unlock()
	defer func() {
		s.lvsMu.Lock()
		s.lvsSubs--
		s.lvsOut.unsubscribe(q)
		s.lvsMu.Unlock()
	}()
	ctx := srv.Context()
	draining := false
	for {
		if !draining {
			select {
			case <-ctx.Done():
				return nil
			case <-q.ready:
			case <-s.lvsEnded:
				draining = true // send what is left, then end
			}
		}
		items, coalesced := q.take()
		if coalesced > 0 {
			s.log.Warn("core is not reading the load balancer's notifications fast enough; the older ones of a server gave way to its newest", "left_out", coalesced)
		}
		for _, v := range items {
			if err := srv.Send(v); err != nil {
				return err
			}
		}
		if draining && len(items) == 0 {
			return nil
		}
	}
}

func (s *checkServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

func (s *checkServer) shutdown() {
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b.stop(ctx)
		cancel()
		s.timeouts.restore()
	}
	s.endOnce.Do(func() { close(s.lvsEnded) })
	s.work.shutdown(s.log)
	s.prio.stop()
}
