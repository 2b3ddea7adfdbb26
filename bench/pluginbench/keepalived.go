package main

import (
	"context"
	"errors"
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

// The keepalived case: keepalived itself running vrrp_scripts, which is what the plugin
// boundary replaces. The emulated script cases run the scripts from this Go process; here the
// fork comes from keepalived's C process, as on an operator's machine. It needs root (keepalived
// needs an interface and raw sockets: it runs in a one-node namespace lab) and is skipped with
// the reason in the report otherwise.
//
// keepalived takes whole seconds for a vrrp_script interval, so the case runs many scripts
// every second instead of one quickly: -ka-scripts vrrp_scripts, interval 1, all tracked by
// one instance that is master on its own. The script is the "#!/bin/sh" script of the other
// cases plus one line that appends to a file, by which the probes are counted (a builtin
// and a redirect: a few µs of the script's milliseconds). CPU per probe is what the keepalived
// process tree used over the window (its processes' utime+stime, and the scripts' through the
// cutime+cstime of the process that reaped them), less what the same keepalived with the same
// instance and no scripts used over an equal window, divided by the probes counted.

// kaResult is one run of the keepalived case.
type kaResult struct {
	cpuPerProbe time.Duration // keepalived's processes and the scripts
	ownPerProbe time.Duration // keepalived's processes alone
	probes      int
}

// kaRun holds what the keepalived case reports: its runs, or why it did not run.
type kaRun struct {
	version string
	results []kaResult
	skipped string
}

const kaWarm = 3 * time.Second // past start-up and the first election

func runKeepalived(o options, work string) kaRun {
	if o.kaScripts == 0 {
		return kaRun{skipped: "-ka-scripts 0"}
	}
	bin, err := exec.LookPath(o.keepalived)
	if err != nil {
		return kaRun{skipped: fmt.Sprintf("no keepalived (%v)", err)}
	}
	if err := lab.Available(); err != nil {
		return kaRun{skipped: err.Error()}
	}
	ver, _ := exec.Command(bin, "--version").CombinedOutput()
	r := kaRun{version: strings.TrimSpace(strings.SplitN(string(ver), "\n", 2)[0])}
	dir := filepath.Join(work, "keepalived")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return kaRun{skipped: err.Error()}
	}
	ctx := context.Background()
	l, err := lab.New(ctx, "pbench", 1, dir)
	if err != nil {
		return kaRun{skipped: fmt.Sprintf("lab: %v", err)}
	}
	defer l.Close()
	count := filepath.Join(dir, "probes")
	script := filepath.Join(dir, "chk.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho x >> "+count+"\nexit 0\n"), 0o755); err != nil {
		return kaRun{skipped: err.Error()}
	}
	for run := range o.runs {
		logf("run %d: keepalived, %d vrrp_scripts every 1s, then none, %s each", run+1, o.kaScripts, o.kaWindow)
		with, err := kaWindow(l.Nodes[0], bin, dir, kaConfig(o.kaScripts, script), count, o.kaWindow)
		if err != nil {
			r.skipped = fmt.Sprintf("run %d with scripts: %v", run+1, err)
			return r
		}
		without, err := kaWindow(l.Nodes[0], bin, dir, kaConfig(0, script), count, o.kaWindow)
		if err != nil {
			r.skipped = fmt.Sprintf("run %d without scripts: %v", run+1, err)
			return r
		}
		if with.probes == 0 {
			r.skipped = fmt.Sprintf("run %d: no script ran in the window (see %s)", run+1, dir)
			return r
		}
		n := time.Duration(with.probes)
		res := kaResult{
			cpuPerProbe: (with.total - without.total) / n,
			ownPerProbe: (with.own - without.own) / n,
			probes:      with.probes,
		}
		logf("run %d: keepalived itself                      CPU %6.1f µs/probe (keepalived %6.1f), %d probes; without scripts %s",
			run+1, us(res.cpuPerProbe), us(res.ownPerProbe), with.probes, without.total)
		r.results = append(r.results, res)
	}
	return r
}

// kaConfig is one instance on the node's eth0, master on its own, tracking n scripts.
func kaConfig(n int, script string) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    script_user root\n}\n")
	for i := range n {
		fmt.Fprintf(&b, "vrrp_script chk_%d {\n    script %q\n    interval 1\n}\n", i, script)
	}
	b.WriteString("vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    advert_int 1\n")
	b.WriteString("    virtual_ipaddress {\n        192.0.2.100/24\n    }\n")
	if n > 0 {
		b.WriteString("    track_script {\n")
		for i := range n {
			fmt.Fprintf(&b, "        chk_%d\n", i)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// kaSample is what a window cost keepalived.
type kaSample struct {
	total, own time.Duration
	probes     int
}

// kaWindow runs keepalived with conf on node, lets it settle, and measures one window.
func kaWindow(node *lab.Node, bin, dir, conf, count string, window time.Duration) (kaSample, error) {
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return kaSample{}, err
	}
	p, err := node.Start(bin, harness.KeepalivedArgs(path, dir)...)
	if err != nil {
		return kaSample{}, err
	}
	defer p.Kill()
	time.Sleep(kaWarm)
	if p.Exited() {
		return kaSample{}, fmt.Errorf("keepalived exited: %s", p.Output())
	}
	root := p.Cmd.Process.Pid
	t0, o0 := kaTicks(root)
	c0 := fileSize(count)
	time.Sleep(window)
	t1, o1 := kaTicks(root)
	c1 := fileSize(count)
	if p.Exited() {
		return kaSample{}, fmt.Errorf("keepalived exited during the window: %s", p.Output())
	}
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(5 * time.Second); err != nil && !errors.As(err, new(*exec.ExitError)) {
		return kaSample{}, err
	}
	tick := proc.Tick()
	return kaSample{
		total:  time.Duration(t1-t0) * tick,
		own:    time.Duration(o1-o0) * tick,
		probes: int(c1-c0) / 2, // "x\n" per probe
	}, nil
}

// kaTicks is the CPU of root's process tree, all and keepalived's own, in one reading of
// /proc. All: every process's own ticks and those of the children it reaped (the scripts land
// in the VRRP process's). Own: root (the parent) and its children (the VRRP process; the
// checker and BFD processes with -P do not run).
func kaTicks(root int) (all, own uint64) {
	for _, s := range proc.Tree(root) {
		all += s.Ticks + s.ChildTicks
		if s.PID == root || s.PPID == root {
			own += s.Ticks
		}
	}
	return all, own
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
