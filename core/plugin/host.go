package plugin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// Options configure a Host.
type Options struct {
	// Dir is the plugin directory; ResolveDir("") when empty.
	Dir string
	// Checksums pins plugins by the lower-case hex SHA-256 of their executable, keyed by
	// executable name (vigil-check-mysql). Unpinned plugins run unchecked.
	Checksums map[string]string
	// Logger receives the host's messages and every plugin's log lines, named after the
	// plugin's executable. hclog's default logger when nil.
	Logger hclog.Logger
	// StartTimeout is how long a starting plugin may go without progress before the start
	// fails (10s): neither running nor waiting for a CPU (/proc's schedstat), and, during
	// the replay of its configurations, answering none. A start that makes progress goes on
	// (a loaded machine only makes it slow; a replay of N configurations costs N answers), up
	// to startLimit StartTimeouts for the handshake, and for the replay up to startLimit
	// StartTimeouts without an answer, whatever the CPU shows.
	StartTimeout time.Duration
	// PingTimeout is how long each health ping waits for an answer (2s). A plugin that let
	// a call pass its deadline is pinged until it answers; it is killed as hung only after
	// pingMisses pings in a row missed while it made no progress (see ping), or after
	// busyPings PingTimeouts without an answer whatever it did.
	PingTimeout time.Duration
	// MaxBackoff caps the wait before restarting a plugin that keeps dying (30s).
	MaxBackoff time.Duration
}

// ConfigOptions are the Options that global_defs asks for: plugin_dir and plugin_sha256.
func ConfigOptions(g config.Global, log hclog.Logger) Options {
	return Options{Dir: ResolveDir(g.PluginDir), Checksums: g.PluginSHA256, Logger: log}
}

func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = ResolveDir("")
	}
	if o.Logger == nil {
		o.Logger = hclog.Default()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 2 * time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	return o
}

// ErrClosed is returned by calls on a closed Host.
var ErrClosed = errors.New("plugin host closed")

// notRunError marks the error of a call that never reached a working plugin process: the
// plugin was starting, restarting (dead, or backing off after deaths), under a hang verdict,
// or died under the call. Prober makes such a probe a checksched.Result with NoResult: the
// service was not asked, so the check scheduler counts it neither way within the check's
// failure budget (checksched.FailureBudget), and as a failure past it. The message is the
// wrapped error's.
type notRunError struct{ err error }

func (e notRunError) Error() string { return e.err.Error() }
func (e notRunError) Unwrap() error { return e.err }

func notRun(err error) error { return notRunError{err} }

// isNotRun reports whether err kept a call from reaching a working plugin (notRunError).
func isNotRun(err error) bool {
	var n notRunError
	return errors.As(err, &n)
}

// stableRun is how long a plugin must have run for its next death to restart it at once.
const stableRun = time.Minute

// startLimit bounds a plugin's handshake, and each wait for the next answer of its replay,
// in StartTimeouts, however much progress it shows: one that computes forever without
// shaking hands, or spins in a Configure, must fail some time (as busyPings bounds a busy
// plugin's health pings), or its start, and a Close waiting for it, would never end.
const startLimit = 6

// pingMisses is how many health pings in a row a plugin must miss, while it makes no
// progress, to be killed as hung. One miss proves little: the machine may have been busy
// just then, or the plugin stopped for a moment. Two, PingTimeout each, without the plugin
// running or even waiting for a CPU between them, leave no other explanation than a stuck
// process, and cost a frozen plugin's checks no more than their failure budget holds (the
// probes waiting for the verdict have no result, see notRunError).
const pingMisses = 2

// busyPings bounds, in PingTimeouts, how long a plugin that keeps busy may leave health pings
// unanswered before it is killed all the same: a plugin spinning in a loop runs, but serves
// nobody. A saturated machine delays an answer by seconds, not by a minute.
const busyPings = 30

