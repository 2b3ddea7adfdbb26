package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/config/watch"
	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/loglimit"
	"github.com/vigil-ha/vigil/core/metrics"
	"github.com/vigil-ha/vigil/core/notify"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/sdk"
)

// daemon is the core process: it owns the pid file and the control socket, starts the
// children the configuration needs, and handles signals until told to stop.
func daemon(cfg *config.Config, o options, opts config.Options, log hclog.Logger) int {
	if len(cfg.Instances) == 0 {
		if _, checks, _ := supervisor.Needed(cfg); !checks {
			log.Error("the configuration has no vrrp_instance and no check; nothing to run")
			return exitConfig
		}
	}
	if err := writePidFile(o.pidFile); err != nil {
		log.Error("cannot start", "error", err)
		return exitInternal
	}
	defer os.Remove(o.pidFile)
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find the vigil binary to start the children", "error", err)
		return exitInternal
	}
	var childArgs []string
	if o.detail {
		childArgs = append(childArgs, "-D")
	}
	if o.dontReleaseIPVS {
		childArgs = append(childArgs, "-I")
	}
	if o.dontReleaseVRRP {
		childArgs = append(childArgs, "-V")
	}
	// Notify actions run in core, fed by the vrrp child's transition stream: VRRP never
	// waits for them. A reload swaps the dispatcher.
	var notifier atomic.Pointer[notify.Dispatcher]
	// notifyMu orders each transition with a reload's swap of dispatchers, so that no event
	// reaches the old dispatcher after the new one took over its states. Transition never
	// blocks, so neither does the lock.
	var notifyMu sync.Mutex
	// lastNotifier is the dispatcher in use when the daemon began to stop.
	var lastNotifier atomic.Pointer[notify.Dispatcher]
	// sd tells systemd how the daemon is doing (Type=notify); nil when not under systemd.
	sd := newSystemd(log)
	// A flapping instance's lines are summarised (the vrrp child limits its own the same
	// way); notify, status and systemd still see every transition.
	lines := loglimit.ForTransitions()
	supOpts := supervisor.Options{Exe: exe, Args: childArgs, Log: log,
		OnTransition: func(t supervisor.Transition) {
			if t.To == notify.MasterRxLowerPri {
				lines.Log(log, "lower:"+t.Instance, hclog.Info, "master heard a lower priority", "instance", t.Instance, "detail", t.Reason, "priority", t.Priority)
			} else {
				lines.Log(log, t.Instance, hclog.Info, "state change", "instance", t.Instance, "from", t.From, "to", t.To, "reason", t.Reason, "priority", t.Priority)
			}
			sd.changed()
			notifyMu.Lock()
			defer notifyMu.Unlock()
			if d := notifier.Load(); d != nil {
				d.Transition(notify.Transition{Instance: t.Instance, From: t.From, To: t.To, Priority: t.Priority, Time: t.Time})
			}
		},
		OnLVS: func(e supervisor.LVSEvent) {
			notifyMu.Lock()
			defer notifyMu.Unlock()
			// At stop the notifier is cleared (VRRP's STOP went out), but the check process's
			// shutdown notifications (omega) come after that: they go to the last one.
			d := notifier.Load()
			if d == nil {
				d = lastNotifier.Load()
			}
			if d != nil {
				d.LVS(notify.LVSEvent{Kind: e.Kind, Service: e.Service, Real: e.Real, Init: e.Init, Stopping: e.Stopping, Time: time.Now()})
			}
		}}
	sup, err := supervisor.New(cfg, supOpts)
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitConfig
	}
	rootBounding := limitCoreCapabilities(cfg, log)

	// Reloads come from SIGHUP, `vigil reload` and the file watcher, and run one at a time
	// on this goroutine; the control socket's goroutines wait for theirs.
	reloads := make(chan reloadRequest)
	var last atomic.Pointer[supervisor.ReloadStatus]
	// The status is the same on the control socket and the metrics listener's /status.
	statusOf := func(ctx context.Context) any {
		st := sup.Status(ctx)
		st.LastReload = last.Load()
		return st
	}
	ctrl, err := control.Listen(o.control, statusOf, func(ctx context.Context) any {
		reply := make(chan supervisor.ReloadStatus, 1)
		select {
		case reloads <- reloadRequest{trigger: "vigil reload", reply: reply}:
		case <-ctx.Done():
			return supervisor.ReloadStatus{Errors: []string{ctx.Err().Error()}}
		}
		return <-reply
	}, handoverActions(sup)...)
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitInternal
	}
	defer ctrl.Close()
	// Metrics are counted always (an atomic add each) and served only when asked for.
	mcore := metrics.NewCore()
	var notifyHost atomic.Pointer[plugin.Host] // core's notify plugins, which a reload replaces
	mcore.Registry.MustRegister(metrics.PluginCollector(func() []*plugin.Host {
		if h := notifyHost.Load(); h != nil {
			return []*plugin.Host{h}
		}
		return nil
	}))
	if addr := cmp.Or(o.metricsListen, cfg.Global.MetricsListen); addr != "" {
		mlog := log.Named("metrics")
		mcore.Registry.MustRegister(metrics.RuntimeCollectors()...)
		srv, err := metrics.Listen(addr, metrics.View{
			Gatherer: &metrics.Gatherer{Core: mcore.Registry, Children: sup.ChildMetrics, Log: mlog},
			Status:   statusOf, Ready: sup.Readiness, Log: mlog})
		if err != nil {
			log.Error("cannot start", "error", err)
			return exitConfig
		}
		defer srv.Close()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	actions := startNotify(cfg, log, mcore.Delivered)
	notifier.Store(actions.d)
	notifyHost.Store(actions.host)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	// The watcher sees editors' renames and symlink swaps, and fires once a burst of writes
	// has settled and the content really changed (core/config/watch).
	var watcher *watch.Watcher
	if o.watch > 0 {
		watcher, err = watch.New(cfg.Files, o.watch, log.Named("watch"))
	} else {
		log.Info("configuration files are not watched (--watch 0); reload with SIGHUP or vigil reload")
	}
	if err != nil {
		log.Warn("configuration files are not watched; reload with SIGHUP or vigil reload", "error", err)
		watcher = nil
	} else if watcher != nil {
		if err := watcher.SetPatterns(cfg.Includes); err != nil {
			log.Warn("include patterns are not watched", "error", err)
		}
		go watcher.Run(ctx, func() {
			select {
			case reloads <- reloadRequest{trigger: "file change"}:
			case <-ctx.Done():
			}
		})
	}

	r := reloader{file: o.file, opts: opts, log: log, sup: sup, notifier: &notifier, notifyMu: &notifyMu, watcher: watcher, rootBounding: rootBounding,
		delivered: mcore.Delivered}
	// The configuration in use, for the status lines that sd's goroutine writes.
	var current atomic.Pointer[config.Config]
	current.Store(cfg)
	summary := func() string { return statusLine(current.Load(), sup.Summary()) }
	// ready is the supervisor's until the children run with the configuration; then READY=1
	// goes out, and reloads are announced (RELOADING=1 before, READY=1 after): before it,
	// a READY=1 after a reload would tell systemd the start is over too soon.
	ready := sup.Ready()
	isReady := false
	// sd's goroutine (status lines, watchdog) ends when the stop begins, before STOPPING=1:
	// nothing of it follows that.
	sdCtx, sdStop := context.WithCancel(ctx)
	defer sdStop()
	sdDone := make(chan struct{})
	endSD := func() {
		sdStop()
		if isReady {
			<-sdDone
		}
	}
	reload := func(trigger string) supervisor.ReloadStatus {
		if isReady {
			sd.reloading(trigger)
		}
		listen := cfg.Global.MetricsListen
		st := r.reload(ctx, trigger, &cfg, &actions)
		notifyHost.Store(actions.host)
		mcore.Reloaded(st.Time, st.OK, st.Report == nil)
		if cfg.Global.MetricsListen != listen && o.metricsListen == "" {
			log.Warn("metrics_listen changed; the listener moves at the next restart of vigil", "listening", listen, "configured", cfg.Global.MetricsListen)
		}
		current.Store(cfg)
		last.Store(&st)
		if isReady {
			sd.reloaded(st, summary)
		}
		return st
	}

	stopSig := ""
loop:
	for {
		select {
		case err := <-done:
			endSD()
			sd.stopping("a child cannot run: " + err.Error())
			cancel()
			actions.close()
			log.Error("stopping: a child cannot run", "error", err)
			return exitConfig
		case <-ready:
			ready, isReady = nil, true
			log.Info("ready: the children run with the configuration")
			sd.ready(summary())
			go func() {
				defer close(sdDone)
				sd.run(sdCtx, sup, summary)
			}()
		case req := <-reloads:
			st := reload(req.trigger)
			if req.reply != nil {
				req.reply <- st
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				dumpState(sup, log)
			case syscall.SIGHUP:
				reload("SIGHUP")
			default:
				stopSig = sig.String()
				break loop
			}
		}
	}
	log.Info("stopping", "signal", stopSig)
	endSD()
	sd.stopping(stopSig)
	// STOP notifications go out while the addresses are still up, with a bounded wait; then
	// the children stop and the vrrp child resigns and removes the addresses.
	stopCtx, stopDone := context.WithTimeout(context.Background(), notifyStopWait)
	if err := actions.d.Stop(stopCtx); err != nil {
		log.Warn("going on before every notify action finished", "error", err)
	}
	stopDone()
	notifyMu.Lock()
	lastNotifier.Store(notifier.Load())
	notifier.Store(nil)
	notifyMu.Unlock()
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		log.Error("children did not stop within 15 s")
	}
	// The load balancer's shutdown scripts (omega) run before the notify actions close.
	lvsCtx, lvsDone := context.WithTimeout(context.Background(), notifyStopWait)
	if err := actions.d.WaitLVS(lvsCtx); err != nil {
		log.Warn("going on before every load-balancer notify script finished", "error", err)
	}
	lvsDone()
	actions.close()
	lines.Flush()
	log.Info("stopped")
	return exitOK
}

