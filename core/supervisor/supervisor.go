// Package supervisor is vigil's core process at work: it starts the check and vrrp children
// a configuration needs, hands them the configuration, forwards check states to vrrp, keeps
// every child alive (restart with backoff, health pings) and stops them in order.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/bgp"
	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/notify"
	"github.com/vigil-ha/vigil/core/script"
)

// Options configure a Supervisor.
type Options struct {
	Exe  string // the vigil binary to re-execute in a role
	Args []string
	Log  hclog.Logger
	// OnTransition receives every VRRP state change (for notify actions).
	OnTransition func(Transition)
	// OnLVS receives every notification of the check process's load balancer, in order
	// (for notify actions): a virtual or real server that core's configuration has.
	OnLVS func(LVSEvent)
}

// Transition is a VRRP instance changing state, as the vrrp child reported it.
type Transition struct {
	Instance string
	Group    string // its vrrp_sync_group, if any
	From, To string
	Reason   string
	Priority int // effective priority
	VIPs     []string
	Time     time.Time
}

// Supervisor runs the children of one configuration.
type Supervisor struct {
	opts     Options
	cfg      *config.Config
	req      *childpb.StartRequest // what a child is started or reloaded with: the text and its places
	children []*proc

	// What Run started, for Reload to start a child the new configuration needs.
	runCtx context.Context
	wg     sync.WaitGroup

	mu     sync.Mutex
	checks map[string]*childpb.CheckState // latest state of every check, replayed to a new vrrp child
	names  map[string]bool                // the checks the check child may send states of (see ran)
	// namesOf keeps checkNames of cfg and of the configurations in ran: a reload asks for
	// them several times, and with a thousand real servers each answer translates every
	// checker (checksched.RealServerChecks). A Config is not changed after it is loaded.
	namesOf map[*config.Config]map[string]bool
	// ran holds, per child, the configurations it may send messages by besides cfg: the one
	// it last applied (at start, or by a reload it took) and the one before that, whose
	// messages may still be on their way on its stream after the reload's answer. A reload
	// that a child failed leaves them as they were: it still runs the older one. A message
	// is admitted if one of these configurations has room for it; judged by cfg alone, a
	// transition the vrrp child made by the old configuration just before it reloaded (of an
	// instance the reload removes or moves to another sync group, or naming an address it
	// drops) was refused, and its notify lost.
	ran map[child.Role][2]*config.Config
	// checkEpoch counts the check children started: each gets the next one, so that its
	// states order after those of every earlier check child (childpb.CheckState), whatever
	// the wall clock did in between.
	checkEpoch uint64
	fatal      chan error

	// ready is closed once every child of the first configuration has started and taken
	// its configuration (see Ready); starting counts those that have not yet.
	ready    chan struct{}
	starting int

	// instances is the latest admitted state of every VRRP instance, for the check child's
	// load balancer (ha_suspend, lvs_sync_daemon): fed to it by feedInstances, and all of
	// them again to a check child that (re)starts.
	instances map[string]instanceState
	// instChanged is closed (and replaced) when instances changes: a broadcast to the
	// feeders, which never makes the transition stream wait for the check child.
	instChanged chan struct{}
	// lvsIndex is, for the configurations the check child may send by, their virtual
	// servers' IDs and real servers (see admitLVS).
	lvsIndex map[*config.Config]map[string]map[string]bool

	// demoted is the operator's handover state, by instance (see handover.go);
	// demChanged is closed (and replaced) when it changes, for expireDemotions. demSend
	// takes the sends of the set to the vrrp child one at a time.
	demoted    map[string]demotion
	demChanged chan struct{}
	demSend    sync.Mutex
}

// instanceState is an instance's state and how many changes core has seen of it.
type instanceState struct {
	state string
	ver   uint64
}

// proc is one supervised child and what `vigil status` shows of it.
type proc struct {
	role child.Role
	// restart asks the running child to stop and start again at once, with what cred then
	// says (newProc makes it; one pending request is enough).
	restart chan struct{}

	mu        sync.Mutex
	cred      *syscall.Credential // the user the child runs as; nil: root
	pid       int
	started   time.Time
	restarts  int
	state     string // starting, running, backoff, stopped
	lastError string
	vrrp      childpb.VRRPClient
	check     childpb.CheckClient
	client    *plugin.Client
	// answered is when the running child last answered core: its Start, then each health
	// ping; zero while none runs (see Answering).
	answered time.Time
	// configured: a run of this child took its configuration once (see Ready).
	configured bool
}

func newProc(role child.Role) *proc {
	return &proc{role: role, state: "starting", restart: make(chan struct{}, 1)}
}

// errRestart ends a child's run that core asked for (proc.restart): it starts again at once.
var errRestart = errors.New("restarted by core")