// Host runs plugins for vigil. Its methods are safe for concurrent use.
type Host struct {
	opts   Options
	mu     sync.Mutex
	procs  map[key]*proc
	closed bool
	// ctx ends when Close begins: a start under way (handshake or replay) is abandoned
	// then, instead of Close waiting for it up to its bounds.
	ctx    context.Context
	cancel context.CancelFunc
	// starts and kills track the goroutines that start and kill processes: Close waits for
	// both, so that it returns only when every process has been reaped.
	starts sync.WaitGroup
	kills  sync.WaitGroup
}

type key struct {
	kind sdk.Kind
	name string
}

// PluginStats is what the metrics show of one plugin.
type PluginStats struct {
	Kind sdk.Kind
	Name string
	Up   bool // a process runs
	// Restarts counts the plugin's processes that died or were killed as hung: each is
	// replaced on the plugin's next use.
	Restarts uint64
}

// Stats returns every plugin the host has used, by kind and name.
func (h *Host) Stats() []PluginStats {
	h.mu.Lock()
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	out := make([]PluginStats, 0, len(procs))
	for _, p := range procs {
		p.mu.Lock()
		out = append(out, PluginStats{Kind: p.kind, Name: p.name, Up: p.cur != nil, Restarts: p.died})
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b PluginStats) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// New returns a Host; plugins start on first use.
func New(opts Options) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{opts: opts.withDefaults(), procs: map[key]*proc{}, ctx: ctx, cancel: cancel}
}

// Dir is the plugin directory the host looks in (Options.Dir, resolved).
func (h *Host) Dir() string { return h.opts.Dir }

// proc is one plugin: its current process, if any, and what to replay to the next one.
type proc struct {
	h    *Host
	kind sdk.Kind
	name string
	log  hclog.Logger

	mu        sync.Mutex
	cur       *run
	starting  chan struct{} // closed when the start in progress ends
	startErr  error         // of the last start
	notBefore time.Time     // no restart before this (backoff)
	deaths    int           // deaths in a row, each after a short run
	died      uint64        // deaths in all, for metrics (Stats)
	configs   map[string]sdk.ConfigureRequest
	closed    bool
}

// run is one process of a plugin.
type run struct {
	client  *plugin.Client
	rpc     *plugin.GRPCClient
	impl    any // check.Checker or notify.Notifier
	pid     int
	version int // the protocol version negotiated with the plugin
	started time.Time
	pinging atomic.Bool
	// pinged is when the last health ping began (unix nanoseconds): the early pings of
	// probes late on a loaded machine come at most one per PingTimeout.
	pinged atomic.Int64
	// suspect is set (under proc.mu) while a health ping decides whether the process is
	// hung, and closed when it has: a call waits for the verdict instead of going to a
	// process that may never answer.
	suspect chan struct{}
}

func (h *Host) proc(kind sdk.Kind, name string) (*proc, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	k := key{kind, name}
	p := h.procs[k]
	if p == nil {
		p = &proc{h: h, kind: kind, name: name, log: h.opts.Logger.With("plugin", Executable(kind, name)), configs: map[string]sdk.ConfigureRequest{}}
		h.procs[k] = p
	}
	return p, nil
}

// nameKey is the field that names one of the plugin's configurations in a line: the
// check's name, or the vrrp_notify block's (as core/notify's lines name it).
func (p *proc) nameKey() string {
	if p.kind == sdk.KindCheck {
		return "check"
	}
	return "notifier"
}