// defaultWatchDebounce is how long the watcher waits for a burst of writes to settle: an
// editor's save or a ConfigMap swap takes a few milliseconds; a tool writing several files
// in turn gets one reload for all of them.
const defaultWatchDebounce = 300 * time.Millisecond

// reloadRequest asks the daemon's loop for a reload; reply, when set, gets its result.
type reloadRequest struct {
	trigger string
	reply   chan supervisor.ReloadStatus
}

// reloader applies a changed configuration file to the running daemon.
type reloader struct {
	file     string
	opts     config.Options
	log      hclog.Logger
	sup      *supervisor.Supervisor
	notifier *atomic.Pointer[notify.Dispatcher]
	notifyMu *sync.Mutex
	watcher  *watch.Watcher
	// rootBounding: core kept root's bounding set at start (limitCoreCapabilities).
	rootBounding bool
	// delivered counts notify deliveries (core/metrics).
	delivered func(action, outcome string, took time.Duration)
}

// reload validates the file as `vigil -t` does (plugins' Configure included) and, only if
// it can run, hands it to the children, which keep what did not change. A file with errors
// changes nothing: every error is logged with its place and kept for `vigil status`.
func (r *reloader) reload(ctx context.Context, trigger string, cfg **config.Config, actions *notifyActions) supervisor.ReloadStatus {
	st := supervisor.ReloadStatus{Time: time.Now(), Trigger: trigger}
	if r.watcher != nil {
		// What this reload reads is not reloaded again by the watcher (after a SIGHUP that
		// followed an edit, say); a later write still is.
		snap := r.watcher.Snapshot()
		defer r.watcher.Accept(snap)
	}
	next, diags := config.Load(r.file, r.opts)
	loaded := time.Now()
	var validated time.Time
	if next != nil && !diags.HasErrors() {
		diags = append(diags, validatePluginsOn(next, *cfg, r.sup, r.log)...)
		diags = append(diags, validateNotifyPlugins(next)...)
		validated = time.Now()
		// At start vigil waits for a missing interface; a running daemon refuses a file
		// whose instance could not start, rather than apply the rest without it.
		for _, in := range next.Instances {
			if _, err := net.InterfaceByName(in.Interface); err != nil {
				diags = append(diags, config.Diagnostic{Pos: in.Pos, Severity: config.SevError,
					Msg:  fmt.Sprintf("vrrp_instance %s: interface %q does not exist on this host", in.Name, in.Interface),
					Hint: "create the interface first, then reload"})
			}
		}
	}
	if next == nil || diags.HasErrors() {
		for _, d := range diags.Errors() {
			st.Errors = append(st.Errors, d.String())
			r.log.Error("reload refused: "+d.Msg, "at", d.Pos.String(), "hint", d.Hint)
		}
		r.log.Error("reload refused: the configuration has errors; the running one stays", "file", r.file, "trigger", trigger, "errors", len(st.Errors))
		if r.watcher != nil && next != nil {
			// An include added by the broken file is watched too, so that fixing it reloads.
			r.watcher.SetFiles(append(slices.Clone((*cfg).Files), next.Files...))
		}
		return st
	}
	// The new notify actions take the events from now on (a reload may itself cause a
	// transition: a priority change hands mastership over) and know the state each kept
	// instance is in; the old ones deliver DELETED for what the reload removes.
	fresh := startNotify(next, r.log, r.delivered)
	r.notifyMu.Lock()
	fresh.d.Adopt(actions.d)
	r.notifier.Store(fresh.d)
	r.notifyMu.Unlock()
	old := *actions
	*actions = fresh

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	handed := time.Now()
	rep, err := r.sup.Reload(rctx, next)
	st.Report = &rep
	// Where a slow reload spends its time (bench/lvsbench's reload case, say).
	r.log.Debug("reload steps", "load", loaded.Sub(st.Time), "validate", validated.Sub(loaded),
		"notify", handed.Sub(validated), "children", time.Since(handed))
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
		r.log.Error("reload applied in part", "trigger", trigger, "error", err)
	}
	go func() {
		dctx, dcancel := context.WithTimeout(context.Background(), notifyStopWait)
		defer dcancel()
		if err := old.d.Delete(dctx, func(group bool, name string) bool { return hasSource(next, group, name) }); err != nil {
			r.log.Warn("going on before every notify action finished", "error", err)
		}
		old.close()
	}()

	if !r.rootBounding && os.Geteuid() == 0 && checksched.RunsScriptsAsRoot(next) {
		r.log.Warn("scripts now run as root, but with only the capabilities vigil started with; restart vigil to give them all of root's, or set script_user",
			"capabilities", "CAP_DAC_OVERRIDE CAP_KILL CAP_SETGID CAP_SETUID CAP_NET_ADMIN CAP_NET_RAW")
	}
	*cfg = next
	if r.watcher != nil {
		if err := r.watcher.SetFiles(next.Files); err != nil {
			r.log.Warn("configuration files not all watched", "error", err)
		}
		if err := r.watcher.SetPatterns(next.Includes); err != nil {
			r.log.Warn("include patterns are not watched", "error", err)
		}
	}
	st.OK = err == nil
	r.log.Info("reloaded", "trigger", trigger, "file", r.file,
		"instances_kept", len(rep.VRRP.Kept), "changed", rep.VRRP.Changed, "added", rep.VRRP.Added, "removed", rep.VRRP.Removed, "restarted", rep.VRRP.Restarted,
		"checks_kept", len(rep.Checks.Kept), "checks_changed", rep.Checks.Changed, "checks_added", rep.Checks.Added, "checks_removed", rep.Checks.Removed, "checks_restarted", rep.Checks.Restarted)
	return st
}