// Needed says which children a configuration needs: no vrrp_instance, no vrrp process; no
// tracked script or check, no virtual_server and no lvs_sync_daemon, no check process (which
// runs the real servers' checkers and owns IPVS, as keepalived's checker process does).
func Needed(cfg *config.Config) (vrrp, checks bool, err error) {
	lvs := len(cfg.VirtualServers) > 0 || cfg.Global.LVSSyncDaemon != nil
	return len(cfg.Instances) > 0, len(checksched.Tracked(cfg)) > 0 || lvs, nil
}

// checkAsScriptUser says whether the check child may run as script_user: not when it owns
// IPVS (a virtual_server or lvs_sync_daemon), which takes CAP_NET_ADMIN. It then runs as
// root with ScriptCaps and CAP_NET_ADMIN effective, as keepalived's checker process runs as
// root; its scripts still run as script_user, its check plugins as root (keepalived's
// checkers run inside its root process).
func checkAsScriptUser(cfg *config.Config, log hclog.Logger) bool {
	if len(cfg.VirtualServers) == 0 && cfg.Global.LVSSyncDaemon == nil {
		return true
	}
	if log != nil {
		log.Info("the check process runs as root, not as script_user: it programs IPVS (CAP_NET_ADMIN); its scripts still run as script_user, its check plugins as root, as keepalived's checkers")
	}
	return false
}

// New prepares the children of cfg; Run starts them.
func New(cfg *config.Config, opts Options) (*Supervisor, error) {
	wantVRRP, wantCheck, err := Needed(cfg)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{opts: opts, cfg: cfg, req: child.StartRequest(cfg), checks: map[string]*childpb.CheckState{}, names: checkNames(cfg), fatal: make(chan error, 2),
		instances: map[string]instanceState{}, instChanged: make(chan struct{}),
		ran: map[child.Role][2]*config.Config{child.RoleVRRP: {cfg}, child.RoleCheck: {cfg}}, ready: make(chan struct{})}
	if wantCheck {
		p := newProc(child.RoleCheck)
		// The check child runs as script_user when one is set: a compromised check then
		// cannot touch the network configuration. Not when it programs IPVS, which takes
		// CAP_NET_ADMIN (see checkAsScriptUser).
		if u := cfg.Global.ScriptUser; u != "" && checkAsScriptUser(cfg, opts.Log) {
			cred, err := script.LookupUser(u, cfg.Global.ScriptGroup)
			if err != nil {
				return nil, fmt.Errorf("script_user: %w", err)
			}
			p.cred = cred
		}
		s.children = append(s.children, p)
	}
	if wantVRRP {
		s.children = append(s.children, newProc(child.RoleVRRP))
	}
	s.starting = len(s.children)
	if s.starting == 0 {
		close(s.ready)
	}
	return s, nil
}

// Ready is closed once every child of the configuration New was given runs and has taken
// that configuration (or the one a reload gave meanwhile): its Start answered, the vrrp
// child has every check state core knows. A child that cannot start yet (an interface
// that does not exist, say) holds it back until a restart of it succeeds. Children a reload
// adds do not count.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// configured records that p took its configuration: the first time, one child less to wait
// for before Ready.
func (s *Supervisor) configured(p *proc) {
	p.mu.Lock()
	first := !p.configured
	p.configured = true
	p.mu.Unlock()
	if !first {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting--
	if s.starting == 0 {
		close(s.ready)
	}
}

// Answering says whether every child answered core within the last within (its Start, or a
// health ping: one a second), and names the first that did not. A child that is frozen
// (SIGSTOP, a deadlock in its gRPC server) or restarting does not answer: this is what
// systemd's watchdog is fed by (core/daemon). Children that a reload made idle count too:
// they are supervised all the same.
func (s *Supervisor) Answering(within time.Duration) error {
	now := time.Now()
	for _, p := range s.procs() {
		p.mu.Lock()
		at, state := p.answered, p.state
		p.mu.Unlock()
		if at.IsZero() {
			return fmt.Errorf("the %s process is not running (%s)", p.role, state)
		}
		if d := now.Sub(at); d > within {
			return fmt.Errorf("the %s process has not answered for %s", p.role, d.Round(time.Second))
		}
	}
	return nil
}

// Summary is what core knows of the children without asking them: each instance's last
// admitted state (instances the vrrp child has not reported yet are missing) and the checks'
// states. It is cheap: for status lines (systemd's STATUS=).
type Summary struct {
	Instances map[string]string
	Checks    int // states known
	ChecksUp  int
}

// Summary returns what core knows now.
func (s *Supervisor) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := Summary{Instances: make(map[string]string, len(s.instances))}
	for name, st := range s.instances {
		sum.Instances[name] = st.state
	}
	for _, st := range s.checks {
		sum.Checks++
		if st.GetUp() {
			sum.ChecksUp++
		}
	}
	return sum
}