// get returns the running process of the plugin, starting it if needed. It waits for a
// start in progress until ctx ends.
func (p *proc) get(ctx context.Context) (*run, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if r := p.cur; r != nil {
		if sus := r.suspect; sus != nil {
			// A call passed its deadline on this process and a ping is out. Sending the
			// next call there would lose it too if the process is hung (a plugin frozen
			// with SIGSTOP cost three probes so, one more than fall 3 allows): wait for the
			// verdict, then take whatever process is current.
			p.mu.Unlock()
			select {
			case <-sus:
			case <-ctx.Done():
				return nil, notRun(fmt.Errorf("%s plugin %s is not answering (a health ping is out): %w", p.kind, p.name, ctx.Err()))
			}
			return p.get(ctx)
		}
		if !r.client.Exited() {
			p.mu.Unlock()
			return r, nil
		}
		p.diedLocked(r, "exited")
	}
	if p.starting == nil {
		if wait := time.Until(p.notBefore); wait > 0 {
			err := p.startErr
			p.mu.Unlock()
			if err != nil {
				// No result only if the start failed in the plugin's run (see start): a
				// missing or refused executable stays so, and its checks fail at once.
				return nil, fmt.Errorf("%w: %s plugin %s: retrying in %s after: %w", sdk.ErrUnavailable, p.kind, p.name, wait.Round(time.Millisecond), err)
			}
			return nil, notRun(fmt.Errorf("%w: %s plugin %s died, restarting in %s", sdk.ErrUnavailable, p.kind, p.name, wait.Round(time.Millisecond)))
		}
		ch := make(chan struct{})
		p.starting = ch
		p.h.starts.Add(1)
		go p.start(ch)
	}
	ch := p.starting
	p.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, notRun(fmt.Errorf("waiting for %s plugin %s to start: %w", p.kind, p.name, ctx.Err()))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return p.cur, nil
	}
	return nil, p.startErr // notRun, or not, as start made it
}

// start launches a process and replays the configuration to it. Callers wait on ch.
//
// Its error is notRun when the plugin's run failed (launch, handshake, replay, a death):
// its checks' probes then have no result for a while. An executable that cannot be run at
// all (missing, refused as unsafe, its checksum not the pinned one: launch's find) is
// returned plainly: it stays so until someone acts, and waiting a failure budget for it
// would only delay the checks' verdict.
func (p *proc) start(ch chan struct{}) {
	defer p.h.starts.Done()
	r, err := p.launch()
	if err == nil {
		if err = p.replay(r); err != nil {
			err = notRun(fmt.Errorf("start %s plugin %s: %w", p.kind, p.name, err))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(ch)
	p.starting, p.startErr = nil, err
	switch {
	case p.closed:
		// The host closed under the start (which it may have cut short): no failure.
		if r != nil {
			p.h.kills.Go(r.kill)
		}
		p.startErr = ErrClosed
	case err != nil:
		if r != nil {
			p.h.kills.Go(r.kill)
		}
		p.backoffLocked()
		p.log.Error("plugin did not start", "error", err)
	default:
		p.cur = r
		p.log.Debug("plugin started", "pid", r.pid, "protocol", r.version)
	}
}

func (p *proc) launch() (*run, error) {
	o := p.h.opts
	path, err := find(o.Dir, p.kind, p.name, o.Checksums)
	if err != nil {
		return nil, err // plainly: see start
	}
	r, err := p.launchPath(path)
	if err != nil {
		return nil, notRun(err)
	}
	return r, nil
}

// launchPath starts the plugin at path and shakes hands with it.
func (p *proc) launchPath(path string) (*run, error) {
	o := p.h.opts
	set := check.VersionedPlugins()
	if p.kind == sdk.KindNotify {
		set = notify.VersionedPlugins()
	}
	var pr *procRunner
	var started atomic.Pointer[procRunner] // pr, for the stall watch
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: set,
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			var err error
			pr, err = newProcRunner(p.log, path, strings.ToLower(o.Checksums[Executable(p.kind, p.name)]), spec)
			if err == nil {
				started.Store(pr)
			}
			return pr, err
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		// go-plugin's own deadline is only the outer bound: the stall watch below ends a
		// start that makes no progress long before it, and lets one that does go on.
		StartTimeout: startLimit * o.StartTimeout,
		// The plugin's own lines (its stderr, which go-plugin re-logs) carry plugin= as
		// the host's lines about it do.
		Logger: p.log,
	}
	client := plugin.NewClient(cfg)
	// A fixed deadline for the handshake failed every restart of a plugin on a saturated
	// machine (qemu TCG at load 7: "timeout while waiting for plugin to start", again and
	// again) while the plugin was starting as fast as it could. Only a plugin that neither
	// runs nor waits for a CPU for StartTimeout is stuck: that one is killed, which ends
	// go-plugin's wait at once; so is one that shows progress for startLimit StartTimeouts
	// without shaking hands, and one the host gives up as it closes.
	var stalled atomic.Pointer[string]
	watched := make(chan struct{})
	pidOf := func() int {
		if r := started.Load(); r != nil {
			return int(r.started.Load())
		}
		return 0
	}
	go watchStall(watched, o.StartTimeout, startLimit*o.StartTimeout, pidOf, func() int64 { return 0 }, func(quiet time.Duration, busy bool) {
		why := fmt.Sprintf("no progress for %s (it neither ran nor waited for a CPU) before its handshake: killed", quiet.Round(time.Millisecond))
		if busy {
			why = fmt.Sprintf("no handshake after %s, though it ran: killed", quiet.Round(time.Millisecond))
		}
		stalled.Store(&why)
		killGroup(pidOf())
	})
	go func() {
		select {
		case <-watched:
			return
		case <-p.h.ctx.Done():
		}
		// Close: kill the process, or, before it runs, as soon as it does.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if pid := pidOf(); pid > 0 {
				killGroup(pid)
				return
			}
			select {
			case <-watched:
				return
			case <-tick.C:
			}
		}
	}()
	proto, err := client.Client()
	close(watched)
	if err == nil && stalled.Load() != nil {
		err = errors.New("killed by the stall watch as it answered")
	}
	if err != nil {
		client.Kill()
		if pr != nil && pr.pid > 0 {
			killGroup(pr.pid)
		}
		if why := stalled.Load(); why != nil {
			return nil, fmt.Errorf("start %s: %s (%w)", path, *why, err)
		}
		return nil, startError(path, err)
	}
	raw, err := proto.Dispense(string(p.kind))
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("%s is not a %s plugin: %w", path, p.kind, err)
	}
	return &run{client: client, rpc: proto.(*plugin.GRPCClient), impl: raw, pid: pr.pid, version: client.NegotiatedVersion(), started: time.Now()}, nil
}

