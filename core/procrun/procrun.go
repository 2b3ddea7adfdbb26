// Package procrun runs one command to its end, the one way vigil runs a script or a check
// command: in a process group of its own, as a given user and with a given environment, with
// a deadline (the context) after which the group gets SIGTERM and, a grace later, SIGKILL;
// whatever the command left running in its group is killed once it has exited; its output is
// captured up to a bound. Run reports how the command ended (exit status, a signal it did not
// get from procrun, a timeout, or no start at all) and what it printed. vigil-check-exec,
// vigil-notify-exec, core/script (notify scripts run from core) and the benches that measure
// vigil's script path all run commands through it. Check is a check command as
// vigil-check-exec runs it (its settings, one run at a time), shared with those benches.
//
// keepalived, for a vrrp_script or MISC_CHECK that outlives its timeout, sends SIGTERM to the
// script's process group, SIGKILL to the group 2 s later if the script has not been reaped,
// and, when the script died of that SIGTERM, SIGKILL to the group to end its children. procrun
// does the same with these deliberate differences:
//   - the grace between TERM and KILL is DefaultGrace (1 s), not 2 s (see DefaultGrace);
//   - the group is killed after every exit, not only after a timeout: a script that starts a
//     background child and exits 0 does not leave it running (keepalived leaves it);
//   - a script that, once sent TERM, exits with a status of its own still reports TimedOut:
//     the deadline passed, and the status it chose on the way out is not its answer.
package procrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultGrace is the time between SIGTERM and SIGKILL when a command outlives its deadline.
// Most scripts die of the TERM at once (a shell and its foreground children all get it, being
// in the group), so the grace only costs anything for a script that traps TERM. Its caller's
// deadline has passed by then: a check's answer is already late and a notify script holds
// the next one back, so the grace is kept short; one second still lets a trap remove a lock
// or temporary file, which is all a health check or notify script should need to do.
const DefaultGrace = time.Second

// DefaultMaxOutput bounds the output kept of a command: callers use its first line (a
// message, Nagios perfdata), and a chatty command must cost no memory.
const DefaultMaxOutput = 4096

// outputWait bounds how long Run waits, after the command's group is gone, for the end of its
// output. Only a process that left the group (setsid, a daemon the script started) can hold
// the output open that long; nothing written before is lost when the wait ends (Run drains
// the pipe), so the wait is short: it is what such a process costs each run.
const outputWait = 100 * time.Millisecond

// Cmd is a command to run.
type Cmd struct {
	// Path is the program to run; empty: Args[0], looked up in PATH when it has no slash.
	Path string
	// Args is the argument list, Args[0] as the program sees it. It must not be empty.
	Args []string
	// Env is the environment; nil: this process's own.
	Env []string
	// Cred, when not nil, runs the command as that user and group (keepalived's script_user).
	Cred *syscall.Credential
	// ParentDeathSignal, when not 0, is sent to the command if the thread that started it
	// ends (Linux's PR_SET_PDEATHSIG): a plugin killed mid-probe takes its command along,
	// which killing the plugin's own group would not, the command being in a group of its own.
	ParentDeathSignal syscall.Signal
	// Grace is the time between SIGTERM and SIGKILL after the deadline; 0: DefaultGrace.
	Grace time.Duration
	// MaxOutput bounds the output kept; 0: DefaultMaxOutput.
	MaxOutput int
	// DiscardStderr keeps standard error out of Output (Nagios plugins answer on standard
	// output); by default both go into Output, in the order written.
	DiscardStderr bool
}

// Outcome is how a run ended.
type Outcome int

const (
	// Exited: the command ran to its end; ExitCode is its status.
	Exited Outcome = iota
	// Signaled: a signal that Run did not send ended the command; Signal says which.
	Signaled
	// TimedOut: the context ended before the command did; its group got SIGTERM, and
	// SIGKILL after the grace if it still ran (Killed).
	TimedOut
	// NotStarted: the command could not be started; Err says why.
	NotStarted
)

