package plugin

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc/health/grpc_health_v1"

	corecheck "github.com/vigil-ha/vigil/core/check"
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
	// StartTimeout bounds a plugin's start-up and the replay of its configuration (10s).
	StartTimeout time.Duration
	// PingTimeout is how long a plugin that let a call pass its deadline has to answer a
	// health ping before it is killed as hung (2s).
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

// stableRun is how long a plugin must have run for its next death to restart it at once.
const stableRun = time.Minute

// Host runs plugins for vigil. Its methods are safe for concurrent use.
type Host struct {
	opts   Options
	mu     sync.Mutex
	procs  map[key]*proc
	closed bool
	// starts and kills track the goroutines that start and kill processes: Close waits for
	// both, so that it returns only when every process has been reaped.
	starts sync.WaitGroup
	kills  sync.WaitGroup
}

type key struct {
	kind sdk.Kind
	name string
}

// New returns a Host; plugins start on first use.
func New(opts Options) *Host {
	return &Host{opts: opts.withDefaults(), procs: map[key]*proc{}}
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
				return nil, fmt.Errorf("%s plugin %s is not answering (a health ping is out): %w", p.kind, p.name, ctx.Err())
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
				return nil, fmt.Errorf("%w: %s plugin %s: retrying in %s after: %w", sdk.ErrUnavailable, p.kind, p.name, wait.Round(time.Millisecond), err)
			}
			return nil, fmt.Errorf("%w: %s plugin %s died, restarting in %s", sdk.ErrUnavailable, p.kind, p.name, wait.Round(time.Millisecond))
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
		return nil, fmt.Errorf("waiting for %s plugin %s to start: %w", p.kind, p.name, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return p.cur, nil
	}
	return nil, p.startErr
}

// start launches a process and replays the configuration to it. Callers wait on ch.
func (p *proc) start(ch chan struct{}) {
	defer p.h.starts.Done()
	r, err := p.launch()
	if err == nil {
		err = p.replay(r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(ch)
	p.starting, p.startErr = nil, err
	switch {
	case err != nil:
		if r != nil {
			p.h.kills.Go(r.kill)
		}
		p.backoffLocked()
		p.log.Error("plugin did not start", "error", err)
	case p.closed:
		p.h.kills.Go(r.kill)
		p.startErr = ErrClosed
	default:
		p.cur = r
		p.log.Debug("plugin started", "pid", r.pid, "protocol", r.version)
	}
}

func (p *proc) launch() (*run, error) {
	o := p.h.opts
	path, err := find(o.Dir, p.kind, p.name, o.Checksums)
	if err != nil {
		return nil, err
	}
	set := check.VersionedPlugins()
	if p.kind == sdk.KindNotify {
		set = notify.VersionedPlugins()
	}
	var pr *procRunner
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: set,
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			var err error
			pr, err = newProcRunner(p.log, path, strings.ToLower(o.Checksums[Executable(p.kind, p.name)]), spec)
			return pr, err
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		StartTimeout:     o.StartTimeout,
		Logger:           o.Logger,
	}
	client := plugin.NewClient(cfg)
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		if pr != nil && pr.pid > 0 {
			killGroup(pr.pid)
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

// replay sends every kept configuration to a new process.
func (p *proc) replay(r *run) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.StartTimeout)
	defer cancel()
	p.mu.Lock()
	reqs := make([]sdk.ConfigureRequest, 0, len(p.configs))
	for _, req := range p.configs {
		reqs = append(reqs, req)
	}
	p.mu.Unlock()
	for _, req := range reqs {
		var err error
		switch impl := r.impl.(type) {
		case check.Checker:
			_, err = impl.Configure(ctx, req)
		case notify.Notifier:
			_, err = impl.Configure(ctx, req)
		}
		if err != nil {
			// The plugin changed its mind about params it accepted before: that name stays
			// unconfigured (its calls fail with the plugin's message), the others work.
			p.log.Error("restarted plugin rejects a configuration it accepted before", "name", req.Name, "error", err)
		}
	}
	return nil
}

// diedLocked forgets a dead process and arms the backoff.
func (p *proc) diedLocked(r *run, why string) {
	if p.cur != r {
		return
	}
	p.cur = nil
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
func (p *proc) callRun(ctx context.Context, f func(r *run) error) error {
	r, err := p.get(ctx)
	if err != nil {
		return err
	}
	err = f(r)
	switch {
	case err == nil:
	case errors.Is(err, sdk.ErrUnavailable) || r.client.Exited():
		p.mu.Lock()
		p.diedLocked(r, err.Error())
		p.mu.Unlock()
		return fmt.Errorf("%s plugin %s died during the call: %w", p.kind, p.name, err)
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

func (p *proc) pingNow(r *run, sus chan struct{}) {
	defer r.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), p.h.opts.PingTimeout)
	defer cancel()
	_, err := grpc_health_v1.NewHealthClient(r.rpc.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	p.mu.Lock()
	defer p.mu.Unlock()
	// The verdict is in before the waiting calls go on: a hung process is no longer current.
	defer close(sus)
	r.suspect = nil
	if err == nil {
		return
	}
	p.diedLocked(r, "hung: no answer to a health ping: "+err.Error())
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
	in.Name, in.Version, in.Description = corecheck.Message(in.Name), corecheck.Message(in.Version), corecheck.Message(in.Description)
	params := make([]sdk.ParamSpec, 0, min(len(in.Params), maxParams))
	for _, p := range in.Params[:min(len(in.Params), maxParams)] {
		p.Name, p.Default, p.Description = corecheck.Message(p.Name), corecheck.Message(p.Default), corecheck.Message(p.Description)
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
// (corecheck.Message): it goes to the log and to the operator's terminal (vigil -t).
func boundPluginError(err error) error {
	var pe *sdk.PluginError
	if errors.As(err, &pe) {
		if m := corecheck.Message(pe.Msg); m != pe.Msg {
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
		out = append(out, corecheck.Message(w))
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