var pluginVersion = regexp.MustCompile(`Plugin version: (\d+)`)

// startError explains go-plugin's start-up errors in vigil's terms.
func startError(path string, err error) error {
	if m := pluginVersion.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%w: %s speaks vigil plugin protocol %s, this vigil speaks %d to %d: install a build of the plugin made with an SDK for protocol %d", ErrProtocol, path, m[1], sdk.MinProtocolVersion, sdk.ProtocolVersion, sdk.ProtocolVersion)
	}
	if errors.Is(err, ErrChecksum) {
		return err
	}
	return fmt.Errorf("start %s: %w", path, err)
}

// replayConcurrency bounds the Configure calls of a replay in flight at once: enough to keep
// the plugin busy while each answer crosses, not so many that a thousand go out together.
const replayConcurrency = 16

// replay sends every kept configuration to a new process, replayConcurrency at a time.
//
// Its cost is proportional to the configurations (the IPVS benchmark replays a thousand
// TCP_CHECKs), so it has no fixed deadline: it fails when neither an answer comes nor the
// plugin runs or waits for a CPU for StartTimeout (watchStall), when no answer comes for
// startLimit StartTimeouts whatever the CPU shows (a plugin spinning in a Configure), or when
// the process dies under it; Close cuts it short. A configuration the plugin refuses now, or
// that fails otherwise, is logged and the others go on.
func (p *proc) replay(r *run) error {
	p.mu.Lock()
	reqs := make([]sdk.ConfigureRequest, 0, len(p.configs))
	for _, req := range p.configs {
		reqs = append(reqs, req)
	}
	p.mu.Unlock()
	if len(reqs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(p.h.ctx)
	defer cancel(nil)
	var answered atomic.Int64
	watched := make(chan struct{})
	defer close(watched)
	go watchStall(watched, p.h.opts.StartTimeout, startLimit*p.h.opts.StartTimeout, func() int { return r.pid }, answered.Load, func(quiet time.Duration, busy bool) {
		if busy {
			cancel(fmt.Errorf("no answer for %s replaying its configurations (%d of %d answered), though it ran", quiet.Round(time.Millisecond), answered.Load(), len(reqs)))
			return
		}
		cancel(fmt.Errorf("no progress for %s replaying its configurations (%d of %d answered; it neither ran nor waited for a CPU)", quiet.Round(time.Millisecond), answered.Load(), len(reqs)))
	})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error // the first call that failed for another reason than the plugin's refusal
	)
	sem := make(chan struct{}, replayConcurrency)
send:
	for _, req := range reqs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			switch impl := r.impl.(type) {
			case check.Checker:
				_, err = impl.Configure(ctx, req)
			case notify.Notifier:
				_, err = impl.Configure(ctx, req)
			}
			answered.Add(1)
			switch {
			case err == nil:
			case isPluginError(err):
				// The plugin changed its mind about params it accepted before: that name
				// stays unconfigured (its calls fail with the plugin's message), the others
				// work.
				p.log.Error("restarted plugin rejects a configuration it accepted before", p.nameKey(), req.Name, "error", boundPluginError(err))
			case errors.Is(err, sdk.ErrUnavailable) || r.client.Exited():
				// The process died under the replay: this start failed.
				mu.Lock()
				if failure == nil {
					failure = fmt.Errorf("replaying configuration %s: %w", req.Name, err)
				}
				mu.Unlock()
			case ctx.Err() != nil:
				// The replay was cut short (stalled, or the host closes): that is the
				// start's error, not this configuration's.
			default:
				// Whatever else failed (an answer over the size limit, say) fails again
				// at every restart: that name stays unconfigured, the others work.
				p.log.Error("restarted plugin failed a configuration it accepted before", p.nameKey(), req.Name, "error", err)
			}
		})
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return failure
}

