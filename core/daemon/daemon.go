package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
	"github.com/vigil-ha/vigil/core/supervisor"
)

// Options are what the command line says about the core process.
type Options struct {
	// File is the configuration file, read again at each reload; Config says how.
	File   string
	Config config.Options
	// PidFile is the core process's pid file; Control its control socket.
	PidFile string
	Control string
	// MetricsListen is where core serves Prometheus metrics and the read-only status; it
	// overrides global_defs' metrics_listen. Empty: that keyword's.
	MetricsListen string
	// Watch is the file watcher's debounce; 0 turns it off (reload by SIGHUP or vigil
	// reload only).
	Watch time.Duration
	// ChildArgs are the flags the children are started with besides their role (cmd/vigil
	// passes on -D, -I and -V).
	ChildArgs []string
	Log       hclog.Logger
}

// DefaultWatchDebounce is how long the watcher waits for a burst of writes to settle: an
// editor's save or a ConfigMap swap takes a few milliseconds; a tool writing several files
// in turn gets one reload for all of them.
const DefaultWatchDebounce = 300 * time.Millisecond

// ErrConfig marks Run's errors that the configuration causes (nothing to run, a child that
// cannot run with it, a metrics address that cannot be listened on); Run's other errors are
// the host's (pid file, control socket, the binary not found).
var ErrConfig = errors.New("the configuration cannot run")