// Run keeps the children running until ctx ends, then stops them (vrrp first: it resigns
// and removes the addresses) and returns. It returns early with an error when a child fails
// in a way restarting cannot fix (bad configuration, missing permission).
func (s *Supervisor) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.runCtx = runCtx
	for _, p := range s.children {
		s.start(p)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.expireDemotions(runCtx)
	}()
	s.mu.Unlock()
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.fatal:
	}
	cancel()
	// A Reload that started a child did so under s.mu with runCtx alive; from here on
	// runCtx is done, so none starts another, and Wait sees every Add.
	s.mu.Lock()
	s.runCtx = nil
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// start supervises p from a goroutine of its own. Callers hold s.mu.
func (s *Supervisor) start(p *proc) {
	ctx := s.runCtx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.supervise(ctx, p)
	}()
}

// supervise runs one child, restarting it as keepalived does: at once, then, while it keeps
// dying within 60 s of its start, after 1, 2, 4 ... up to 60 s. The first restart never
// waits, however short the run: a dead vrrp child leaves its VIPs on the node until the
// new child removes them, while a backup may already have taken over.
func (s *Supervisor) supervise(ctx context.Context, p *proc) {
	// The children's parent-death signal belongs to the thread that started them; keep this
	// goroutine on one thread for its whole life so the signal fires only when core dies.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	backoff := time.Duration(0)
	for {
		start := time.Now()
		err := s.runOnce(ctx, p)
		if ctx.Err() != nil {
			p.set(func() { p.state = "stopped" })
			return
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			p.set(func() { p.state, p.lastError = "failed", err.Error() })
			s.fatal <- err
			return
		}
		if errors.Is(err, errRestart) {
			// Not a failure: no wait, and the next failure is still a first one.
			p.set(func() { p.state = "starting" })
			continue
		}
		if time.Since(start) > 60*time.Second {
			backoff = 0 // a stable run: this death counts as a first one
		}
		wait := backoff
		backoff = min(max(2*backoff, time.Second), 60*time.Second)
		s.opts.Log.Error("child stopped; restarting", "child", string(p.role), "error", err, "in", wait.String())
		p.set(func() { p.state, p.lastError = "backoff", fmt.Sprint(err); p.restarts++ })
		select {
		case <-ctx.Done():
			p.set(func() { p.state = "stopped" })
			return
		case <-time.After(wait):
		}
	}
}

// maxChildMessage bounds what core takes in one message from a child.
const maxChildMessage = 4 << 20

// maxStatusMessage bounds a child's status answer, which grows with the configuration (an
// instance or a real server is a few hundred bytes: 4 MiB is about ten thousand of them,
// which a large site reaches), as a whole configuration may take 64 MiB. Only the status
// calls take it (statusCall); every other message keeps maxChildMessage.
const maxStatusMessage = 64 << 20

// statusCall is the option of a call for a child's status.
func statusCall() grpc.CallOption { return grpc.MaxCallRecvMsgSize(maxStatusMessage) }