// diedLocked forgets a dead process and arms the backoff.
func (p *proc) diedLocked(r *run, why string) {
	if p.cur != r {
		return
	}
	p.cur = nil
	p.died++
	if time.Since(r.started) >= stableRun {
		p.deaths = 0
	}
	p.backoffLocked()
	p.log.Warn("plugin died, will restart", "pid", r.pid, "why", why, "restart_in", time.Until(p.notBefore).Round(time.Millisecond))
	// Dead or hung: nothing graceful is left to do.
	p.h.kills.Go(r.killNow)
}

// backoffLocked: the first restart is at once, then after 1, 2, 4 ... MaxBackoff seconds.
func (p *proc) backoffLocked() {
	wait := time.Duration(0)
	if p.deaths > 0 {
		wait = min(time.Second<<min(p.deaths-1, 16), p.h.opts.MaxBackoff)
	}
	p.deaths++
	p.notBefore = time.Now().Add(wait)
}

// call runs f on the plugin's process and deals with the process's fate: a call that failed
// because the process died marks it for restart; a call that ran past its deadline makes
// the host ping the process and kill it if it does not answer.
func (p *proc) call(ctx context.Context, f func(impl any) error) error {
	return p.callRun(ctx, func(r *run) error { return f(r.impl) })
}

// callRun is call with the process at hand.
//
// A probe's call waits past the probe's own deadline (check.WithProbeDeadline) for a late
// plugin's verdict. A plugin that is frozen would be found only once that longer wait ran
// out, seconds later than before there was one; so the host starts pinging (pingEarly) when
// the probe deadline is PingTimeout/2 behind and the call still runs: a frozen plugin is
// killed then, while a busy one answers its pings and keeps the call.
func (p *proc) callRun(ctx context.Context, f func(r *run) error) error {
	r, err := p.get(ctx)
	if err != nil {
		return err
	}
	if pdl, ok := check.ProbeDeadline(ctx); ok {
		if dl, ok := ctx.Deadline(); !ok || pdl.Before(dl) {
			t := time.AfterFunc(time.Until(pdl)+p.h.opts.PingTimeout/2, func() { p.pingEarly(r) })
			defer t.Stop()
		}
	}
	err = f(r)
	switch {
	case err == nil:
	case errors.Is(err, sdk.ErrUnavailable) || r.client.Exited():
		p.mu.Lock()
		p.diedLocked(r, err.Error())
		p.mu.Unlock()
		if pdl, ok := check.ProbeDeadline(ctx); ok && time.Now().After(pdl) {
			// The plugin had the probe and let its deadline pass (then it was found hung,
			// or it died): the probe timed out, as it would have without the longer wait.
			return fmt.Errorf("%s plugin %s gave no answer by the probe's deadline, then died: %w", p.kind, p.name, err)
		}
		return notRun(fmt.Errorf("%s plugin %s died during the call: %w", p.kind, p.name, err))
	case ctx.Err() != nil:
		p.ping(r)
		return fmt.Errorf("%s plugin %s: %w", p.kind, p.name, ctx.Err())
	case !isPluginError(err):
		// The transport refused the answer (one over the size limit, say): whose was it.
		return fmt.Errorf("%s plugin %s: %w", p.kind, p.name, err)
	}
	return boundPluginError(err)
}