// limitCoreCapabilities leaves core, running as root, only what it uses itself: switching
// to script_user for the check process and notify scripts (CAP_SETUID, CAP_SETGID),
// killing their process groups (CAP_KILL) and reaching the socket of a check process that
// runs as script_user (CAP_DAC_OVERRIDE). Its bounding set, the most that a program it
// starts as root can have, shrinks to those and the vrrp process's CAP_NET_ADMIN and
// CAP_NET_RAW, unless a script of cfg runs as root: keepalived gives such scripts all of
// root's powers (a notify_master that restarts a daemon, which then binds port 80, say), so
// vigil keeps root's bounding set for them and says how to do without it. It reports whether
// the bounding set was kept. Dropping needs a binary built without cgo (make build's);
// otherwise core says so and keeps everything.
func limitCoreCapabilities(cfg *config.Config, log hclog.Logger) (rootBounding bool) {
	if os.Geteuid() != 0 {
		return false
	}
	// The children inherit core's bounding set: vrrp_priority and the like need
	// CAP_SYS_NICE (CAP_IPC_LOCK for *_no_swap) in it, for the vrrp and check processes to
	// set them. A reload cannot bring back what is dropped here: a priority first set by a
	// reload takes a restart of vigil (the child says so when the kernel refuses it).
	bounding := slices.Concat(child.CoreBounding, child.PriorityCaps(cfg.Global.VRRPProcess, cfg.Global.CheckerProcess))
	if checksched.RunsScriptsAsRoot(cfg) {
		bounding = nil
		log.Info("scripts run as root, with root's capabilities; give them a script_user of their own so that vigil can drop those")
	}
	if err := child.LimitCapabilities(child.CoreCaps, bounding); err != nil {
		log.Warn("core keeps all of root's capabilities", "reason", err)
		return true
	}
	return bounding == nil
}