// fatalError is a child failure that restarting cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (p *proc) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// runOnce starts the child, configures it, and serves it until it dies or ctx ends.
func (s *Supervisor) runOnce(ctx context.Context, p *proc) error {
	// A restart asked for before this start is done by it: drained before cred is read.
	select {
	case <-p.restart:
	default:
	}
	p.mu.Lock()
	cred := p.cred
	p.mu.Unlock()
	cmd := exec.Command(s.opts.Exe, append([]string{"--role", string(p.role)}, s.opts.Args...)...)
	// SIGTERM when core dies: the vrrp child then resigns and removes its addresses.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Credential: cred}
	// Each line of the child, and go-plugin's own about it, carries the child's role: journal
	// filters select a process by it (docs/logging.md).
	childLog := s.opts.Log.Named(string(p.role)).With("role", string(p.role))
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  child.Handshake,
		Plugins:          child.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           childLog,
		Managed:          false,
		StartTimeout:     30 * time.Second,
		// go-plugin lifts gRPC's receive limit to 2 GiB: a child's message is a check state,
		// a transition or a status answer, far under gRPC's own default.
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxChildMessage))},
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("start %s child: %w", p.role, err)
	}
	raw, err := rpc.Dispense(string(p.role))
	if err != nil {
		return fmt.Errorf("connect to %s child: %w", p.role, err)
	}
	p.set(func() {
		p.pid, p.started, p.state, p.client = cmd.Process.Pid, time.Now(), "running", client
	})
	// The streams from this child end with it.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	defer p.set(func() { p.vrrp, p.check, p.client, p.pid, p.answered = nil, nil, nil, 0, time.Time{} })
	s.mu.Lock()
	// A copy: the check child's epoch is set on it, and s.req stays the same for every child.
	req := proto.Clone(s.req).(*childpb.StartRequest)
	if p.role == child.RoleCheck {
		s.checkEpoch++
		req.Epoch = s.checkEpoch
	}
	s.mu.Unlock()
	switch c := raw.(type) {
	case childpb.VRRPClient:
		// The demoted instances first, so that none goes MASTER as the engine starts; and
		// again once the child is reachable, for a demote that came meanwhile.
		s.demSend.Lock()
		pending := s.sendDemoted(ctx, c)
		s.demSend.Unlock()
		if pending != "" {
			return fmt.Errorf("vrrp child: %s", pending)
		}
		if _, err := c.Start(ctx, req); err != nil {
			return classify(err)
		}
		p.set(func() { p.vrrp, p.answered = c, time.Now() })
		s.pushDemoted(ctx)
		s.catchUp(ctx, p, req.ConfigText, func(ctx context.Context, r *childpb.StartRequest) error { _, err := c.Reload(ctx, r); return err })
		s.replayChecks(ctx, c)
		s.configured(p)
		go s.follow(watchCtx, p.role, func(ctx context.Context) error { return s.watchTransitions(ctx, c) })
	case childpb.CheckClient:
		if _, err := c.Start(ctx, req); err != nil {
			return classify(err)
		}
		p.set(func() { p.check, p.answered = c, time.Now() })
		s.catchUp(ctx, p, req.ConfigText, func(ctx context.Context, r *childpb.StartRequest) error { _, err := c.Reload(ctx, r); return err })
		s.configured(p)
		go s.follow(watchCtx, p.role, func(ctx context.Context) error { return s.watchChecks(ctx, c, req.Epoch) })
		go s.feedInstances(watchCtx, c)
		// The load balancer's notifications are read until the child has stopped, not
		// only until core's context ends: the shutdown's own (omega: quorum_down, the
		// real servers going) come while the child stops (see stopChild).
		lvsCtx, stopLVS := context.WithCancel(context.WithoutCancel(ctx))
		lvsDone := make(chan struct{})
		go func() {
			defer close(lvsDone)
			s.followLVS(lvsCtx, c, req.Epoch)
		}()
		defer func() {
			if ctx.Err() != nil {
				// Stopping: give the stream a moment to bring the last notifications.
				select {
				case <-lvsDone:
				case <-time.After(2 * time.Second):
				}
			}
			stopLVS()
			<-lvsDone
		}()
	}
	s.opts.Log.Info("child running", "child", string(p.role), "pid", cmd.Process.Pid)

	// Health: a child that exits, or misses three pings in a row, is restarted. An exit is
	// looked for more often than pings are sent: it costs a lock, and a restart waits for it.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	exited := time.NewTicker(exitPoll)
	defer exited.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			s.stopChild(p, raw, cmd)
			return ctx.Err()
		case <-p.restart:
			s.opts.Log.Info("restarting the child as core asked", "child", string(p.role), "pid", cmd.Process.Pid, "as_root", cred == nil)
			s.stopChild(p, raw, cmd)
			return errRestart
		case <-exited.C:
			if client.Exited() {
				return fmt.Errorf("%s child exited", p.role)
			}
		case <-tick.C:
			if client.Exited() {
				return fmt.Errorf("%s child exited", p.role)
			}
			if err := ping(ctx, rpc); err != nil {
				missed++
				s.opts.Log.Warn("child missed a health ping", "child", string(p.role), "pid", cmd.Process.Pid, "missed", missed, "error", err)
				if missed >= 3 {
					killChild(cmd)
					return fmt.Errorf("%s child does not answer health pings: %w", p.role, err)
				}
				continue
			}
			missed = 0
			p.set(func() { p.answered = time.Now() })
		}
	}
}

// pingWait is how long a health ping waits for the child's answer. Three missed in a row
// restart the child: a child that answers none for that long (stopped, or stuck) does not do
// its work either, and a frozen vrrp child keeps its addresses while it sends no adverts.
// A busy child still answers: its gRPC server has goroutines of its own. 15 s in all: a
// child stopped for a few seconds (a debugger, a test that freezes it to see the systemd
// watchdog withheld) comes back as it was; under systemd the watchdog (WatchdogSec=10s in
// configs/vigil.service) restarts the whole daemon sooner.
const pingWait = 5 * time.Second

// ping asks the child's gRPC health service, by pingWait or until ctx ends. go-plugin's own
// Ping waits for ever (context.Background): a stopped child held this loop in it, so that
// it was never counted as missing a ping, never restarted, and held the stop too.
func ping(ctx context.Context, rpc plugin.ClientProtocol) error {
	gc, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return rpc.Ping()
	}
	pctx, cancel := context.WithTimeout(ctx, pingWait)
	defer cancel()
	_, err := grpc_health_v1.NewHealthClient(gc.Conn).Check(pctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}