// ping kills a process that does not answer a health ping: it is hung, not just slow.
//
// It marks the process suspect before it returns, so that no call after the one that passed
// its deadline goes there until the verdict; the ping itself runs in the background.
func (p *proc) ping(r *run) {
	if !r.pinging.CompareAndSwap(false, true) {
		return
	}
	sus := make(chan struct{})
	p.mu.Lock()
	r.suspect = sus
	p.mu.Unlock()
	go p.pingNow(r, sus)
}

// pingEarly pings a process that a probe's call is still waiting on past the probe's
// deadline (callRun). Unlike ping it leaves other calls free to go there: the plugin may
// only be late, and its verdict is still awaited. At most one a PingTimeout.
func (p *proc) pingEarly(r *run) {
	if time.Since(time.Unix(0, r.pinged.Load())) < p.h.opts.PingTimeout || !r.pinging.CompareAndSwap(false, true) {
		return
	}
	go p.pingNow(r, nil)
}

// pingNow pings r until it answers, or until the evidence says it is hung.
//
// A slow plugin is not a hung one. On a saturated machine (the IPVS benchmark: qemu TCG at
// load 7, a thousand TCP_CHECKs a second through one plugin) a single ping with a fixed
// deadline killed a plugin that was working as hard as the kernel let it, and every restart
// then cost the checks more than the slowness did. So a missed ping counts towards the verdict
// only when the kernel shows that the plugin did nothing meanwhile: none of its threads ran
// or waited on a run queue for a CPU (schedOf, progressed), and the host itself was able to
// run (late: a reply nobody read in time is no evidence). Such a plugin is stopped or
// blocked for good; pingMisses misses in a row of it are the verdict. A plugin that made
// progress is busy: calls may go to it again, and the pings go on with a longer deadline,
// up to busyPings PingTimeouts without an answer, after which it is killed all the same.
//
// Calls wait for the verdict only while there is no sign of life (suspect): a plugin frozen
// with SIGSTOP lost every probe sent to it.
//
// sus is nil for an early ping (pingEarly), which holds no call back.
func (p *proc) pingNow(r *run, sus chan struct{}) {
	defer r.pinging.Store(false)
	r.pinged.Store(time.Now().UnixNano())
	released := false
	// settle ends the suspicion, with a death when why is not empty. The verdict is in
	// before the waiting calls go on: a hung process is no longer current.
	settle := func(why string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if why != "" {
			p.diedLocked(r, why)
		}
		if sus != nil && r.suspect == sus {
			r.suspect = nil
		}
		if !released && sus != nil {
			released = true
			close(sus)
		}
	}
	base := p.h.opts.PingTimeout
	timeout := base
	first := time.Now()
	misses, busy := 0, 0
	for {
		pb := schedOf(r.pid)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := grpc_health_v1.NewHealthClient(r.rpc.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
		cancel()
		if err == nil {
			if busy > 0 {
				p.log.Info("plugin answered a health ping after a busy spell: slow, not hung", "pid", r.pid, "after", time.Since(first).Round(time.Millisecond))
			}
			settle("")
			return
		}
		p.mu.Lock()
		gone := p.cur != r || p.closed
		p.mu.Unlock()
		if gone {
			settle("") // dead or replaced already: whoever saw that armed the restart
			return
		}
		if r.client.Exited() {
			settle("exited")
			return
		}
		// An error before the deadline (a transport being torn down, say) is judged over
		// the ping's whole span, as a silence would be, and keeps this loop slow.
		time.Sleep(timeout - time.Since(start))
		span := time.Since(start)
		pa := schedOf(r.pid)
		switch {
		case progressed(pb, pa, span):
			if busy == 0 {
				p.log.Warn("plugin slow to answer a health ping, but busy (it runs or waits for a CPU): not hung, pinging on", "pid", r.pid, "timeout", timeout)
			}
			busy++
			misses = 0
			settle("") // it works: calls may go to it, as to any slow process
			timeout = min(timeout*2, 8*base)
		case late(timeout, span):
			// This goroutine woke up late: the host could hardly run itself, and the miss
			// proves nothing about the plugin.
		default:
			misses++
		}
		switch {
		case misses >= pingMisses:
			settle(fmt.Sprintf("hung: no answer to %d health pings in a row, and no progress meanwhile (it neither ran nor waited for a CPU): %v", misses, err))
			return
		case time.Since(first) >= busyPings*base:
			settle(fmt.Sprintf("hung: no answer to health pings for %s, though it ran: %v", time.Since(first).Round(time.Millisecond), err))
			return
		}
	}
}

// kill stops a process and everything in its process group. A process that does not leave
// on go-plugin's graceful shutdown within a few seconds is killed, as is a hung one: go-plugin
// alone would wait for it forever.
func (r *run) kill() {
	done := make(chan struct{})
	go func() {
		r.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		killGroup(r.pid)
		<-done
	}
	// Whatever the plugin started and left behind.
	killGroup(r.pid)
}

// killNow kills the process group at once, then lets go-plugin clean up.
func (r *run) killNow() {
	killGroup(r.pid)
	r.client.Kill()
}

func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// stop ends the plugin's process now, keeping its configuration.
func (h *Host) stop(kind sdk.Kind, name string) {
	h.mu.Lock()
	p := h.procs[key{kind, name}]
	h.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	r := p.cur
	p.cur = nil
	p.mu.Unlock()
	if r != nil {
		r.kill()
	}
}

// Close stops every plugin and waits until each process, and everything in its process
// group, is gone.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	procs := h.procs
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		p.mu.Lock()
		p.closed = true
		r := p.cur
		p.cur = nil
		p.mu.Unlock()
		if r != nil {
			wg.Go(r.kill)
		}
	}
	// Starts under way give up (handshake, replay) once every proc is closed, so that each
	// sees closed and ends quietly.
	h.cancel()
	wg.Wait()
	h.starts.Wait() // a start that was under way kills its own process when it sees closed
	h.kills.Wait()
	return nil
}