// notifyStopWait bounds how long SIGTERM (or a reload) waits for STOP (or DELETED)
// notifications before the addresses go.
const notifyStopWait = 5 * time.Second

// notifyActions is the dispatcher of one configuration and the plugin host it delivers
// through.
type notifyActions struct {
	d    *notify.Dispatcher
	host *plugin.Host
}

// startNotify starts the notify actions of cfg: notify plugins from plugin_dir, and
// keepalived's scripts from core when the exec plugin is not installed.
func startNotify(cfg *config.Config, log hclog.Logger, delivered func(action, outcome string, took time.Duration)) notifyActions {
	host := plugin.New(plugin.ConfigOptions(cfg.Global, log.Named("plugin")))
	dir := host.Dir()
	d := notify.New(cfg, notify.Options{
		Plugins: host,
		Installed: func(name string) bool {
			_, err := os.Stat(filepath.Join(dir, plugin.Executable(sdk.KindNotify, name)))
			return err == nil
		},
		Log:       log.Named("notify"),
		Delivered: delivered,
	})
	return notifyActions{d: d, host: host}
}

func (a notifyActions) close() {
	a.d.Close()
	a.host.Close()
}

// hasSource says whether cfg has the instance or sync group: what a reload keeps.
func hasSource(cfg *config.Config, group bool, name string) bool {
	if group {
		return slices.ContainsFunc(cfg.SyncGroups, func(g *config.SyncGroup) bool { return g.Name == name })
	}
	return slices.ContainsFunc(cfg.Instances, func(in *config.VRRPInstance) bool { return in.Name == name })
}