// exitPoll is how often a running child is looked at for an exit (go-plugin offers no
// channel for it).
const exitPoll = 50 * time.Millisecond

// catchUpWait bounds catchUp's reload as core bounds a reload (core/daemon's 30 s): the
// child's work (its watch streams) starts only after it, so a child that does not answer
// must not hold them until the shutdown (a check child waiting for a saturated plugin did).
const catchUpWait = 30 * time.Second

// catchUp reloads a child that started with text when a reload changed the configuration
// while it was starting: that reload found no client for it. (A reload that did find it
// applies the same text again, which changes nothing.) It says so in the log, and gives
// up after catchUpWait: the child then runs with the configuration it started with until
// the next reload, which the log says too.
func (s *Supervisor) catchUp(ctx context.Context, p *proc, text string, reload func(context.Context, *childpb.StartRequest) error) {
	s.mu.Lock()
	cur := s.req
	s.mu.Unlock()
	if cur.ConfigText == text {
		return
	}
	s.opts.Log.Info("applying the configuration reloaded while the child started", "child", string(p.role))
	rctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	if err := reload(rctx, cur); err != nil {
		s.opts.Log.Error("the configuration reloaded while the child started could not be applied to it; it runs with the one it started with until the next reload",
			"child", string(p.role), "error", status.Convert(err).Message())
	}
}

// classify turns a child's Start error into a fatal error when retrying cannot help.
func classify(err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument:
		return &fatalError{fmt.Errorf("bad configuration: %s", status.Convert(err).Message())}
	case codes.PermissionDenied:
		return &fatalError{fmt.Errorf("missing permission: %s (vigil needs root or CAP_NET_ADMIN and CAP_NET_RAW)", status.Convert(err).Message())}
	}
	return err
}

// stopChild asks the child to stop its work gracefully (bounded), before it is killed.
// childStopWait is how long a child is given to stop its work (the vrrp child: resign and
// remove its addresses), beside the BGP drain.
const childStopWait = 6 * time.Second

func (s *Supervisor) stopChild(p *proc, raw any, cmd *exec.Cmd) {
	wait := childStopWait
	s.mu.Lock()
	if b := s.cfg.Global.BGP; b != nil && p.role == child.RoleVRRP {
		// The vrrp child drains its BGP routes before it resigns (graceful_shutdown).
		wait += bgp.StopBudget(b.GracefulShutdown)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var err error
	switch c := raw.(type) {
	case childpb.VRRPClient:
		_, err = c.Stop(ctx, &childpb.Empty{})
	case childpb.CheckClient:
		_, err = c.Stop(ctx, &childpb.Empty{})
	}
	if err != nil {
		s.opts.Log.Warn("child did not stop cleanly; killing it", "child", string(p.role), "error", err)
		killChild(cmd)
	}
}

// killChild kills a child's process at once. go-plugin's Kill, which runOnce defers, first
// asks the child to shut down and waits for ever for the answer, which a stopped or stuck
// child never gives; with the process gone, that call fails at once.
func killChild(cmd *exec.Cmd) { cmd.Process.Kill() }

// watchChecks forwards every check state that the check child of epoch sends to the vrrp
// child, and remembers it; what admitCheck refuses is logged and dropped.
func (s *Supervisor) watchChecks(ctx context.Context, c childpb.CheckClient, epoch uint64) error {
	stream, err := c.Changes(ctx, &childpb.Empty{})
	if err != nil {
		return err
	}
	var refused logLimit
	for {
		st, err := stream.Recv()
		if err != nil {
			return err
		}
		st, ok := s.takeCheck(st, epoch, &refused)
		if !ok {
			continue
		}
		if v := s.vrrpClient(); v != nil {
			if _, err := v.SetCheck(ctx, st); err != nil {
				s.setCheckFailed(st, err)
			}
		}
	}
}

// takeCheck admits st from the check child of epoch (admitCheck) and remembers it
// (noteCheck). It returns the state to forward, and whether there is one.
func (s *Supervisor) takeCheck(st *childpb.CheckState, epoch uint64, refused *logLimit) (*childpb.CheckState, bool) {
	s.mu.Lock()
	names := s.names
	s.mu.Unlock()
	st, err := admitCheck(st, epoch, names)
	if err != nil {
		if refused.allow() {
			s.opts.Log.Warn("check child sent a bad state; not applied", "error", err, "refused_so_far", refused.n)
		}
		return nil, false
	}
	return st, s.noteCheck(st)
}

// noteCheck remembers st as its check's latest state, for replayChecks, unless the state
// remembered is newer: a state of a check child that was restarted meanwhile, still on its
// way from the old child's stream, must not replace one of the new child. It reports
// whether st was taken (and is to be forwarded).
func (s *Supervisor) noteCheck(st *childpb.CheckState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.checks[st.Name]; old != nil && st.Order().Before(old.Order()) {
		return false
	}
	s.checks[st.Name] = st
	return true
}

// logLimit lets the first messages about a child's bad messages through, then one in a
// thousand: a child that sends nothing else must not flood core's log.
type logLimit struct{ n int }

func (l *logLimit) allow() bool {
	l.n++
	return l.n <= 10 || l.n%1000 == 0
}

// follow runs watch, a stream from a child, until ctx ends with the child's run. A stream
// that ends while the child runs (a message over the size limit, say) is opened again after
// a pause: the check child sends the state of every check again, so nothing is lost; the
// vrrp child's transitions in between are, and the log says so. Before, such a stream ended
// for good, and so did every check state or notify action after it.
func (s *Supervisor) follow(ctx context.Context, role child.Role, watch func(context.Context) error) {
	var broke logLimit
	for {
		err := watch(ctx)
		// A child that died ends its streams too: its run ends within the pause, and there is
		// nothing to say about its streams.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if broke.allow() {
			s.opts.Log.Error("stream from child broke; opening it again", "child", string(role), "error", err, "breaks", broke.n)
		}
	}
}

