package main

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
	"github.com/vigil-ha/vigil/core/lab"
)

// impl is one VRRP implementation under test. Both read the very same keepalived.conf.
type impl struct {
	name string
	bin  string
	// args returns the command line for conf on node; dir holds per-run files (pid files).
	args func(conf, dir string) []string
	// takeoverMarker is the log text of a transition to MASTER; a line counts only if it
	// also holds every one of takeoverAlso.
	takeoverMarker string
	takeoverAlso   []string
}

func vigilImpl(bin string) *impl {
	// Newer vigil has a pid file and a control socket (defaults under /run, shared by every
	// namespace): give each run its own, when the binary knows the flags.
	help, _ := exec.Command(bin, "-h").CombinedOutput()
	ownPid := strings.Contains(string(help), "\n  -p ")
	ownCtl := strings.Contains(string(help), "\n  -control ")
	return &impl{
		name: "vigil",
		bin:  bin,
		args: func(conf, dir string) []string {
			a := []string{"-f", conf}
			if ownPid {
				a = append(a, "-p", filepath.Join(dir, "vigil.pid"))
			}
			if ownCtl {
				a = append(a, "-control", filepath.Join(dir, "vigil.sock"))
			}
			return a
		},
		// The vrrp child logs each transition and core logs it again when it passes it to the
		// notify actions: count the child's line only (its logger is named vigil.vrrp.BINARY).
		takeoverMarker: "to=MASTER",
		takeoverAlso:   []string{".vrrp."},
	}
}

func keepalivedImpl(bin string) *impl {
	return &impl{
		name:           "keepalived",
		bin:            bin,
		args:           harness.KeepalivedArgs,
		takeoverMarker: "Entering MASTER STATE",
	}
}

// configTest asks the implementation whether it accepts conf.
func (im *impl) configTest(ctx context.Context, conf string) error {
	out, err := exec.CommandContext(ctx, im.bin, "-t", "-f", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -t -f %s: %w\n%s", im.name, conf, err, out)
	}
	return nil
}

// daemon is a running implementation on one lab node.
type daemon struct {
	im   *impl
	node *lab.Node
	proc *lab.Proc
	dir  string
}

// start writes conf into a fresh directory and runs the implementation on node.
func (im *impl) start(ctx context.Context, node *lab.Node, workDir, tag, conf string) (*daemon, error) {
	dir, err := os.MkdirTemp(workDir, fmt.Sprintf("%s-%s-%s-", im.name, node.Name, tag))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := node.Start(im.bin, im.args(path, dir)...)
	if err != nil {
		return nil, err
	}
	return &daemon{im: im, node: node, proc: p, dir: dir}, nil
}

func (d *daemon) pid() int { return d.proc.Cmd.Process.Pid }

// kill9 sends SIGKILL to the daemon's whole process group (Node.Start gives it its own) and
// waits for the leader to be reaped.
func (d *daemon) kill9() error {
	if d.proc.Exited() {
		return fmt.Errorf("%s on %s had already exited:\n%s", d.im.name, d.node.Name, tail(d.proc.Output(), 2000))
	}
	if err := syscall.Kill(-d.pid(), syscall.SIGKILL); err != nil {
		return err
	}
	_ = d.proc.Wait(5 * time.Second) // "signal: killed" is the expected outcome
	if !d.proc.Exited() {
		return fmt.Errorf("%s on %s survived SIGKILL", d.im.name, d.node.Name)
	}
	return nil
}

// stop ends the daemon (SIGKILL to its group) if it still runs, and waits until no process of
// its group is left.
func (d *daemon) stop() {
	d.proc.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(processGroup(d.pid())) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) takeovers() int {
	out := d.proc.Output()
	if len(d.im.takeoverAlso) == 0 {
		return strings.Count(out, d.im.takeoverMarker)
	}
	n := 0
lines:
	for line := range strings.Lines(out) {
		if !strings.Contains(line, d.im.takeoverMarker) {
			continue
		}
		for _, s := range d.im.takeoverAlso {
			if !strings.Contains(line, s) {
				continue lines
			}
		}
		n++
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