// remember keeps (or, for a rejected one, forgets) a configuration to replay after restarts.
func (p *proc) remember(req sdk.ConfigureRequest, err error) {
	if req.ValidateOnly {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		delete(p.configs, req.Name)
		return
	}
	p.configs[req.Name] = req
}

// Describe starts the plugin if needed and returns its description.
func (h *Host) Describe(ctx context.Context, kind sdk.Kind, name string) (sdk.Info, error) {
	p, err := h.proc(kind, name)
	if err != nil {
		return sdk.Info{}, err
	}
	var info sdk.Info
	var version int
	err = p.callRun(ctx, func(r *run) error {
		var err error
		switch impl := r.impl.(type) {
		case check.Checker:
			info, err = impl.Describe(ctx)
		case notify.Notifier:
			info, err = impl.Describe(ctx)
		}
		version = r.version
		return err
	})
	if err == nil {
		// What the plugin's SDK could speak matters less than what this vigil speaks with it.
		info.ProtocolVersion = version
	}
	return boundInfo(info), err
}

// maxParams bounds the params of a plugin's description that are kept: a plugin documents a
// handful.
const maxParams = 256

// boundInfo keeps a plugin's description, which `vigil plugins` prints and the log names
// plugins by, within bounds: each string cut and cleaned as a probe's message is, and at
// most maxParams params.
func boundInfo(in sdk.Info) sdk.Info {
	in.Name, in.Version, in.Description = checksched.Message(in.Name), checksched.Message(in.Version), checksched.Message(in.Description)
	params := make([]sdk.ParamSpec, 0, min(len(in.Params), maxParams))
	for _, p := range in.Params[:min(len(in.Params), maxParams)] {
		p.Name, p.Default, p.Description = checksched.Message(p.Name), checksched.Message(p.Default), checksched.Message(p.Description)
		params = append(params, p)
	}
	in.Params = params
	return in
}