// replayChecks gives a (re)started vrrp child the states it missed. It may race watchChecks
// forwarding a newer state: the vrrp child keeps the newest it was given (SetCheck).
func (s *Supervisor) replayChecks(ctx context.Context, v childpb.VRRPClient) {
	s.mu.Lock()
	states := make([]*childpb.CheckState, 0, len(s.checks))
	for _, st := range s.checks {
		states = append(states, st)
	}
	s.mu.Unlock()
	for _, st := range states {
		if _, err := v.SetCheck(ctx, st); err != nil {
			s.setCheckFailed(st, err)
		}
	}
}

// setCheckFailed logs a check state that the vrrp child did not take. NotFound is a check
// that the vrrp child's configuration does not track yet: a reload reloads the check child
// first, whose new checks send their states at once, and the vrrp child gets them all again
// once it has reloaded too.
func (s *Supervisor) setCheckFailed(st *childpb.CheckState, err error) {
	if status.Code(err) == codes.NotFound {
		s.opts.Log.Debug("vrrp does not track this check (yet)", "check", st.Name, "error", status.Convert(err).Message())
		return
	}
	s.opts.Log.Warn("could not pass a check state to vrrp", "check", st.Name, "error", err)
}

// admitTransition admits t by the configuration, or by one the vrrp child may still send
// transitions by (see ran).
func (s *Supervisor) admitTransition(t *childpb.Transition) (Transition, error) {
	s.mu.Lock()
	cfg, ran := s.cfg, s.ran[child.RoleVRRP]
	s.mu.Unlock()
	tr, err := admitTransition(t, cfg)
	for _, c := range ran {
		if err == nil || c == nil {
			break
		}
		if atr, aerr := admitTransition(t, c); aerr == nil {
			return atr, nil
		}
	}
	return tr, err
}

func (s *Supervisor) watchTransitions(ctx context.Context, v childpb.VRRPClient) error {
	stream, err := v.Transitions(ctx, &childpb.Empty{})
	if err != nil {
		return err
	}
	var refused logLimit
	for {
		t, err := stream.Recv()
		if err != nil {
			return err
		}
		tr, err := s.admitTransition(t)
		switch {
		case err != nil && t.GetTo() == "INIT":
			// An instance that a reload removed stops, after core took the new
			// configuration: nothing to notify (INIT never is).
			s.opts.Log.Debug("transition of an instance the configuration does not have", "error", err)
		case err != nil:
			if refused.allow() {
				s.opts.Log.Warn("vrrp child sent a bad transition; not passed on", "error", err, "refused_so_far", refused.n)
			}
		default:
			s.noteInstance(tr)
			if s.opts.OnTransition != nil {
				s.opts.OnTransition(tr)
			}
		}
	}
}