// Run is the core process: it owns the pid file and the control socket, starts the
// children that cfg (loaded from o.File) needs, and handles signals until SIGTERM or SIGINT,
// or until ctx ends; then it stops everything in order and returns nil. Run logs why it
// cannot start or stops early; its error says as much, for the exit status.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	log := o.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if len(cfg.Instances) == 0 {
		if _, checks, _ := supervisor.Needed(cfg); !checks {
			log.Error("the configuration has no vrrp_instance and no check; nothing to run")
			return fmt.Errorf("%s: no vrrp_instance and no check: %w", o.File, ErrConfig)
		}
	}
	if err := writePidFile(o.PidFile); err != nil {
		log.Error("cannot start", "error", err)
		return err
	}
	defer os.Remove(o.PidFile)
	exe, err := os.Executable()
	if err != nil {
		log.Error("cannot find the vigil binary to start the children", "error", err)
		return fmt.Errorf("the vigil binary, to start the children: %w", err)
	}
	// Notify actions run in core, fed by the vrrp child's transition stream: VRRP never
	// waits for them. A reload swaps them (notifyRoute).
	var route notifyRoute
	// sd tells systemd how the daemon is doing (Type=notify); nil when not under systemd.
	sd := newSystemd(log)
	// A flapping instance's lines are summarised (the vrrp child limits its own the same
	// way); notify, status and systemd still see every transition.
	lines := loglimit.ForTransitions()
	supOpts := supervisor.Options{Exe: exe, Args: o.ChildArgs, Log: log,
		OnTransition: func(t supervisor.Transition) {
			if t.To == notify.MasterRxLowerPri {
				lines.Log(log, "lower:"+t.Instance, hclog.Info, "master heard a lower priority", "instance", t.Instance, "detail", t.Reason, "priority", t.Priority)
			} else {
				lines.Log(log, t.Instance, hclog.Info, "state change", "instance", t.Instance, "from", t.From, "to", t.To, "reason", t.Reason, "priority", t.Priority)
			}
			sd.changed()
			route.transition(notify.Transition{Instance: t.Instance, From: t.From, To: t.To, Priority: t.Priority, Time: t.Time})
		},
		OnLVS: func(e supervisor.LVSEvent) {
			route.lvs(notify.LVSEvent{Kind: e.Kind, Service: e.Service, Real: e.Real, Init: e.Init, Stopping: e.Stopping, Time: time.Now()})
		}}
	sup, err := supervisor.New(cfg, supOpts)
	if err != nil {
		log.Error("cannot start", "error", err)
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	rootBounding := limitCoreCapabilities(cfg, log)

	// Metrics are counted always (an atomic add each) and served only when asked for.
	mcore := metrics.NewCore()
	mcore.Registry.MustRegister(metrics.PluginCollector(route.hosts))
	// ready: the children run with the configuration, and READY=1 went out; from then on
	// reloads are announced (RELOADING=1 before, READY=1 after): before it, a READY=1 after
	// a reload would tell systemd the start is over too soon.
	var ready atomic.Bool
	var r *reloader
	summary := func() string { return statusLine(r.config(), sup.Summary()) }
	r = newReloader(cfg, reloaderOptions{File: o.File, Config: o.Config, Children: sup, Notify: &route,
		RootBounding: rootBounding, Delivered: mcore.Delivered, Log: log,
		Around: func(trigger string, running *config.Config) func(supervisor.ReloadStatus, *config.Config) {
			// Decided once per reload, so that RELOADING=1 and its READY=1 go out as a pair.
			announce := ready.Load()
			if announce {
				sd.reloading(trigger)
			}
			listen := running.Global.MetricsListen
			return func(st supervisor.ReloadStatus, running *config.Config) {
				mcore.Reloaded(st.Time, st.OK, st.Report == nil)
				if running.Global.MetricsListen != listen && o.MetricsListen == "" {
					log.Warn("metrics_listen changed; the listener moves at the next restart of vigil", "listening", listen, "configured", running.Global.MetricsListen)
				}
				if announce {
					sd.reloaded(st, summary)
				}
			}
		}})

	// The status is the same on the control socket and the metrics listener's /status.
	statusOf := func(ctx context.Context) any {
		st := sup.Status(ctx)
		st.LastReload = r.last.Load()
		return st
	}
	ctrl, err := control.Listen(o.Control, statusOf, func(ctx context.Context) any {
		return r.reload(ctx, "vigil reload")
	}, handoverActions(sup)...)
	if err != nil {
		log.Error("cannot start", "error", err)
		return err
	}
	defer ctrl.Close()
	if addr := cmp.Or(o.MetricsListen, cfg.Global.MetricsListen); addr != "" {
		mlog := log.Named("metrics")
		mcore.Registry.MustRegister(metrics.RuntimeCollectors()...)
		srv, err := metrics.Listen(addr, metrics.View{
			Gatherer: &metrics.Gatherer{Core: mcore.Registry, Children: sup.ChildMetrics, Log: mlog},
			Status:   statusOf, Ready: sup.Readiness, Log: mlog})
		if err != nil {
			log.Error("cannot start", "error", err)
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		defer srv.Close()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	route.start(startNotify(cfg, log, mcore.Delivered))
	// The actions in use at the end, whichever reload started them, close last (the stop
	// closes them itself, in its order).
	defer route.close()
	// The children run until the stop cancels runCtx, which ctx's end only asks for: the
	// stop's order (STOP notifications while the addresses are up, then the children) holds
	// either way.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sup.Run(runCtx) }()

	// The watcher sees editors' renames and symlink swaps, and fires once a burst of writes
	// has settled and the content really changed (core/config/watch).
	var watcher *watch.Watcher
	if o.Watch > 0 {
		watcher, err = watch.New(cfg.Files, o.Watch, log.Named("watch"))
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
	}

	// Reloads wait until here: the notify actions and the children are started.
	r.open(watcher)
	if watcher != nil {
		go watcher.Run(runCtx, func() { r.reload(runCtx, "file change") })
	}

	readyCh := sup.Ready()
	// sd's goroutine (status lines, watchdog) ends when the stop begins, before STOPPING=1:
	// nothing of it follows that.
	sdCtx, sdStop := context.WithCancel(runCtx)
	defer sdStop()
	sdDone := make(chan struct{})
	endSD := func() {
		sdStop()
		if ready.Load() {
			<-sdDone
		}
	}

	stopSig := ""
loop:
	for {
		select {
		case err := <-done:
			// No reload begins or goes on from here: the actions it would start could not be
			// closed.
			r.stop()
			endSD()
			sd.stopping("a child cannot run: " + err.Error())
			cancel()
			route.close()
			log.Error("stopping: a child cannot run", "error", err)
			return fmt.Errorf("a child cannot run: %w: %w", ErrConfig, err)
		case <-readyCh:
			readyCh = nil
			log.Info("ready: the children run with the configuration")
			// READY=1 before ready is set: a reload that begins in between is not
			// announced, where one announced first would send RELOADING=1 before the
			// start's READY=1.
			sd.ready(summary())
			ready.Store(true)
			go func() {
				defer close(sdDone)
				sd.run(sdCtx, sup, summary)
			}()
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				dumpState(sup, log)
			case syscall.SIGHUP:
				r.reload(runCtx, "SIGHUP")
			default:
				stopSig = sig.String()
				break loop
			}
		case <-ctx.Done():
			stopSig = "context ended: " + ctx.Err().Error()
			break loop
		}
	}
	log.Info("stopping", "signal", stopSig)
	// A reload in progress ends first (a `vigil reload` that came in just before the
	// signal); any later one is refused: the stop owns the notify actions and the children.
	r.stop()
	endSD()
	sd.stopping(stopSig)
	actions := route.current()
	// STOP notifications go out while the addresses are still up, with a bounded wait; then
	// the children stop and the vrrp child resigns and removes the addresses.
	stopCtx, stopDone := context.WithTimeout(context.Background(), notifyStopWait)
	if err := actions.d.Stop(stopCtx); err != nil {
		log.Warn("going on before every notify action finished", "error", err)
	}
	stopDone()
	route.stopping()
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
	route.close()
	lines.Flush()
	log.Info("stopped")
	return nil
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
