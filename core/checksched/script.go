package checksched

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
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

// Prober runs one probe; it must return by the context's deadline.
type Prober interface {
	Probe(ctx context.Context) Result
}

// Script runs a command; exit status 0 is success, as keepalived's vrrp_script.
type Script struct {
	Argv []string
	// Cred, when set, runs the command as that user (keepalived's script_user / user).
	Cred *syscall.Credential
}

var _ Prober = Script{}

// Probe runs the command in its own process group, so that a timeout kills everything it
// started, not just the shell.
func (s Script) Probe(ctx context.Context) Result {
	if len(s.Argv) == 0 {
		return Result{Msg: "empty command"}
	}
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.Cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return Result{OK: true}
	case ctx.Err() != nil:
		return Result{Msg: "timed out"}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return Result{Msg: fmt.Sprintf("exit status %d", ee.ExitCode())}
	}
	return Result{Msg: err.Error()}
}
