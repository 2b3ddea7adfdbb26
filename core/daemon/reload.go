package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/config/watch"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// children is what a reload asks of the running children: core/supervisor's Supervisor,
// or a stand-in in the tests.
type children interface {
	checkValidator
	Reload(ctx context.Context, cfg *config.Config) (supervisor.ReloadReport, error)
}

// childrenReloadWait bounds the children's part of a reload.
const childrenReloadWait = 30 * time.Second

// reloaderOptions are what a reloader needs of the daemon; they do not change.
type reloaderOptions struct {
	// File is read again at each reload, as Config says.
	File     string
	Config   config.Options
	Children children
	Notify   *notifyRoute
	// RootBounding: core kept root's bounding set at start (limitCoreCapabilities).
	RootBounding bool
	// Delivered counts notify deliveries (core/metrics).
	Delivered func(action, outcome string, took time.Duration)
	Log       hclog.Logger
	// Around, when set, is called as each reload begins, with the configuration running
	// then, and what it returns when that reload has its result, with the configuration
	// running after it (the same one when the reload was refused). Both run in the reload's
	// turn: systemd's RELOADING=1 and READY=1 of one reload are never interleaved with
	// another's.
	Around func(trigger string, running *config.Config) func(st supervisor.ReloadStatus, running *config.Config)
}

// reloader owns the running configuration and applies a changed file to the running
// daemon: the reload transaction.
//
// Its mutable state (the running configuration, the file watcher) is guarded by one token,
// turn. A reload holds it from reading the file to its
// report, so reloads asked for at once (SIGHUP, `vigil reload`, the file watcher) run one
// after another, each reading the file as it is when its turn comes and answering its own
// caller; the stop takes it too, so that no reload is cut off half way or begins after the
// stop did. The token is held from newReloader until open: a reload asked for before the
// children and the notify actions run waits for them. Whether the daemon stops is not
// guarded by the turn but set before the stop waits for it: reloads queued behind the one in
// progress then give up at once instead of running before the stop, which would hold a
// SIGTERM for a full transaction each (systemd's stop timeout could then kill vigil before
// its STOP notifications and its priority-0 adverts).
type reloader struct {
	reloaderOptions
	log hclog.Logger

	// turn has room for one token: whoever put it there holds the turn.
	turn chan struct{}

	// Guarded by turn.
	running *config.Config
	watcher *watch.Watcher // nil: the files are not watched

	// stopping is set once, by stop, before it waits for the turn.
	stopping atomic.Bool

	// published is running and last is the latest reload's result, for readers that must
	// not wait for a reload in progress (systemd's status line, `vigil status`). Both are
	// written only with the turn held.
	published atomic.Pointer[config.Config]
	last      atomic.Pointer[supervisor.ReloadStatus]
}

// newReloader returns a reloader of cfg whose reloads wait until open.
func newReloader(cfg *config.Config, o reloaderOptions) *reloader {
	r := &reloader{reloaderOptions: o, log: o.Log, turn: make(chan struct{}, 1), running: cfg}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	r.turn <- struct{}{}
	r.published.Store(cfg)
	return r
}

// open lets reloads run, with w (nil: none) watching the files they read.
func (r *reloader) open(w *watch.Watcher) {
	r.watcher = w
	<-r.turn
}

// config is the configuration running now; during a reload, the one before it.
func (r *reloader) config() *config.Config { return r.published.Load() }

// stop waits for a reload in progress to end and refuses every later one.
func (r *reloader) stop() {
	r.stopping.Store(true)
	select {
	case r.turn <- struct{}{}:
	default:
		r.log.Info("the stop waits for the reload in progress")
		r.turn <- struct{}{}
	}
	<-r.turn
}

// reload reloads the file for trigger (SIGHUP, vigil reload, file change) and answers with
// the result. ctx bounds the wait for the turn only: a reload that began runs to its end,
// for stopping half way would leave the children with half a configuration. A reload that
// does not begin (ctx ended first, the daemon stops) changes nothing and is not kept as
// the latest reload.
func (r *reloader) reload(ctx context.Context, trigger string) supervisor.ReloadStatus {
	if r.stopping.Load() {
		return r.refuseStopping(trigger)
	}
	select {
	case r.turn <- struct{}{}:
	default:
		// Said once, so that an operator whose `vigil reload` takes long sees why.
		r.log.Info("reload waits for the one in progress", "trigger", trigger)
		select {
		case r.turn <- struct{}{}:
		case <-ctx.Done():
			return supervisor.ReloadStatus{Time: time.Now(), Trigger: trigger,
				Errors: []string{fmt.Sprintf("reload not begun: %v", ctx.Err())}}
		}
	}
	defer func() { <-r.turn }()
	if r.stopping.Load() {
		return r.refuseStopping(trigger)
	}
	var done func(supervisor.ReloadStatus, *config.Config)
	if r.Around != nil {
		done = r.Around(trigger, r.running)
	}
	st := r.apply(context.WithoutCancel(ctx), trigger)
	r.last.Store(&st)
	if done != nil {
		done(st, r.running)
	}
	return st
}

