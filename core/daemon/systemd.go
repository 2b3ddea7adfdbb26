package daemon

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// systemd tells the service manager what core does, with sd_notify (Type=notify): READY=1
// once the children run with the configuration, RELOADING=1/READY=1 around each reload,
// STOPPING=1, STATUS= lines, and WATCHDOG=1 while the children answer. The protocol is
// coreos/go-systemd's daemon package: a datagram to $NOTIFY_SOCKET per message. Without
// NOTIFY_SOCKET (not under systemd, or Type=simple) a nil *systemd is used: every method
// returns at once and nothing is computed for it.
type systemd struct {
	log hclog.Logger
	// status asks the status goroutine for a fresh STATUS= line (a transition happened); one
	// pending request is enough.
	status chan struct{}
}

// newSystemd returns nil when vigil does not run under a notify socket.
func newSystemd(log hclog.Logger) *systemd {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return &systemd{log: log.Named("systemd"), status: make(chan struct{}, 1)}
}

// notify sends one message; a failure is logged, never fatal: vigil keeps VRRP running
// whatever the service manager does with its messages.
func (s *systemd) notify(lines ...string) {
	if _, err := sddaemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		s.log.Warn("cannot notify systemd", "error", err)
	}
}

// ready says that the children run with the configuration.
func (s *systemd) ready(status string) {
	if s == nil {
		return
	}
	s.notify(sddaemon.SdNotifyReady, "STATUS="+status)
}

// reloading precedes a reload: systemd (Type=notify) then holds `systemctl reload` until
// READY=1 comes back. MONOTONIC_USEC is what systemd 253 and later require with RELOADING=1
// (Type=notify-reload); 252 ignores it.
func (s *systemd) reloading(trigger string) {
	if s == nil {
		return
	}
	// go-systemd ends that line with a newline of its own.
	s.notify(sddaemon.SdNotifyReloading, strings.TrimSpace(sddaemon.SdNotifyMonotonicUsec()), "STATUS=reloading ("+trigger+")")
}

// reloaded follows every reload, applied or refused: the daemon runs on either way.
func (s *systemd) reloaded(st supervisor.ReloadStatus, summary func() string) {
	if s == nil {
		return
	}
	result := "applied"
	if !st.OK {
		result = fmt.Sprintf("refused (%s), the running configuration stays", plural(len(st.Errors), "error"))
		if st.Report != nil {
			result = fmt.Sprintf("applied in part (%s)", plural(len(st.Errors), "error"))
		}
	}
	s.notify(sddaemon.SdNotifyReady, fmt.Sprintf("STATUS=reload (%s) %s; %s", st.Trigger, result, summary()))
}

// stopping says the stop began.
func (s *systemd) stopping(why string) {
	if s == nil {
		return
	}
	s.notify(sddaemon.SdNotifyStopping, "STATUS=stopping: "+why)
}

// changed asks for a fresh STATUS= line (an instance changed state). It never blocks.
func (s *systemd) changed() {
	if s == nil {
		return
	}
	select {
	case s.status <- struct{}{}:
	default:
	}
}

// run sends a STATUS= line for each burst of changes, and, when systemd set a watchdog for
// this process (WatchdogSec=), WATCHDOG=1 at half its interval while every child answers
// (supervisor.Answering); when one does not, the pings stop, a STATUS= line says why, and
// systemd restarts vigil once the interval has passed. It runs until ctx ends.
func (s *systemd) run(ctx context.Context, sup *supervisor.Supervisor, summary func() string) {
	if s == nil {
		return
	}
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		s.log.Warn("systemd's watchdog settings are unreadable; not pinging it", "error", err)
	}
	var tick <-chan time.Time
	// within: a child that answers core's health ping does so every second; 3 s without an
	// answer is a child that stopped answering (core restarts it after three missed pings of
	// 5 s), or half the watchdog's interval when that is longer.
	within := supervisor.ReadyWithin
	if interval > 0 {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		tick = t.C
		within = max(within, interval/2)
		s.log.Info("pinging systemd's watchdog while the children answer", "every", (interval / 2).String())
		// The first ping at once: the watchdog runs from READY=1.
		s.notify(sddaemon.SdNotifyWatchdog)
	}
	withheld := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.status:
			s.notify("STATUS=" + summary())
		case <-tick:
			if err := sup.Answering(within); err != nil {
				if !withheld {
					withheld = true
					s.log.Error("not pinging systemd's watchdog: a child does not answer", "error", err)
					s.notify("STATUS=watchdog withheld: " + err.Error())
				}
				continue
			}
			if withheld {
				withheld = false
				s.log.Info("the children answer again; pinging systemd's watchdog")
				s.notify("STATUS=children answer again; " + summary())
			}
			s.notify(sddaemon.SdNotifyWatchdog)
		}
	}
}

// statusLine is one short line of what core knows cheaply: the instances' states (named when
// there are few, counted by state otherwise) and the checks.
func statusLine(cfg *config.Config, sum supervisor.Summary) string {
	var parts []string
	if n := len(cfg.Instances); n > 0 {
		state := func(name string) string {
			if st, ok := sum.Instances[name]; ok {
				return st
			}
			return "INIT" // the vrrp child reported nothing of it yet
		}
		what := plural(n, "instance") + ": "
		if n <= 4 {
			var named []string
			for _, in := range cfg.Instances {
				named = append(named, in.Name+" "+state(in.Name))
			}
			what += strings.Join(named, ", ")
		} else {
			count := map[string]int{}
			for _, in := range cfg.Instances {
				count[state(in.Name)]++
			}
			var counted []string
			for _, st := range slices.Sorted(maps.Keys(count)) {
				counted = append(counted, fmt.Sprintf("%d %s", count[st], st))
			}
			what += strings.Join(counted, ", ")
		}
		parts = append(parts, what)
	}
	if sum.Checks > 0 {
		parts = append(parts, fmt.Sprintf("%s, %d up", plural(sum.Checks, "check"), sum.ChecksUp))
	}
	if len(parts) == 0 {
		return "running"
	}
	return strings.Join(parts, "; ")
}

// plural is "1 check", "2 checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
