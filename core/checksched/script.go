package checksched

import (
	"context"
	"syscall"

	"github.com/vigil-ha/vigil/core/procrun"
)

// Result is the outcome of one probe.
type Result struct {
	OK  bool
	Msg string
	// Weight is a dynamic weight the check computed, nil when it reports none (scripts
	// never do; check plugins may, e.g. from replication lag). See Change.Weight for what
	// vigil does with it.
	Weight *int
	// Metrics are numbers the probe measured, by name (e.g. "replication_lag_seconds").
	Metrics map[string]float64
	// NoResult says that the probe could not be run at all: the check plugin that runs it
	// was starting, restarting after a death, or under a hang verdict (core/plugin sets it;
	// a script never does). The service was not asked, so this is neither a success nor a
	// failure of it, and the scheduler counts it neither way while the check's failure
	// budget lasts (see FailureBudget): a plugin restarting on a loaded machine must not
	// take healthy servers down, as keepalived, which checks in its own process, never
	// would. Past the budget the probes that had no result count as failures after all, so
	// that a plugin that stays unavailable still takes its checks down. OK is false.
	NoResult bool
}

// Prober runs one probe; it should return by the context's deadline. A command that
// outlives it gets SIGTERM there and SIGKILL procrun.DefaultGrace later, so Script (and the
// vigil-check-exec plugin) may return up to that grace late; the scheduler waits for it,
// one probe in flight per check, and the next probe of that check starts that much later.
type Prober interface {
	Probe(ctx context.Context) Result
}

// Script runs a command through core/procrun; exit status 0 is success, as keepalived's
// vrrp_script. The check process probes a vrrp_script with it when vigil-check-exec is not
// installed (config.go); the plugin runs its commands through procrun too, so that a script
// is stopped at its deadline, its leftovers killed and its output read the same way on both
// paths.
type Script struct {
	Argv []string
	// Cred, when set, runs the command as that user (keepalived's script_user / user).
	Cred *syscall.Credential
}

var _ Prober = Script{}

// Probe runs the command once (procrun.Run: own process group, TERM then KILL at the
// deadline, what it leaves in its group killed).
func (s Script) Probe(ctx context.Context) Result {
	r := procrun.Run(ctx, procrun.Cmd{Args: s.Argv, Cred: s.Cred})
	switch r.Outcome {
	case procrun.Exited, procrun.Signaled:
		if r.Success() {
			return Result{OK: true}
		}
		return Result{Msg: r.Describe()}
	case procrun.TimedOut:
		return Result{Msg: "timed out"}
	}
	return Result{Msg: r.Err.Error()}
}