// refuseStopping is the answer to a reload asked for, or still waiting, when the stop began.
func (r *reloader) refuseStopping(trigger string) supervisor.ReloadStatus {
	r.log.Warn("reload refused: vigil is stopping", "trigger", trigger)
	return supervisor.ReloadStatus{Time: time.Now(), Trigger: trigger,
		Errors: []string{"vigil is stopping; the reload was not begun (start vigil again to use the file)"}}
}

// apply is the transaction, run with the turn held. It validates the file as `vigil -t`
// does (plugins' Configure included) and, only if it can run, hands it to the children,
// which keep what did not change. A file with errors changes nothing: every error is logged
// with its place and kept for `vigil status`.
func (r *reloader) apply(ctx context.Context, trigger string) supervisor.ReloadStatus {
	st := supervisor.ReloadStatus{Time: time.Now(), Trigger: trigger}
	if r.watcher != nil {
		// What this reload reads is not reloaded again by the watcher (after a SIGHUP that
		// followed an edit, say); a later write still is.
		snap := r.watcher.Snapshot()
		defer r.watcher.Accept(snap)
	}

	// 1. Parse: the file and its includes, as at start.
	next, diags := config.Load(r.File, r.Config)
	loaded := time.Now()

	// 2. Validate what the parser cannot know: the plugins' verdicts on their params, and
	// the interfaces.
	var validated time.Time
	if next != nil && !diags.HasErrors() {
		diags = append(diags, validatePlugins(ctx, next, r.running, r.Children, r.log)...)
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

	// 3. Refuse a file with errors: the running configuration stays, untouched.
	if next == nil || diags.HasErrors() {
		for _, d := range diags.Errors() {
			st.Errors = append(st.Errors, d.String())
			r.log.Error("reload refused: "+d.Msg, "at", d.Pos.String(), "hint", d.Hint)
		}
		r.log.Error("reload refused: the configuration has errors; the running one stays", "file", r.File, "trigger", trigger, "errors", len(st.Errors))
		if r.watcher != nil && next != nil {
			// An include added by the broken file is watched too, so that fixing it reloads.
			r.watcher.SetFiles(append(slices.Clone(r.running.Files), next.Files...))
		}
		return st
	}

	// 4. Swap the notify actions first: the new ones take the events from now on (the
	// children's part may itself cause a transition: a priority change hands mastership
	// over) and know the state each kept instance is in.
	old := r.Notify.swap(startNotify(next, r.log, r.Delivered))

	// 5. Plan and apply in the children: each compares next with what it runs and keeps
	// what did not change (core/supervisor's Reload). An error there leaves a part applied:
	// the file is the running configuration all the same, for the children run parts of it.
	rctx, cancel := context.WithTimeout(ctx, childrenReloadWait)
	defer cancel()
	handed := time.Now()
	rep, err := r.Children.Reload(rctx, next)
	st.Report = &rep
	// Where a slow reload spends its time (bench/lvsbench's reload case, say).
	r.log.Debug("reload steps", "load", loaded.Sub(st.Time), "validate", validated.Sub(loaded),
		"notify", handed.Sub(validated), "children", time.Since(handed))
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
		r.log.Error("reload applied in part", "trigger", trigger, "error", err)
	}

	// 6. The old notify actions deliver DELETED for what the reload removed, then close, in
	// the background: the next reload need not wait for a slow notify script.
	go func() {
		dctx, dcancel := context.WithTimeout(context.Background(), notifyStopWait)
		defer dcancel()
		if err := old.d.Delete(dctx, func(group bool, name string) bool { return hasSource(next, group, name) }); err != nil {
			r.log.Warn("going on before every notify action finished", "error", err)
		}
		old.close()
	}()

	// 7. Swap the running configuration, and watch its files.
	if !r.RootBounding && os.Geteuid() == 0 && checksched.RunsScriptsAsRoot(next) {
		r.log.Warn("scripts now run as root, but with only the capabilities vigil started with; restart vigil to give them all of root's, or set script_user",
			"capabilities", "CAP_DAC_OVERRIDE CAP_KILL CAP_SETGID CAP_SETUID CAP_NET_ADMIN CAP_NET_RAW")
	}
	r.running = next
	r.published.Store(next)
	if r.watcher != nil {
		if err := r.watcher.SetFiles(next.Files); err != nil {
			r.log.Warn("configuration files not all watched", "error", err)
		}
		if err := r.watcher.SetPatterns(next.Includes); err != nil {
			r.log.Warn("include patterns are not watched", "error", err)
		}
	}

	// 8. Report.
	st.OK = err == nil
	r.log.Info("reloaded", "trigger", trigger, "file", r.File,
		"instances_kept", len(rep.VRRP.Kept), "changed", rep.VRRP.Changed, "added", rep.VRRP.Added, "removed", rep.VRRP.Removed, "restarted", rep.VRRP.Restarted,
		"checks_kept", len(rep.Checks.Kept), "checks_changed", rep.Checks.Changed, "checks_added", rep.Checks.Added, "checks_removed", rep.Checks.Removed, "checks_restarted", rep.Checks.Restarted)
	return st
}

// The supervisor is what a reload asks of the children.
var _ children = (*supervisor.Supervisor)(nil)

// checkValidator is the running daemon's check process, which already runs the plugins
// (supervisor.Supervisor).
type checkValidator interface {
	ValidateChecks(ctx context.Context, cfg *config.Config, items []child.ValidateItem) ([]supervisor.CheckVerdict, error)
}
