package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/control"
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
	// Notify actions run in core, fed by the vrrp child's transition stream: VRRP never
	// waits for them. A reload swaps the dispatcher.
	var notifier atomic.Pointer[notify.Dispatcher]
	supOpts := supervisor.Options{Exe: exe, Args: childArgs, Log: log,
		OnTransition: func(t supervisor.Transition) {
			log.Info("state change", "instance", t.Instance, "from", t.From, "to", t.To, "reason", t.Reason, "priority", t.Priority)
			if d := notifier.Load(); d != nil {
				d.Transition(notify.Transition{Instance: t.Instance, From: t.From, To: t.To, Priority: t.Priority, Time: t.Time})
			}
		}}

	// The control socket serves from its own goroutines; a reload swaps the supervisor.
	var current atomic.Pointer[supervisor.Supervisor]
	ctrl, err := control.Listen(o.control, func(ctx context.Context) any {
		sup := current.Load()
		if sup == nil {
			return supervisor.Status{}
		}
		return sup.Status(ctx)
	})
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitInternal
	}
	defer ctrl.Close()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	for {
		sup, err := supervisor.New(cfg, supOpts)
		if err != nil {
			log.Error("cannot start", "error", err)
			return exitConfig
		}
		current.Store(sup)
		actions := startNotify(cfg, log)
		notifier.Store(actions.d)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sup.Run(ctx) }()
		reload := false
	wait:
		for {
			select {
			case err := <-done:
				cancel()
				actions.close()
				log.Error("stopping: a child cannot run", "error", err)
				return exitConfig
			case sig := <-sigs:
				switch sig {
				case syscall.SIGUSR1:
					dumpState(sup, log)
				case syscall.SIGHUP:
					// Until hot reload lands: validate the file, and only if it can run,
					// restart the children with it. A broken file changes nothing.
					next, diags := config.Load(o.file, opts)
					if next == nil || diags.HasErrors() {
						log.Error("reload refused: the configuration has errors; the running one stays", "errors", diags.Errors().Error())
						continue
					}
					log.Info("reloading: restarting the children with the new configuration")
					cfg, reload = next, true
					break wait
				default:
					log.Info("stopping", "signal", sig.String())
					break wait
				}
			}
		}
		// STOP (or, for what a reload removes, DELETED) notifications go out while the
		// addresses are still up, with a bounded wait; then the children stop and the vrrp
		// child resigns and removes the addresses.
		stopCtx, stopDone := context.WithTimeout(context.Background(), notifyStopWait)
		var notifyErr error
		if reload {
			notifyErr = actions.d.Delete(stopCtx, func(group bool, name string) bool { return hasSource(cfg, group, name) })
		} else {
			notifyErr = actions.d.Stop(stopCtx)
		}
		stopDone()
		if notifyErr != nil {
			log.Warn("going on before every notify action finished", "error", notifyErr)
		}
		notifier.Store(nil)
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			log.Error("children did not stop within 15 s")
		}
		actions.close()
		if !reload {
			log.Info("stopped")
			return exitOK
		}
	}
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
func startNotify(cfg *config.Config, log hclog.Logger) notifyActions {
	host := plugin.New(plugin.ConfigOptions(cfg.Global, log.Named("plugin")))
	dir := cfg.Global.PluginDir
	if dir == "" {
		dir = plugin.DefaultDir
	}
	d := notify.New(cfg, notify.Options{
		Plugins: host,
		Installed: func(name string) bool {
			_, err := os.Stat(filepath.Join(dir, plugin.Executable(sdk.KindNotify, name)))
			return err == nil
		},
		Log: log.Named("notify"),
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

func printStatus(w io.Writer, st supervisor.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tUPTIME\tRESTARTS\tLAST ERROR")
	for _, p := range st.Processes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", p.Role, p.PID, p.State, (time.Duration(p.UptimeSec * float64(time.Second))).Round(time.Second), p.Restarts, p.LastError)
	}
	if len(st.Instances) > 0 {
		fmt.Fprintln(tw, "\nINSTANCE\tINTERFACE\tVRID\tSTATE\tPRIORITY\tMASTER\tVIPS")
		for _, in := range st.Instances {
			prio := strconv.Itoa(int(in.EffectivePriority))
			if in.EffectivePriority != in.Priority {
				prio += fmt.Sprintf(" (configured %d)", in.Priority)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, in.State, prio, in.Master, strings.Join(in.VIPs, " "))
		}
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
	tw.Flush()
}

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