func (o Outcome) String() string {
	switch o {
	case Exited:
		return "exited"
	case Signaled:
		return "signaled"
	case TimedOut:
		return "timed out"
	case NotStarted:
		return "not started"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what Run reports of one run.
type Result struct {
	Outcome Outcome
	// ExitCode is the exit status (Exited), else -1.
	ExitCode int
	// Signal is the signal that ended the command (Signaled; TimedOut when it died of a
	// signal, TERM or KILL).
	Signal syscall.Signal
	// Killed says that the command outlived the grace after its deadline and got SIGKILL.
	Killed bool
	// Output is the first MaxOutput bytes the command wrote (stdout, and stderr unless
	// discarded); Truncated says that there was more.
	Output    []byte
	Truncated bool
	// Err is why the command did not start (NotStarted), or the context's error (TimedOut).
	Err error
	// Elapsed is the time from start to the end of the run, group killed and output read.
	Elapsed time.Duration
}

// Success says that the command exited with status 0.
func (r Result) Success() bool { return r.Outcome == Exited && r.ExitCode == 0 }

// FirstLine is FirstLine of the output.
func (r Result) FirstLine() string { return FirstLine(r.Output) }

// Describe says how the run ended, in words for a log line or a check message: "exit status
// 3", "killed by signal segmentation fault", "timed out; its process group was killed",
// "not started: ...".
func (r Result) Describe() string {
	switch r.Outcome {
	case Exited:
		return fmt.Sprintf("exit status %d", r.ExitCode)
	case Signaled:
		return "killed by signal " + r.Signal.String()
	case TimedOut:
		if r.Killed {
			return "timed out; its process group ignored SIGTERM and was killed"
		}
		return "timed out; its process group was killed"
	case NotStarted:
		return fmt.Sprintf("not started: %v", r.Err)
	}
	return r.Outcome.String()
}

// Run runs c to its end: until the command exits, or, when ctx ends first, until its process
// group is stopped (TERM, then KILL after the grace). Either way every process left in the
// group is then killed. Run returns when the command has been reaped and its output read.
func Run(ctx context.Context, c Cmd) Result {
	start := time.Now()
	res := run(ctx, c)
	res.Elapsed = time.Since(start)
	return res
}

func run(ctx context.Context, c Cmd) Result {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: errors.New("empty command")}
	}
	if err := ctx.Err(); err != nil {
		return Result{Outcome: TimedOut, ExitCode: -1, Err: err}
	}
	path := c.Path
	if path == "" {
		path = c.Args[0]
	}
	cmd := exec.Command(path, c.Args[1:]...)
	if cmd.Err != nil {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: cmd.Err}
	}
	cmd.Args[0] = c.Args[0]
	cmd.Env = c.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Cred, Pdeathsig: c.ParentDeathSignal}

	// The output goes through a pipe of our own rather than exec's copying goroutines, so
	// that Run decides when to stop waiting for it (after the group is killed, not at a
	// fixed delay after the leader's exit) and loses nothing written before then.
	r, w, err := os.Pipe()
	if err != nil {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: fmt.Errorf("output pipe: %w", err)}
	}
	defer r.Close()
	cmd.Stdout = w
	if !c.DiscardStderr {
		cmd.Stderr = w
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: err}
	}
	max := c.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	out := &limited{max: max}
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(out, r)
	}()

	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExited(pid)
	}()
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	res := Result{ExitCode: -1}
	select {
	case <-exited:
	case <-ctx.Done():
		res.Outcome, res.Err = TimedOut, ctx.Err()
		syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-exited:
		case <-t.C:
			res.Killed = true
			syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		t.Stop()
	}
	// The leader has exited but is not reaped yet, so its pid (the group's id) cannot have
	// been reused: whatever is left in the group is the command's, and goes.
	syscall.Kill(-pid, syscall.SIGKILL)
	cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.Signal = ws.Signal()
		if res.Outcome != TimedOut {
			res.Outcome = Signaled
		}
	case res.Outcome != TimedOut:
		res.Outcome, res.ExitCode = Exited, ws.ExitStatus()
	}

	// The group is gone, so the output ends at once unless a process that left the group
	// holds it: wait a little for that, then take what was written and stop.
	t := time.NewTimer(outputWait)
	select {
	case <-read:
	case <-t.C:
		r.SetReadDeadline(time.Unix(1, 0))
		<-read
		r.SetReadDeadline(time.Time{})
		drain(r, out)
	}
	t.Stop()
	res.Output, res.Truncated = out.buf.Bytes(), out.dropped
	return res
}

// waitExited returns when process pid has exited, leaving it to be reaped (WNOWAIT): until
// then its pid, which is its group's id, stays taken and cannot name another group.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// drain reads what is buffered in r without waiting for more, and at most one pipe's worth
// (64 KiB, Linux's default pipe capacity): a process that escaped the group and keeps writing
// would otherwise keep the pipe from ever being empty.
func drain(r *os.File, out io.Writer) {
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	total := 0
	rc.Read(func(fd uintptr) bool {
		for total < 64<<10 {
			n, err := syscall.Read(int(fd), buf)
			if n > 0 {
				out.Write(buf[:n])
				total += n
			}
			if err == syscall.EINTR {
				continue
			}
			if n <= 0 || err != nil {
				return true
			}
		}
		return true
	})
}

// limited keeps the first max bytes written to it and discards the rest, so that a chatty
// command costs no memory and never blocks on a full pipe.
type limited struct {
	buf     bytes.Buffer
	max     int
	dropped bool
}

func (l *limited) Write(p []byte) (int, error) {
	room := l.max - l.buf.Len()
	if room < len(p) {
		l.dropped = true
	}
	if room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// FirstLine is the first non-blank line of a command's output, trimmed and cut at 200
// characters: what a probe or a notify reports of it.
func FirstLine(b []byte) string {
	for _, l := range bytes.Split(b, []byte("\n")) {
		if s := strings.TrimSpace(string(l)); s != "" {
			if r := []rune(s); len(r) > 200 {
				s = string(r[:200]) + "…"
			}
			return s
		}
	}
	return ""
}