// ConfigureCheck sends the params of one named check to check plugin name. The host keeps
// an accepted configuration and sends it again to a restarted plugin.
func (h *Host) ConfigureCheck(ctx context.Context, name string, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	p, err := h.proc(sdk.KindCheck, name)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	var resp check.ConfigureResponse
	err = p.call(ctx, func(impl any) error {
		var err error
		resp, err = impl.(check.Checker).Configure(ctx, req)
		return err
	})
	if err == nil || isPluginError(err) {
		p.remember(req, err)
	}
	resp.Warnings = boundWarnings(resp.Warnings)
	return resp, err
}

// Check runs one probe of a configured check on check plugin name. It returns by ctx's
// deadline whatever the plugin does.
func (h *Host) Check(ctx context.Context, name string, req check.CheckRequest) (check.CheckResponse, error) {
	p, err := h.proc(sdk.KindCheck, name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	var resp check.CheckResponse
	err = p.call(ctx, func(impl any) error {
		var err error
		resp, err = impl.(check.Checker).Check(ctx, req)
		return err
	})
	return resp, err
}

// ConfigureNotifier sends the params of one named notifier to notify plugin name. The host
// keeps an accepted configuration and sends it again to a restarted plugin.
func (h *Host) ConfigureNotifier(ctx context.Context, name string, req notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	p, err := h.proc(sdk.KindNotify, name)
	if err != nil {
		return notify.ConfigureResponse{}, err
	}
	var resp notify.ConfigureResponse
	err = p.call(ctx, func(impl any) error {
		var err error
		resp, err = impl.(notify.Notifier).Configure(ctx, req)
		return err
	})
	if err == nil || isPluginError(err) {
		p.remember(req, err)
	}
	resp.Warnings = boundWarnings(resp.Warnings)
	return resp, err
}

// Notify delivers one event through notify plugin name.
func (h *Host) Notify(ctx context.Context, name string, req notify.NotifyRequest) error {
	p, err := h.proc(sdk.KindNotify, name)
	if err != nil {
		return err
	}
	return p.call(ctx, func(impl any) error {
		_, err := impl.(notify.Notifier).Notify(ctx, req)
		return err
	})
}

// boundPluginError cuts the plugin's own message in err to what vigil shows of it
// (checksched.Message): it goes to the log and to the operator's terminal (vigil -t).
func boundPluginError(err error) error {
	var pe *sdk.PluginError
	if errors.As(err, &pe) {
		if m := checksched.Message(pe.Msg); m != pe.Msg {
			return &sdk.PluginError{Msg: m}
		}
	}
	return err
}

// maxWarnings bounds the warnings of a plugin's Configure answer that are kept.
const maxWarnings = 16

// boundWarnings keeps at most maxWarnings of a Configure answer's warnings, each cut as a
// probe's message is, and says how many more there were.
func boundWarnings(ws []string) []string {
	if len(ws) == 0 {
		return ws
	}
	out := make([]string, 0, min(len(ws), maxWarnings+1))
	for _, w := range ws[:min(len(ws), maxWarnings)] {
		out = append(out, checksched.Message(w))
	}
	if n := len(ws) - maxWarnings; n > 0 {
		out = append(out, fmt.Sprintf("and %d more warnings", n))
	}
	return out
}

func isPluginError(err error) bool {
	var pe *sdk.PluginError
	return errors.As(err, &pe)
}
