// Package daemon starts and ends the VRRP implementations under test, vigil and keepalived,
// on lab nodes, for the benchmarks and the fault suite: both read the very same
// keepalived.conf, each gets pid files (and vigil a control socket) of its own so that
// daemons in several namespaces do not collide, and each runs in a process group of its own
// (lab.Node.Start) so that a signal reaches the whole daemon.
package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/internal/lab"
)

// Impl is one VRRP implementation under test.
type Impl struct {
	Name string // "vigil" or "keepalived"
	Bin  string
	// Args returns the command line for conf on node; dir holds per-run files (pid files).
	Args func(conf, dir string) []string
	// takeoverMarker is the log text of a transition to MASTER; a line counts only if it
	// also holds every one of takeoverAlso.
	takeoverMarker string
	takeoverAlso   []string
}

// Vigil is vigil's binary bin.
func Vigil(bin string) *Impl {
	return &Impl{
		Name: "vigil",
		Bin:  bin,
		// The pid file and the control socket default to places under /run that every
		// namespace shares: each run gets its own. (This used to be decided by reading
		// `vigil -h` for the flags, which broke when the help's layout changed.)
		Args: func(conf, dir string) []string {
			return []string{"-f", conf, "-p", filepath.Join(dir, "vigil.pid"), "-control", filepath.Join(dir, "vigil.sock")}
		},
		// The vrrp child logs each transition and core logs it again when it passes it to the
		// notify actions: count the child's line only (its logger is named vigil.vrrp.BINARY).
		takeoverMarker: "to=MASTER",
		takeoverAlso:   []string{".vrrp."},
	}
}

// Keepalived is keepalived's binary bin, run in the foreground, VRRP only
// (harness.KeepalivedArgs).
func Keepalived(bin string) *Impl {
	return &Impl{
		Name:           "keepalived",
		Bin:            bin,
		Args:           harness.KeepalivedArgs,
		takeoverMarker: "Entering MASTER STATE",
	}
}

// ConfigTest asks the implementation whether it accepts conf (a file).
func (im *Impl) ConfigTest(ctx context.Context, conf string) error {
	out, err := exec.CommandContext(ctx, im.Bin, "-t", "-f", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -t -f %s: %w\n%s", im.Name, conf, err, out)
	}
	return nil
}

// Daemon is a running implementation on one lab node.
type Daemon struct {
	Impl *Impl
	Node *lab.Node
	Proc *lab.Proc
	Dir  string // its own directory: the configuration, pid files, vigil's control socket
	Conf string // the configuration file it was started on
}

// Start writes conf into a fresh directory under workDir and runs the implementation on node.
func (im *Impl) Start(ctx context.Context, node *lab.Node, workDir, tag, conf string) (*Daemon, error) {
	dir, err := os.MkdirTemp(workDir, fmt.Sprintf("%s-%s-%s-", im.Name, node.Name, tag))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := node.Start(im.Bin, im.Args(path, dir)...)
	if err != nil {
		return nil, err
	}
	return &Daemon{Impl: im, Node: node, Proc: p, Dir: dir, Conf: path}, nil
}

// PID is the daemon's main process (vigil's core, keepalived's parent), also the id of its
// process group.
func (d *Daemon) PID() int { return d.Proc.Cmd.Process.Pid }

// Exited reports whether the daemon's main process has ended.
func (d *Daemon) Exited() bool { return d.Proc.Exited() }

// Output is the daemon's log so far.
func (d *Daemon) Output() string { return d.Proc.Output() }

// Signal sends sig to the daemon's whole process group.
func (d *Daemon) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-d.PID(), sig); err != nil {
		return fmt.Errorf("%s to %s on %s: %w", sig, d.Impl.Name, d.Node.Name, err)
	}
	return nil
}

// Kill9 sends SIGKILL to the daemon's whole process group and waits for the leader to be
// reaped.
func (d *Daemon) Kill9() error {
	if d.Proc.Exited() {
		return fmt.Errorf("%s on %s had already exited:\n%s", d.Impl.Name, d.Node.Name, Tail(d.Proc.Output(), 2000))
	}
	if err := syscall.Kill(-d.PID(), syscall.SIGKILL); err != nil {
		return err
	}
	_ = d.Proc.Wait(5 * time.Second) // "signal: killed" is the expected outcome
	if !d.Proc.Exited() {
		return fmt.Errorf("%s on %s survived SIGKILL", d.Impl.Name, d.Node.Name)
	}
	return nil
}

// Stop ends the daemon (SIGKILL to its group) if it still runs, and waits until no process of
// its group is left.
func (d *Daemon) Stop() {
	d.Proc.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(proc.Group(d.PID())) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

// Terminate asks the daemon to stop (SIGTERM to its main process: both implementations then
// resign and remove their addresses), waits up to d for it, then Stops what is left.
func (d *Daemon) Terminate(wait time.Duration) error {
	var err error
	if !d.Proc.Exited() {
		if err = d.Proc.Signal(syscall.SIGTERM); err == nil {
			if werr := d.Proc.Wait(wait); werr != nil && !d.Proc.Exited() {
				err = werr
			}
		}
	}
	d.Stop()
	return err
}

// Children are vigil's child processes by role ("check", "vrrp"): the children of its core
// process whose command line holds "--role ROLE". keepalived, run VRRP only, has one child,
// found as role "vrrp". A role that is not running is absent.
func (d *Daemon) Children() map[string]int {
	out := map[string]int{}
	for _, s := range proc.Tree(d.PID()) {
		if s.PPID != d.PID() || s.Zombie {
			continue
		}
		if d.Impl.Name == "keepalived" {
			out["vrrp"] = s.PID
			continue
		}
		args := proc.Cmdline(s.PID)
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--role" || args[i] == "-role" {
				out[args[i+1]] = s.PID
			}
		}
	}
	return out
}

// Takeovers counts the transitions to MASTER in the daemon's log.
func (d *Daemon) Takeovers() int {
	out := d.Proc.Output()
	if len(d.Impl.takeoverAlso) == 0 {
		return strings.Count(out, d.Impl.takeoverMarker)
	}
	n := 0
lines:
	for line := range strings.Lines(out) {
		if !strings.Contains(line, d.Impl.takeoverMarker) {
			continue
		}
		for _, s := range d.Impl.takeoverAlso {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

// Tail is the last n bytes of s, for error messages that quote a log.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