// writePidFile refuses to start beside a live vigil and takes over a stale pid file.
func writePidFile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				if strings.Contains(string(comm), "vigil") {
					return fmt.Errorf("vigil is already running (pid %d, pid file %s); stop it first or use another -p", pid, path)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp, path)
}

// dumpState writes the status to /tmp/vigil.data on SIGUSR1, as keepalived writes
// /tmp/keepalived.data.
func dumpState(sup *supervisor.Supervisor, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := json.MarshalIndent(sup.Status(ctx), "", "  ")
	if err == nil {
		err = os.WriteFile("/tmp/vigil.data", append(b, '\n'), 0o600)
	}
	if err != nil {
		log.Error("state dump failed", "error", err)
		return
	}
	log.Info("state written", "file", "/tmp/vigil.data")
}

// statusCmd is `vigil status [--json] [--control PATH]`.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil status", stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	socket := fs.String("control", control.DefaultSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := control.Get(ctx, *socket, "/status")
	if err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return exitInternal
	}
	if *asJSON {
		stdout.Write(body)
		return exitOK
	}
	var st supervisor.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "vigil status: unreadable answer: %v\n", err)
		return exitInternal
	}
	printStatus(stdout, st)
	return exitOK
}

// reloadCmd is `vigil reload [--json] [--control PATH]`: the daemon reloads its file (as on
// SIGHUP or a change of the file) and answers with the result; exit 1 when it was refused.
func reloadCmd(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("vigil reload", stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	socket := fs.String("control", control.DefaultSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body, err := control.Post(ctx, *socket, "/reload")
	if err != nil {
		fmt.Fprintf(stderr, "vigil reload: %v\n", err)
		return exitInternal
	}
	var st supervisor.ReloadStatus
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "vigil reload: unreadable answer: %v\n", err)
		return exitInternal
	}
	if *asJSON {
		stdout.Write(body)
	} else {
		printReload(stdout, st)
	}
	if !st.OK {
		return exitConfig
	}
	return exitOK
}

