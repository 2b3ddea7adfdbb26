package procrun

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"
)

// ErrBusy is the error of a Check run not started because the previous run of the same Check
// is not over yet.
var ErrBusy = errors.New("its previous run ignored SIGTERM at its deadline and is not over yet; not started again")

// Check is one configured check command, run the way vigil-check-exec runs each of its
// commands (vrrp_script, MISC_CHECK, Nagios plugin). It owns that rule so that the benches
// that compare vigil's plugins with keepalived's fork per probe measure exactly what the
// plugin does: the Cmd settings below and one run at a time.
type Check struct {
	cmd Cmd
	// running is held while a run is under way, its grace after the deadline included.
	running sync.Mutex
}

// CheckOptions are what differs between one check command and another.
type CheckOptions struct {
	// Cred, when not nil, runs the command as that user and group.
	Cred *syscall.Credential
	// DiscardStderr keeps standard error out of the output (Nagios plugins answer on
	// standard output).
	DiscardStderr bool
	// Grace is the time between SIGTERM and SIGKILL; 0: DefaultGrace (tests set a long one).
	Grace time.Duration
}

// NewCheck returns the check command path run with argv (argv[0] as the program sees it).
func NewCheck(path string, argv []string, o CheckOptions) *Check {
	return &Check{cmd: Cmd{
		Path: path,
		Args: argv,
		Cred: o.Cred,
		// SIGKILL if the plugin dies mid-probe (vigil killed it, or vigil died): the
		// command's own group is not the plugin's, so killing the plugin's group would not
		// reach it. (Its children run on to their end, as under keepalived;
		// vigil.service's KillMode ends them with the service.)
		ParentDeathSignal: syscall.SIGKILL,
		// Only the first line of output is used.
		MaxOutput:     DefaultMaxOutput,
		Grace:         o.Grace,
		DiscardStderr: o.DiscardStderr,
	}}
}

// Run runs the command once, as Run does. While a previous run is still under way (in its
// grace after the deadline) it starts nothing and returns NotStarted with ErrBusy.
func (c *Check) Run(ctx context.Context) Result {
	// One run at a time: vigil's scheduler starts the next probe once this one's deadline
	// has passed, but a command that traps SIGTERM runs on for the grace after it. Starting
	// it again beside itself would pile up copies of a stuck script; keepalived skips the
	// run of a script it is still timing out, and so does this, as a failure (the probe did
	// run, and found the command still stuck).
	if !c.running.TryLock() {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: ErrBusy}
	}
	defer c.running.Unlock()
	return Run(ctx, c.cmd)
}
