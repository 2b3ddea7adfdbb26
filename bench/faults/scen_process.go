package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// Faults of one process of a daemon: vigil's check child, vrrp child and core process (and
// keepalived's vrrp child and parent) killed with SIGKILL, on the master (n1) and on a backup
// (n2); vigil's check plugin killed or frozen. Every node tracks one vrrp_script (procConf), so
// that vigil runs all three processes and its exec plugin, and keepalived runs the script in its
// vrrp child.

// The check plugin the process scenarios track: vigil runs keepalived's vrrp_script through it.
const execPlugin = "vigil-check-exec"

func init() {
	scenarios.add(
		&Scenario{
			Name: "master-vrrp-child-kill9",
			Doc: `The master's VRRP process alone gets SIGKILL (vigil's vrrp child; keepalived's VRRP child).
				Its parent restarts it; the new one removes the VIP the dead one left and starts as a
				backup; n2 takes over, and n1 takes the VIP back after its Master_Down_Interval (it
				preempts with the higher priority): the VIP moves twice. keepalived's n2 waits for its
				Master_Down_Interval with nobody holding the VIP; vigil's new child resigns for the dead
				one (a priority 0 advert), so n2 takes over after Skew_Time. Must hold: the child
				restarted, n1 the one master at the end, n3 does not move. The notes give the time with
				no holder and with two.`,
			Short: true,
			Run:   childKill("vrrp", 0),
		},
		&Scenario{
			Name: "master-vrrp-child-kill9-fast",
			Doc: `master-vrrp-child-kill9 at advert_int 0.1 s, where n2's Master_Down_Interval (0.36 s) is
				shorter than the time the parent takes to restart the child: until the new child removes
				it, the dead child's VIP stays on n1 while n2 holds it too.`,
			Run: childKillConf("vrrp", 0, 100*time.Millisecond),
		},
		&Scenario{
			Name: "backup-vrrp-child-kill9",
			Doc: `A backup's (n2's) VRRP process alone gets SIGKILL, and its parent restarts it as a backup:
				nobody else moves (n1 and n3: zero transitions) and the VIP stays on n1.`,
			Run: childKill("vrrp", 1),
		},
		&Scenario{
			Name: "master-check-child-kill9",
			Doc: `vigil only: the master's check child gets SIGKILL while n1 tracks a vrrp_script (fall 3,
				weight 0) that it runs. The supervisor restarts it, and VRRP keeps the check's last state
				meanwhile: zero transitions anywhere, the VIP stays on n1. keepalived has no such row:
				it runs vrrp_script in its VRRP process (see the vrrp rows), and its checker process
				serves only virtual_server, with IPVS, which this kernel lacks.`,
			Impls: []string{"vigil"},
			Short: true,
			Run:   childKill("check", 0),
		},
		&Scenario{
			Name:  "backup-check-child-kill9",
			Doc:   `vigil only: master-check-child-kill9 on n2, a backup: zero transitions anywhere.`,
			Impls: []string{"vigil"},
			Run:   childKill("check", 1),
		},
		&Scenario{
			Name: "master-core-kill9",
			Doc: `The master's main process alone gets SIGKILL (vigil's core; keepalived's parent); nothing
				restarts it (that is systemd's job). Its children get SIGTERM as their parent-death signal:
				the VRRP process resigns (priority 0) and removes the VIP, so n2 takes over at once rather
				than after Master_Down_Interval. Must hold: no process of the daemon is left, n2 the one
				master, n3 does not move.`,
			Short: true,
			Run:   coreKill(0),
		},
		&Scenario{
			Name: "backup-core-kill9",
			Doc: `master-core-kill9 on n2, a backup: its children leave with it, and nobody else moves (n1
				and n3: zero transitions); the VIP stays on n1.`,
			Run: coreKill(1),
		},
		&Scenario{
			Name: "plugin-crash",
			Doc: `vigil only: the master's check plugin (vigil-check-exec, which runs the tracked vrrp_script:
				interval 1 s, timeout 2 s, fall 3, rise 2, weight 0) gets SIGKILL, and once restarted,
				SIGKILL again. The plugin host restarts it at once, then after 1 s (backoff), each time
				before the check could fail three probes: zero transitions anywhere. keepalived forks
				the script for each probe: it has no long-lived check process to crash.`,
			Impls: []string{"vigil"},
			Short: true,
			Run:   runPluginCrash,
		},
		&Scenario{
			Name: "plugin-hang",
			Doc: `vigil only: the master's check plugin is frozen with SIGSTOP (same check, fall 3). The
				probe in flight times out (2 s), the host pings the plugin, kills it as hung when two
				pings in a row (2 s each) go unanswered while it neither runs nor waits for a CPU, and
				starts another. The probes meanwhile never reach a plugin: they have no result, counted
				only past the check's failure budget (fall × timeout, 6 s). One probe fails, fewer than
				fall, so zero transitions anywhere.`,
			Impls: []string{"vigil"},
			Short: true,
			Run:   pluginHang(3),
		},
		&Scenario{
			Name: "plugin-hang-fall1",
			Doc: `vigil only: plugin-hang with fall 1, so that the check's own threshold is crossed: the first
				timed-out probe puts n1 in FAULT (n2 takes over), the new plugin's probes bring the check
				up after rise 2, and n1 takes the VIP back. Must hold: n1 goes exactly FAULT, BACKUP,
				MASTER; n2 MASTER then BACKUP; n3 does not move; n1 the one master at the end.`,
			Impls: []string{"vigil"},
			Run:   pluginHang(1),
		},
	)
}