func printReload(w io.Writer, st supervisor.ReloadStatus) {
	result := "applied"
	if !st.OK {
		result = "REFUSED: the running configuration stays"
		if st.Report != nil {
			result = "applied in part"
		}
	}
	fmt.Fprintf(w, "reload (%s) at %s: %s\n", st.Trigger, st.Time.Format(time.RFC3339), result)
	for _, e := range st.Errors {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if r := st.Report; r != nil {
		for _, part := range []struct {
			what string
			c    supervisor.ChildReload
		}{{"instances", r.VRRP}, {"checks", r.Checks}} {
			c := part.c
			fmt.Fprintf(w, "  %s: %d kept, changed %v, added %v, removed %v, restarted %v\n", part.what, len(c.Kept), c.Changed, c.Added, c.Removed, c.Restarted)
		}
	}
}

func printStatus(w io.Writer, st supervisor.Status) {
	if st.LastReload != nil {
		printReload(w, *st.LastReload)
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tUPTIME\tRESTARTS\tLAST ERROR")
	for _, p := range st.Processes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", p.Role, p.PID, p.State, (time.Duration(p.UptimeSec * float64(time.Second))).Round(time.Second), p.Restarts, p.LastError)
	}
	for _, p := range st.Processes {
		if p.Unanswered != "" {
			// The check states are core's own and shown anyway; the vrrp child's instances are not.
			what := "its goroutine count is unknown"
			if p.Role == string(child.RoleVRRP) {
				what = "the instances are not shown"
			}
			fmt.Fprintf(tw, "\n%s (pid %d) did not answer: %s; %s\n", p.Role, p.PID, p.Unanswered, what)
		}
	}
	if len(st.Instances) > 0 {
		fmt.Fprintln(tw, "\nINSTANCE\tINTERFACE\tVRID\tSTATE\tPRIORITY\tMASTER\tVIPS")
		for _, in := range st.Instances {
			prio := strconv.Itoa(int(in.EffectivePriority))
			if in.EffectivePriority != in.Priority {
				prio += fmt.Sprintf(" (configured %d)", in.Priority)
			}
			state := in.State
			if in.Demoted != nil {
				state += " (demoted)"
			}
			if in.Fault != "" {
				state += " (" + in.Fault + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, state, prio, in.Master, strings.Join(in.VIPs, " "))
		}
		printDemoted(tw, st.Instances)
	}
	if len(st.Checks) > 0 {
		fmt.Fprintln(tw, "\nCHECK\tSTATE\tSINCE\tDETAIL")
		for _, c := range st.Checks {
			state := "down"
			if c.Up {
				state = "up"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, state, c.Since.Format(time.RFC3339), c.Message)
		}
	}
	if l := st.LVS; l != nil {
		printLVS(tw, l)
	}
	tw.Flush()
}

// printLVS shows the load balancer: each virtual server, then its real servers with their
// weight, state, checks and the kernel's counters.
func printLVS(w io.Writer, l *supervisor.LVSStatus) {
	state := "programmed in IPVS"
	switch {
	case !l.Running:
		state = "NOT RUNNING: " + l.Error
	case l.Error != "":
		state += "; the kernel refused: " + l.Error
	}
	fmt.Fprintf(w, "\nLOAD BALANCER: %s", state)
	fmt.Fprintln(w)
	if l.SyncRole != "" && l.SyncRole != "none" || len(l.SyncDaemons) > 0 {
		var running []string
		for _, d := range l.SyncDaemons {
			running = append(running, fmt.Sprintf("%s on %s (id %d)", d.State, d.Interface, d.SyncID))
		}
		fmt.Fprintf(w, "sync daemon: wanted %s; running: %s\n", l.SyncRole, strings.Join(running, ", "))
	}
	up := func(b bool) string {
		if b {
			return "up"
		}
		return "down"
	}
	counters := func(c *supervisor.IPVSCounters) string {
		if c == nil {
			return "-"
		}
		return fmt.Sprintf("%d conns (%d active), %d B in, %d B out", c.Conns, c.ActiveConns, c.InBytes, c.OutBytes)
	}
	for _, vs := range l.VirtualServers {
		extra := ""
		if vs.SorryIn {
			extra += ", sorry server " + vs.Sorry + " in"
		}
		if vs.Suspended {
			extra += ", suspended (ha_suspend)"
		}
		// No tab: the virtual server's line is not a row of its real servers' table. Its
		// IPVS services are listed when they say more than its ID: a group's.
		services := ""
		if len(vs.Services) != 1 || !sameService(vs.ID, vs.Services[0]) {
			services = strings.Join(vs.Services, ", ") + ", "
		}
		fmt.Fprintf(w, "\nVIRTUAL SERVER %s (%sat %s): quorum %s (live weight %d, quorum %d)%s; %s\n", vs.ID, services,
			vs.At, up(vs.QuorumUp), vs.LiveWeight, vs.Quorum, extra, counters(vs.Counters))
		if vs.Error != "" {
			fmt.Fprintf(w, "  kernel refused: %s\n", vs.Error)
		}
		fmt.Fprintln(w, "  REAL SERVER\tMETHOD\tSTATE\tWEIGHT\tIN TABLE\tCHECKS\tCOUNTERS")
		for _, rs := range vs.RealServers {
			weight := strconv.FormatInt(rs.Weight, 10)
			if rs.Weight != rs.ConfiguredWeight {
				weight += fmt.Sprintf(" (configured %d)", rs.ConfiguredWeight)
			}
			in := "no"
			if rs.InTable {
				in = fmt.Sprintf("weight %d", rs.TableWeight)
			}
			var checks []string
			for _, c := range rs.Checks {
				s := up(c.Up)
				if !c.HasRun {
					// The check process reports a checker when it crosses rise or fall, so
					// one that is as it started (up, or down with alpha) has reported
					// nothing: that says no more than that.
					s += " (as at start)"
				}
				checks = append(checks, c.Name+" "+s)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", rs.Address, rs.Method, up(rs.Alive), weight, in, strings.Join(checks, "; "), counters(rs.Counters))
		}
	}
}

// sameService says whether an IPVS service as ipvsadm writes it ("TCP  192.0.2.100:80",
// "FWM  7 IPv6") is the virtual server of that ID ("TCP 192.0.2.100:80", "fwmark 7 inet6").
func sameService(id, service string) bool {
	f := strings.Fields(service)
	if len(f) > 0 && f[0] == "FWM" {
		f[0] = "fwmark"
		if f[len(f)-1] == "IPv6" {
			f[len(f)-1] = "inet6"
		}
	}
	return strings.Join(f, " ") == id
}

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