// noteInstance records an admitted transition's new state for the check child's load
// balancer and wakes the feeders. A master hearing a lower priority stays master: not a state.
func (s *Supervisor) noteInstance(tr Transition) {
	if tr.To == notify.MasterRxLowerPri {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.instances[tr.Instance]
	if old.state == tr.To {
		return
	}
	s.instances[tr.Instance] = instanceState{state: tr.To, ver: old.ver + 1}
	close(s.instChanged)
	s.instChanged = make(chan struct{})
}

// feedInstances gives the check child c every instance's state, at once (a child that
// (re)starts learns them all, as replayChecks does for vrrp) and then each change, newest
// first-come: a state superseded before it was sent is not sent. It runs until ctx ends
// with the child's run; it never makes the transition stream wait.
func (s *Supervisor) feedInstances(ctx context.Context, c childpb.CheckClient) {
	sent := map[string]uint64{}
	var refused logLimit
	for {
		s.mu.Lock()
		wake := s.instChanged
		var todo []*childpb.InstanceState
		vers := map[string]uint64{}
		for name, st := range s.instances {
			if sent[name] != st.ver {
				todo = append(todo, &childpb.InstanceState{Instance: name, State: st.state})
				vers[name] = st.ver
			}
		}
		s.mu.Unlock()
		slices.SortFunc(todo, func(a, b *childpb.InstanceState) int { return strings.Compare(a.Instance, b.Instance) })
		failed := false
		for _, st := range todo {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.SetInstance(cctx, st)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failed = true
				if refused.allow() {
					s.opts.Log.Warn("could not pass an instance state to the check process; trying again", "instance", st.Instance, "error", err)
				}
				continue // not marked sent: the next round sends it again
			}
			sent[st.Instance] = vers[st.Instance]
		}
		if failed {
			wake = nil // try again after a pause rather than at once
		}
		var pause <-chan time.Time
		if wake == nil {
			pause = time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-pause:
		}
	}
}

func (s *Supervisor) vrrpClient() childpb.VRRPClient {
	for _, p := range s.procs() {
		if p.role == child.RoleVRRP {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.vrrp
		}
	}
	return nil
}

// ReloadReport is what a reload did in each child.
type ReloadReport struct {
	VRRP   ChildReload `json:"vrrp"`
	Checks ChildReload `json:"checks"`
}

// ChildReload lists instances (vrrp) or checks by what a reload did to them.
type ChildReload struct {
	Kept      []string `json:"kept,omitempty"`
	Changed   []string `json:"changed,omitempty"`
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
}

func childReload(r *childpb.ReloadResponse) ChildReload {
	return ChildReload{Kept: r.GetKept(), Changed: r.GetChanged(), Added: r.GetAdded(), Removed: r.GetRemoved(), Restarted: r.GetRestarted()}
}

// Reload hands cfg, which the caller validated, to the running children: the check child
// first, so that new checks run, then the vrrp child, which then gets every check state
// again (with the new weights). A child the old configuration did not need starts now; one
// the new configuration does not need stays, idle (it gets a configuration with nothing
// for it to run). A child that is restarting gets cfg when it starts. A check child that
// runs as script_user is restarted as root, with cfg, when cfg is the first to program IPVS
// (a virtual_server or lvs_sync_daemon): as script_user it has no capability to do so.
func (s *Supervisor) Reload(ctx context.Context, cfg *config.Config) (ReloadReport, error) {
	wantVRRP, wantCheck, err := Needed(cfg)
	if err != nil {
		return ReloadReport{}, err
	}
	s.mu.Lock()
	s.cfg, s.req = cfg, child.StartRequest(cfg)
	s.names = s.checkNamesLocked()
	s.demotionsAfterReload(cfg)
	req := s.req
	restartCheck := false
	if s.runCtx != nil && s.runCtx.Err() == nil {
		for _, p := range s.children {
			if p.role != child.RoleCheck {
				continue
			}
			p.mu.Lock()
			if p.cred != nil && !checkAsScriptUser(cfg, s.opts.Log) {
				// It stays root after a reload that removes the load balancer again, as
				// keepalived's checker process, which always runs as root.
				p.cred, restartCheck = nil, true
			}
			p.mu.Unlock()
			if restartCheck {
				select {
				case p.restart <- struct{}{}:
				default:
				}
			}
		}
		for _, need := range []struct {
			want bool
			role child.Role
		}{{wantCheck, child.RoleCheck}, {wantVRRP, child.RoleVRRP}} {
			if need.want && !slices.ContainsFunc(s.children, func(p *proc) bool { return p.role == need.role }) {
				p := newProc(need.role)
				if need.role == child.RoleCheck && cfg.Global.ScriptUser != "" && checkAsScriptUser(cfg, s.opts.Log) {
					cred, err := script.LookupUser(cfg.Global.ScriptUser, cfg.Global.ScriptGroup)
					if err != nil {
						s.mu.Unlock()
						return ReloadReport{}, fmt.Errorf("script_user: %w", err)
					}
					p.cred = cred
				}
				s.children = append(s.children, p)
				s.start(p) // it starts with the new text
			}
		}
	}
	s.mu.Unlock()

	var rep ReloadReport
	var errs []error
	if restartCheck {
		// The new check child starts with cfg: every check restarts, with a fresh state.
		names := checkNames(cfg)
		rep.Checks.Restarted = slices.Sorted(maps.Keys(names))
		s.mu.Lock()
		for name := range s.checks {
			if !names[name] {
				delete(s.checks, name)
			}
		}
		s.took(child.RoleCheck, cfg)
		s.mu.Unlock()
	} else if c := s.checkClient(); c != nil {
		r, err := c.Reload(ctx, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("check process: %s", status.Convert(err).Message()))
		} else {
			rep.Checks = childReload(r)
			s.mu.Lock()
			for _, name := range r.GetRemoved() {
				delete(s.checks, name)
			}
			s.took(child.RoleCheck, cfg)
			s.mu.Unlock()
		}
	}
	if v := s.vrrpClient(); v != nil {
		r, err := v.Reload(ctx, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp process: %s", status.Convert(err).Message()))
		} else {
			rep.VRRP = childReload(r)
			s.mu.Lock()
			s.took(child.RoleVRRP, cfg)
			s.mu.Unlock()
		}
		// The child keeps its set through a reload; this adds what the reload grouped
		// with a demoted instance.
		s.pushDemoted(ctx)
		s.replayChecks(ctx, v)
	}
	return rep, errors.Join(errs...)
}