// procConf tracks a vrrp_script that always succeeds on every node: fall failed probes in a
// row put the instance in FAULT (weight 0), rise good ones bring it back.
func procConf(fall int) Conf {
	return Conf{
		Instance: "track_script {\n    chk\n}",
		Top: fmt.Sprintf(`vrrp_script chk {
    script "/bin/true"
    interval 1
    timeout 2
    fall %d
    rise 2
    weight 0
}`, fall),
	}
}

// others are the VRRP nodes other than the ones given.
func others(e *Env, not ...int) []int {
	var out []int
	for i := range e.Nodes {
		if !containsInt(not, i) {
			out = append(out, i)
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// states lists node i's notify states since t, as "FAULT BACKUP MASTER" ("none" if none).
func states(e *Env, i int, since time.Time) string {
	var s []string
	for _, t := range e.Transitions(i, since) {
		s = append(s, t.State)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

// holderWatch samples which nodes hold VIP(0) every 20 ms and keeps the longest time that
// none held it and that two or more did.
type holderWatch struct {
	stop chan struct{}
	done chan struct{}

	mu             sync.Mutex
	none, two      time.Duration // longest run so far
	noneAt, twoAt  time.Time     // start of the current run, zero when not in one
	seen           map[int]bool  // every node that held it
	firstOther     time.Duration // from start until a node other than first held it; -1: never
	first          int
	start, lastOne time.Time
}

// watchHolders starts sampling; first is the node that holds the VIP now.
func watchHolders(ctx context.Context, e *Env, first int) *holderWatch {
	w := &holderWatch{stop: make(chan struct{}), done: make(chan struct{}), seen: map[int]bool{}, first: first, firstOther: -1, start: time.Now()}
	go func() {
		defer close(w.done)
		for {
			h, err := e.Holders(ctx)
			now := time.Now()
			if err == nil {
				w.add(now, h)
			}
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *holderWatch) add(now time.Time, h []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, i := range h {
		w.seen[i] = true
		if i != w.first && w.firstOther < 0 {
			w.firstOther = now.Sub(w.start)
		}
	}
	track := func(on bool, at *time.Time, longest *time.Duration) {
		switch {
		case on && at.IsZero():
			*at = now
		case on:
			*longest = max(*longest, now.Sub(*at))
		default:
			*at = time.Time{}
		}
	}
	track(len(h) == 0, &w.noneAt, &w.none)
	track(len(h) >= 2, &w.twoAt, &w.two)
}

// end stops sampling and describes what it saw.
func (w *holderWatch) end(e *Env) string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for i := range e.Nodes {
		if w.seen[i] {
			names = append(names, e.Nodes[i].Name)
		}
	}
	moved := "the VIP never left " + e.Nodes[w.first].Name
	if w.firstOther >= 0 {
		moved = fmt.Sprintf("another node held the VIP %s after the fault", dur(w.firstOther))
	}
	return fmt.Sprintf("%s; held by [%s]; longest with no holder %s, with two holders %s",
		moved, strings.Join(names, " "), dur(w.none), dur(w.two))
}

// childKill kills the child in role of node's daemon with SIGKILL and waits for its restart.
func childKill(role string, node int) func(context.Context, *Env) (*Result, error) {
	return childKillConf(role, node, 0)
}

// childKillConf is childKill at advert_int advert (0: the default).
func childKillConf(role string, node int, advert time.Duration) func(context.Context, *Env) (*Result, error) {
	return func(ctx context.Context, e *Env) (*Result, error) {
		c := procConf(3)
		c.Advert = advert
		if err := e.StartCluster(ctx, c); err != nil {
			return nil, err
		}
		d := e.Daemons[node]
		old := d.Children()[role]
		if old == 0 {
			return nil, fmt.Errorf("%s on %s has no %s child (children: %v)", e.Impl.Name, e.Nodes[node].Name, role, d.Children())
		}
		w := watchHolders(ctx, e, 0)
		fault := time.Now()
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill %s child %d: %w", role, old, err)
		}
		var pid int
		restarted := e.waitFor(ctx, 60*time.Second, func() bool {
			pid = d.Children()[role]
			return pid != 0 && pid != old
		})
		took := time.Since(fault)
		// The check child is on no node's VRRP path: nobody moves. A backup's new vrrp child
		// reports its first state again (keepalived's notify runs BACKUP once more).
		still := others(e)
		if role == "vrrp" {
			still = others(e, node)
		}
		if node == 0 && role == "vrrp" {
			// The VIP moves to n2 and back: the cluster has converged once n1 holds it alone again.
			still = others(e, 0, 1)
			if err := e.waitFor(ctx, 60*time.Second, func() bool {
				h, err := e.Holders(ctx)
				return err == nil && len(h) == 1 && h[0] == 0
			}); err != nil {
				e.Logf("n1 did not take the VIP back: %v", err)
			}
		}
		r, err := e.Measure(ctx, fault, 0, 0, still...)
		if err != nil {
			return r, err
		}
		r.Note("%s", w.end(e))
		if restarted != nil {
			r.Fail("the %s child was not restarted within 60 s", role)
		} else {
			r.Note("%s child restarted within %s (pid %d, then %d)", role, dur(took), old, pid)
		}
		r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
		r.Note("transitions since the fault: %s", allStates(e, fault))
		return r, nil
	}
}

// holderIs reports whether node i alone holds VIP(0).
func holderIs(ctx context.Context, e *Env, i int) bool {
	h, err := e.Holders(ctx)
	return err == nil && len(h) == 1 && h[0] == i
}

// allStates is every node's notify states since t: "n1 [FAULT BACKUP], n2 [none], ...".
func allStates(e *Env, since time.Time) string {
	var s []string
	for i := range e.Nodes {
		s = append(s, fmt.Sprintf("%s [%s]", e.Nodes[i].Name, states(e, i, since)))
	}
	return strings.Join(s, ", ")
}

// coreKill kills node's main process alone with SIGKILL.
func coreKill(node int) func(context.Context, *Env) (*Result, error) {
	return func(ctx context.Context, e *Env) (*Result, error) {
		if err := e.StartCluster(ctx, procConf(3)); err != nil {
			return nil, err
		}
		d := e.Daemons[node]
		kids := d.Children()
		w := watchHolders(ctx, e, 0)
		fault := time.Now()
		if err := d.Proc.Signal(syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill %s's main process: %w", e.Impl.Name, err)
		}
		// Every process of the daemon's group must go: the children on their parent-death
		// signal, and whatever they ran.
		gone := e.waitFor(ctx, 30*time.Second, func() bool { return len(proc.Group(d.PID())) == 0 })
		still := others(e, node)
		if node == 0 {
			still = others(e, 0, 1)
		}
		r, err := e.Measure(ctx, fault, 0, 0, still...)
		if err != nil {
			return r, err
		}
		r.Note("%s", w.end(e))
		if gone != nil {
			r.Fail("processes of the daemon left 30 s after its main process was killed: %v", proc.Group(d.PID()))
		}
		want := 0
		if node == 0 {
			want = 1
		}
		r.Check(holderIs(ctx, e, want), "%s does not hold the VIP alone at the end", e.Nodes[want].Name)
		r.Note("children before the kill %v; transitions since the fault: %s", kids, allStates(e, fault))
		if e.Impl.Name == "vigil" && node == 0 {
			r.Note("n1's notify script does not run for its resignation: vigil runs notify actions in core, the process killed")
		}
		return r, nil
	}
}

// pluginPID is the live process of check plugin name under d, or 0.
func pluginPID(d *daemon.Daemon, name string) int {
	for _, s := range proc.Tree(d.PID()) {
		if s.Zombie {
			continue
		}
		if args := proc.Cmdline(s.PID); len(args) > 0 && filepath.Base(args[0]) == name {
			return s.PID
		}
	}
	return 0
}

// needPlugin fails when vigil would run the vrrp_script without its exec plugin (a -vigil
// binary without plugins beside it): there would be no plugin to kill.
func needPlugin(ctx context.Context, e *Env) (int, error) {
	d := e.Daemons[0]
	var pid int
	if err := e.waitFor(ctx, 20*time.Second, func() bool { pid = pluginPID(d, execPlugin); return pid != 0 }); err != nil {
		return 0, fmt.Errorf("no %s process under vigil on n1 (is it beside the vigil binary?): %w", execPlugin, err)
	}
	return pid, nil
}

// newPlugin waits for a plugin process other than old, at most bound.
func newPlugin(ctx context.Context, e *Env, old int, bound time.Duration) (int, error) {
	var pid int
	err := e.waitFor(ctx, bound, func() bool {
		pid = pluginPID(e.Daemons[0], execPlugin)
		return pid != 0 && pid != old
	})
	return pid, err
}

func runPluginCrash(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, procConf(3)); err != nil {
		return nil, err
	}
	first, err := needPlugin(ctx, e)
	if err != nil {
		return nil, err
	}
	fault := time.Now()
	pids := []int{first}
	var fails []string
	for range 2 {
		old := pids[len(pids)-1]
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill plugin %d: %w", old, err)
		}
		// The host sees the death at the next probe (every second) and restarts the plugin at
		// once, the second time after 1 s.
		pid, err := newPlugin(ctx, e, old, 30*time.Second)
		if err != nil {
			fails = append(fails, fmt.Sprintf("no new plugin process 30 s after plugin %d was killed", old))
			break
		}
		pids = append(pids, pid)
		// Let the new process serve a probe or two before it is killed in turn: a process
		// killed while it starts is another fault (a failed start).
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return nil, err
		}
	}
	r, err := e.Measure(ctx, fault, 0, 0, others(e)...)
	if err != nil {
		return r, err
	}
	for _, f := range fails {
		r.Fail("%s", f)
	}
	r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
	out := e.Daemons[0].Proc.Output()
	r.Check(!strings.Contains(out, "up=false"), "the check went down on n1")
	r.Note("plugin processes %v; the host logged %d deaths and %d failed starts", pids,
		strings.Count(out, "plugin died, will restart"), strings.Count(out, "plugin did not start"))
	return r, nil
}

// pluginHang freezes the master's check plugin; fall is the tracked check's.
func pluginHang(fall int) func(context.Context, *Env) (*Result, error) {
	return func(ctx context.Context, e *Env) (*Result, error) {
		if err := e.StartCluster(ctx, procConf(fall)); err != nil {
			return nil, err
		}
		old, err := needPlugin(ctx, e)
		if err != nil {
			return nil, err
		}
		fault := time.Now()
		if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("stop plugin %d: %w", old, err)
		}
		e.Defer(func() { _ = syscall.Kill(old, syscall.SIGCONT) })
		pid, perr := newPlugin(ctx, e, old, 60*time.Second)
		killed := time.Since(fault)
		still := others(e)
		if fall == 1 {
			still = others(e, 0, 1)
			// FAULT, then back up (rise 2) and master again (preempt).
			if err := e.waitFor(ctx, 60*time.Second, func() bool {
				return strings.HasSuffix(states(e, 0, fault), "MASTER") && holderIs(ctx, e, 0)
			}); err != nil {
				e.Logf("n1 did not become master again: %v", err)
			}
		}
		r, err := e.Measure(ctx, fault, 0, 0, still...)
		if err != nil {
			return r, err
		}
		if perr != nil {
			r.Fail("the frozen plugin was not replaced within 60 s")
		} else {
			r.Note("the frozen plugin (pid %d) was replaced by pid %d %s after SIGSTOP", old, pid, dur(killed))
		}
		r.Check(!processAlive(old), "the frozen plugin %d is still there", old)
		out := e.Daemons[0].Proc.Output()
		r.Check(strings.Contains(out, "hung"), "vigil did not log the plugin as hung")
		r.Check(holderIs(ctx, e, 0), "n1 does not hold the VIP alone at the end")
		if fall == 1 {
			r.Check(states(e, 0, fault) == "FAULT BACKUP MASTER", "n1 went %s, want FAULT BACKUP MASTER", states(e, 0, fault))
			r.Check(states(e, 1, fault) == "MASTER BACKUP", "n2 went %s, want MASTER BACKUP", states(e, 1, fault))
		} else {
			r.Check(!strings.Contains(out, "up=false"), "the check went down on n1")
		}
		r.Note("transitions since the fault: %s", allStates(e, fault))
		return r, nil
	}
}

func processAlive(pid int) bool {
	s, err := proc.ReadStat(pid)
	return err == nil && !s.Zombie
}

// buildPlugins builds the check plugins the scenarios run into dir, beside the vigil binary
// there: vigil looks for its plugins in its own directory when they sit beside it, as in bin/
// of a development tree.
func buildPlugins(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, execPlugin), "github.com/vigil-ha/vigil/plugins/"+execPlugin)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", execPlugin, err, out)
	}
	return nil
}
