package child

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/check"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
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

	mu     sync.Mutex
	epoch  uint64 // core's epoch of this child (StartRequest.Epoch)
	seq    uint64 // the last state's sequence number
	latest map[string]*childpb.CheckState
	// gone names the checks that a reload removed: forward drops a change that one sent
	// just before it stopped, which would otherwise bring its state back.
	gone map[string]bool

	// rmu orders Start, Reload and the end of the work: they replace the scheduler's checks
	// and the plugin host.
	rmu     sync.Mutex
	sched   *check.Scheduler // set by Start
	host    *plugin.Host     // the plugin host, kept across reloads; nil once the work ended
	hostKey string           // check.PluginHostKey of the settings host was made with
	ended   bool             // the work ended (Stop): no reload any more
}

func newCheckServer(log hclog.Logger) *checkServer {
	return &checkServer{log: log, out: newFanout(checkKey, 0), now: time.Now, latest: map[string]*childpb.CheckState{}, gone: map[string]bool{},
		prio: newScheduling(log, "checker", true)}
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
	host := plugin.New(plugin.ConfigOptions(cfg.Global, s.log))
	specs, err := check.FromConfig(ctx, cfg, host)
	if err != nil {
		host.Close()
		// A plugin that is missing, insecure or rejects its params will not get better by
		// restarting; core stops with the message.
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	s.logNotes(specs, func(string) bool { return true })
	ready := make(chan *check.Scheduler)
	started := s.work.start(func(ctx context.Context) {
		// The channel is drained all the time by forward: its size only spares the checks
		// of a start from waiting on each other with their initial states.
		changes := make(chan check.Change, len(specs)+1)
		sched := check.NewScheduler(ctx, changes)
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
	s.sched, s.host, s.hostKey = <-ready, host, check.PluginHostKey(cfg.Global)
	s.sched.Update(specs)
	s.log.Info("checks started", "count", len(specs))
	s.applyScheduling(cfg.Global.CheckerProcess)
	return &childpb.StartResponse{}, nil
}

// Reload applies a new configuration to the running checks (see check.Scheduler.Update):
// a check whose definition (check.Spec.Key) is unchanged keeps running with its state, and
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
	host, hostKey := s.host, check.PluginHostKey(cfg.Global)
	newHost := hostKey != s.hostKey
	if newHost {
		host = plugin.New(plugin.ConfigOptions(cfg.Global, s.log))
	}
	specs, err := check.FromConfigReusing(ctx, cfg, host, s.sched.Running)
	if err != nil {
		if newHost {
			host.Close()
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
	d := s.sched.Update(specs)
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
	s.applyScheduling(cfg.Global.CheckerProcess)
	return &childpb.ReloadResponse{Kept: d.Kept, Added: d.Added, Removed: d.Removed, Restarted: d.Restarted}, nil
}

// applyScheduling applies checker_priority and the like to the check process: its checks
// and plugins, and what it runs for vrrp_script (which keepalived runs from its vrrp
// process, so that there checker_* leave them alone). Scripts and plugins it starts do not
// inherit a raised priority (see scheduling).
func (s *checkServer) applyScheduling(p config.Process) {
	// What was applied before stays effective too: undoing it needs CAP_SYS_NICE, and locked
	// memory needs CAP_IPC_LOCK until it is unlocked (see scheduling.setNoSwap). Once undone,
	// neither stays effective.
	raiseCheckCaps(s.log, PriorityCaps(p, s.prio.current()))
	s.prio.apply(p)
	raiseCheckCaps(s.log, PriorityCaps(p, s.prio.current()))
}

// logNotes logs the notes of the specs that start: a kept check said its note already.
func (s *checkServer) logNotes(specs []check.Spec, starts func(name string) bool) {
	for _, sp := range specs {
		if sp.Note != "" && starts(sp.Name) {
			s.log.Warn("check", "name", sp.Name, "note", sp.Note)
		}
	}
}

// forward keeps the latest state of every check and passes each change to core, numbered
// in the order they come (see childpb.CheckState).
func (s *checkServer) forward(ctx context.Context, changes <-chan check.Change) {
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
				s.log.Info("check changed", args...)
			}
			s.mu.Lock()
			if !s.gone[c.Name] {
				s.seq++
				st := &childpb.CheckState{Name: c.Name, Up: c.Up, Message: c.Msg, Initial: c.Initial, Metrics: c.Metrics,
					UnixNano: s.now().UnixNano(), Epoch: s.epoch, Seq: s.seq}
				if c.Weight != nil {
					w := int32(*c.Weight)
					st.Weight = &w
				}
				s.latest[c.Name] = st
				s.out.publish(st)
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

func (s *checkServer) Status(context.Context, *childpb.Empty) (*childpb.CheckStatus, error) {
	return &childpb.CheckStatus{Checks: s.current(), Goroutines: uint32(runtime.NumGoroutine())}, nil
}

func (s *checkServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

func (s *checkServer) shutdown() {
	s.work.shutdown(s.log)
	s.prio.stop()
}