// took records that the child of role applied cfg (see ran). Called with s.mu held.
func (s *Supervisor) took(role child.Role, cfg *config.Config) {
	s.ran[role] = [2]*config.Config{cfg, s.ran[role][0]}
	if role == child.RoleCheck {
		s.names = s.checkNamesLocked()
	}
}

// checkNamesLocked is the checks of cfg and of every configuration the check child may send
// states by (see ran). Called with s.mu held.
func (s *Supervisor) checkNamesLocked() map[string]bool {
	live := map[*config.Config]map[string]bool{}
	of := func(c *config.Config) map[string]bool {
		n, ok := s.namesOf[c]
		if !ok {
			n = checkNames(c)
		}
		live[c] = n
		return n
	}
	names := maps.Clone(of(s.cfg))
	for _, c := range s.ran[child.RoleCheck] {
		if c != nil {
			maps.Copy(names, of(c))
		}
	}
	s.namesOf = live // what no live configuration needs is dropped
	return names
}

func (s *Supervisor) checkClient() childpb.CheckClient {
	p := s.checkProc()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check
}

// checkProc is the check child, nil when there is none.
func (s *Supervisor) checkProc() *proc {
	for _, p := range s.procs() {
		if p.role == child.RoleCheck {
			return p
		}
	}
	return nil
}

// procs is the children, which a reload may add to.
func (s *Supervisor) procs() []*proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.children)
}

// ErrNoCheckProcess is ValidateChecks' answer when no check child is there to ask: the
// configuration had no checks, or the child is (re)starting. The caller validates on a fresh
// plugin host of its own then.
var ErrNoCheckProcess = errors.New("no running check process")

// CheckVerdict is a plugin's answer to one check's params: Err is the plugin host's error as
// it reads (empty: accepted); NotInstalled says it is core/plugin.ErrNotFound.
type CheckVerdict struct {
	Err          string
	NotInstalled bool
}

// ValidateChecks asks the running check child whether its plugins accept items (ValidateOnly:
// they keep nothing; see core/child's Validate), for the reload to cfg. It answers one
// verdict per item, in order, or an error when the child cannot answer for all of them:
// ErrNoCheckProcess when none runs, or when the reload will restart it as root (its plugins
// run as script_user until then, and may read less); the child's own refusal (another
// plugin_dir or plugin_sha256, a stop meanwhile, an older child without Validate); or the
// call's failure. A reload validates on a fresh plugin host then, as `vigil -t` does.
func (s *Supervisor) ValidateChecks(ctx context.Context, cfg *config.Config, items []child.ValidateItem) ([]CheckVerdict, error) {
	var c childpb.CheckClient
	if p := s.checkProc(); p != nil {
		p.mu.Lock()
		if p.cred == nil || checkAsScriptUser(cfg, nil) {
			c = p.check
		}
		p.mu.Unlock()
	}
	if c == nil {
		return nil, ErrNoCheckProcess
	}
	r, err := c.Validate(ctx, child.ValidateRequest(cfg.Global, items))
	if err != nil {
		return nil, fmt.Errorf("check process: %w", err)
	}
	if n := len(r.GetResults()); n != len(items) {
		return nil, fmt.Errorf("check process: %d answers to %d checks", n, len(items))
	}
	out := make([]CheckVerdict, len(items))
	for i, res := range r.GetResults() {
		out[i] = CheckVerdict{Err: res.GetError(), NotInstalled: res.GetNotInstalled()}
	}
	return out, nil
}
