package supervisor_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// notifyConf is an instance with keepalived's notify scripts writing the state they are
// called for into out, two tracked scripts on flag files (chk_w lowers the priority by 100
// when it fails, chk_f puts the instance in FAULT), and optional global_defs lines.
func notifyConf(prio int, dir, global string) string {
	out := filepath.Join(dir, "notified")
	w := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("#!/bin/sh\n"+body+" >> "+out+"\n"), 0o755)
		return p
	}
	// The STOP script records whether the VIP was still up when it ran. The checks' timeout
	// only bounds a hung script: at its default, the interval, a loaded machine that took
	// 100 ms to start one failed the check and put the instance in FAULT.
	stop := w("stop.sh", "if ip -o addr | grep -q ' 192.0.2.100/'; then echo STOP with VIP; else echo STOP without VIP; fi")
	return fmt.Sprintf(`global_defs {
    router_id %s
%s}
vrrp_script chk_w {
    script "/usr/bin/test -e %s"
    interval 0.1
    timeout 10
    weight -100
}
vrrp_script chk_f {
    script "/usr/bin/test -e %s"
    interval 0.1
    timeout 10
    weight 0
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 0.2
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_w
        chk_f
    }
    notify_master "%s MASTER"
    notify_backup "%s BACKUP"
    notify_fault "%s FAULT"
    notify_stop %s
}
`, filepath.Base(dir), global, filepath.Join(dir, "w"), filepath.Join(dir, "f"), prio,
		w("state.sh", "echo \"$1\""), filepath.Join(dir, "state.sh"), filepath.Join(dir, "state.sh"), stop)
}

func notified(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "notified"))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestNotifyOnFailover: through a preemption, a preemption back and a fault, each node's
// notify_master, notify_backup and notify_fault scripts fire once per state change, in order;
// on SIGTERM notify_stop runs while the VIP is still up. n1 runs its scripts through the exec
// notify plugin, n2 from core (no plugin installed).
func TestNotifyOnFailover(t *testing.T) {
	ctx, n := newLab(t, 2)
	dirs := make([]string, 2)
	for i := range dirs {
		dirs[i] = filepath.Join(n[i].dir, n[i].Name+"-notify")
		if err := os.Mkdir(dirs[i], 0o755); err != nil {
			t.Fatal(err)
		}
		for _, flag := range []string{"w", "f"} {
			os.WriteFile(filepath.Join(dirs[i], flag), nil, 0o644)
		}
	}
	plugins := filepath.Join(n[0].dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(plugins, "vigil-notify-exec"), "github.com/vigil-ha/vigil/plugins/vigil-notify-exec")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the exec notify plugin: %v\n%s", err, out)
	}
	n1Master := func() bool { return n[0].holds(t, ctx) && !n[1].holds(t, ctx) }
	n2Master := func() bool { return n[1].holds(t, ctx) && !n[0].holds(t, ctx) }
	lines := func(i, k int) func() bool { return func() bool { return len(notified(dirs[i])) >= k } }

	// n1 first, so that n2 starts hearing a master (started together, both may become
	// master for an advert interval, which is VRRP, not what this test is about).
	n[0].start(t, notifyConf(150, dirs[0], "    plugin_dir "+plugins+"\n"))
	waitFor(t, 10*time.Second, "n1 holds the VIP", n1Master)
	n[1].start(t, notifyConf(100, dirs[1], ""))
	waitFor(t, 5*time.Second, "n1's notify_master", lines(0, 2))
	waitFor(t, 5*time.Second, "n2's notify_backup", lines(1, 1))

	// n1's priority drops below n2's: n2 preempts.
	os.Remove(filepath.Join(dirs[0], "w"))
	waitFor(t, 5*time.Second, "n2 takes over from n1 at priority 50", n2Master)
	waitFor(t, 5*time.Second, "n1's notify_backup", lines(0, 3))
	waitFor(t, 5*time.Second, "n2's notify_master", lines(1, 2))

	// Back to 150: n1 preempts back.
	os.WriteFile(filepath.Join(dirs[0], "w"), nil, 0o644)
	waitFor(t, 5*time.Second, "n1 back", n1Master)
	waitFor(t, 5*time.Second, "n1's second notify_master", lines(0, 4))
	waitFor(t, 5*time.Second, "n2's second notify_backup", lines(1, 3))

	// n1 faults: n2 takes over.
	os.Remove(filepath.Join(dirs[0], "f"))
	waitFor(t, 5*time.Second, "n2 takes over from n1 in FAULT", n2Master)
	waitFor(t, 5*time.Second, "n1's notify_fault", lines(0, 5))
	waitFor(t, 5*time.Second, "n2's second notify_master", lines(1, 4))

	// SIGTERM on n2, the master: notify_stop runs before the VIP goes.
	if err := n[1].proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n[1].proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("n2 exit: %v", err)
	}
	if n[1].holds(t, ctx) {
		t.Error("n2 left the VIP behind")
	}
	if err := n[0].proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n[0].proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("n1 exit: %v", err)
	}

	for i, want := range [][]string{
		{"BACKUP", "MASTER", "BACKUP", "MASTER", "FAULT", "STOP without VIP"},
		{"BACKUP", "MASTER", "BACKUP", "MASTER", "STOP with VIP"},
	} {
		if got := notified(dirs[i]); !slices.Equal(got, want) {
			t.Errorf("n%d notified %q, want %q", i+1, got, want)
		}
	}
	// n2 ran its scripts from core and said so once; n1 through the plugin.
	if out := n[1].proc.Output(); strings.Count(out, "vigil-notify-exec is not installed") != 1 {
		t.Errorf("n2 did not say once that its scripts run from core")
	}
	if out := n[0].proc.Output(); strings.Contains(out, "vigil-notify-exec is not installed") {
		t.Errorf("n1 ran its scripts from core although the exec plugin is installed")
	}
}

// TestHungNotifyKeepsAdverts: n1's vrrp_notify action for VI_1 hangs (sleep forever). While
// it hangs, n1 keeps advertising (n2, listening as backup, never takes over, which it would
// after three missed adverts), VI_2's notify_master on n1 runs, and at the action's deadline
// the hung call is cancelled and its process group killed. advert_int is 1 s and the deadline
// 10 s so that a loaded machine's late adverts stay far from both a takeover (3.6 s of
// silence) and the gap a blocked sender would leave (the whole 10 s).
func TestHungNotifyKeepsAdverts(t *testing.T) {
	ctx, n := newLab(t, 2)
	dir := filepath.Join(n[0].dir, "hung")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	plugins := filepath.Join(n[0].dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(plugins, "vigil-notify-exec"), "github.com/vigil-ha/vigil/plugins/vigil-notify-exec")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the exec notify plugin: %v\n%s", err, out)
	}
	pidFile := filepath.Join(dir, "pid")
	hang := filepath.Join(dir, "hang.sh")
	os.WriteFile(hang, []byte("#!/bin/sh\nsleep 1000 &\necho $! > "+pidFile+"\nwait\n"), 0o755)
	out := filepath.Join(dir, "vi2")
	vi2 := filepath.Join(dir, "vi2.sh")
	os.WriteFile(vi2, []byte("#!/bin/sh\necho \"$1\" >> "+out+"\n"), 0o755)
	instance := func(name string, vrid, prio int, vip, extra string) string {
		return fmt.Sprintf("vrrp_instance %s {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n    version 3\n    virtual_ipaddress {\n        %s/24\n    }\n%s}\n", name, vrid, prio, vip, extra)
	}
	// n2's view of the wire: every VRRP advert with its arrival time.
	var capture *lab.Proc
	if _, err := exec.LookPath("tshark"); err == nil {
		capture, err = n[1].Start("tshark", "-i", "eth0", "-l", "-n", "-f", "ip proto 112", "-T", "fields", "-e", "frame.time_epoch", "-e", "vrrp.virt_rtr_id")
		if err != nil {
			t.Fatal(err)
		}
		// tshark takes about a second to start on an idle machine and over 15 s on a loaded
		// one (as core/vrrp's startTshark says): the bound only ends one that never captures.
		waitFor(t, 90*time.Second, "tshark to capture", func() bool { return strings.Contains(capture.Output(), "Capturing on") })
	} else {
		t.Log("tshark is not installed: advert times are not measured, only that n2 stays backup")
	}
	n[0].start(t, fmt.Sprintf("global_defs {\n    plugin_dir %s\n}\nvrrp_notify hang {\n    plugin exec\n    timeout 10\n    params {\n        command %s\n        states MASTER\n    }\n}\n", plugins, hang)+
		instance("VI_1", 51, 150, "192.0.2.100", "    notify_action hang\n")+
		instance("VI_2", 52, 150, "192.0.2.101", "    notify_master \""+vi2+" MASTER\"\n"))
	waitFor(t, 30*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	n[1].start(t, strings.Replace(conf(100, ""), "advert_int 0.2", "advert_int 1", 1))
	waitFor(t, 30*time.Second, "the hung action to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	hangStart := time.Now()
	b, _ := os.ReadFile(pidFile)
	var pid int
	fmt.Sscan(string(b), &pid)
	waitFor(t, 30*time.Second, "VI_2's notify_master", func() bool { b, _ := os.ReadFile(out); return string(b) == "MASTER\n" })
	if !alive(pid) {
		t.Fatal("the hung action ended before VI_2's ran: this test proves nothing")
	}
	// Until the deadline kills it, n1 stays master and n2 backup: n1's adverts go on.
	// Killed means gone or a zombie: the sleep, orphaned when its shell died, waits for
	// whoever adopted it to reap it, which on a loaded machine may take a while. The
	// deadline is 10 s; 60 s only bounds the wait.
	polls := 0
	for alive(pid) {
		if n[1].holds(t, ctx) || !n[0].holds(t, ctx) {
			t.Fatal("n2 took the VIP while n1's notify action hung: n1's adverts stopped")
		}
		polls++
		if time.Since(hangStart) > 60*time.Second {
			t.Fatal("the hung action was not killed at its deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	hangEnd := time.Now()
	if polls < 3 {
		t.Errorf("the hang lasted %d polls only: the deadline came early or the test did not watch", polls)
	}
	if capture != nil {
		// VI_1's adverts while its action hung: no gap, counting from the start of the hang
		// to its end, as long as half the deadline. A sender blocked by the action leaves a
		// gap of the whole deadline (10 s); a loaded machine delays adverts (every 1 s) by far
		// less.
		time.Sleep(2 * time.Second) // the last ones reach tshark's output
		times := []float64{float64(hangStart.UnixNano()) / 1e9}
		for _, l := range strings.Split(capture.Output(), "\n") {
			f := strings.Split(l, "\t")
			var at float64
			if len(f) != 2 || f[1] != "51" {
				continue
			}
			if _, err := fmt.Sscan(f[0], &at); err != nil {
				continue
			}
			if at >= times[0] && at <= float64(hangEnd.UnixNano())/1e9 {
				times = append(times, at)
			}
		}
		times = append(times, float64(hangEnd.UnixNano())/1e9)
		maxGap := 0.0
		for i := 1; i < len(times); i++ {
			maxGap = max(maxGap, times[i]-times[i-1])
		}
		t.Logf("%d adverts of VI_1 during the %s hang, largest gap %.3fs (advert_int 1)", len(times)-2, hangEnd.Sub(hangStart).Round(time.Millisecond), maxGap)
		if maxGap >= 5 {
			t.Errorf("no advert of VI_1 for %.3fs while the notify action hung", maxGap)
		}
	}
	st2 := n[1].status(t)
	if len(st2.Instances) != 1 {
		t.Fatalf("n2's status: %+v", st2.Instances)
	}
	for _, st := range st2.Instances {
		if st.State != "BACKUP" {
			t.Errorf("n2's %s is %s, want BACKUP throughout", st.Name, st.State)
		}
	}
	waitFor(t, 30*time.Second, "n1's log of the cancelled call", func() bool {
		return strings.Contains(n[0].proc.Output(), "passed its deadline and was cancelled")
	})
}

// TestNotifyMasterRxLowerPri: when a split brain heals, the master that stays hears the other
// one's lower priority advert and runs notify_master_rx_lower_pri (cloud users re-assert a
// floating address there); the one that steps down does not, and the staying master's state
// does not change.
func TestNotifyMasterRxLowerPri(t *testing.T) {
	ctx, n := newLab(t, 2)
	dir := n[0].dir
	for i, prio := range []int{150, 100} {
		out := filepath.Join(dir, fmt.Sprintf("rx-%d", i))
		script := filepath.Join(dir, fmt.Sprintf("rx-%d.sh", i))
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho heard >> "+out+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		// dont_track_primary: cutting the node off the bridge takes its carrier away, which
		// would otherwise be a fault, not the split brain this test wants.
		n[i].start(t, strings.Replace(conf(prio, ""), "    virtual_ipaddress {", "    dont_track_primary\n    notify_master_rx_lower_pri "+script+"\n    virtual_ipaddress {", 1))
	}
	heard := func(i int) int {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rx-%d", i)))
		return strings.Count(string(b), "heard")
	}
	waitFor(t, 15*time.Second, "node 0 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	time.Sleep(time.Second)
	if err := n[0].Cut(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 1 takes over during the partition", func() bool { return n[1].holds(t, ctx) })
	time.Sleep(500 * time.Millisecond)
	changes0 := strings.Count(n[0].proc.Output(), "state change:")
	// The heal, first one way: node 0 hears node 1's adverts, node 1 not yet node 0's.
	// Healed both ways at once, whichever advert crossed first decided the test: node 1,
	// hearing node 0 first, steps down without sending node 0 a lower priority to hear
	// (as keepalived's would), which a loaded machine made the common case.
	if err := multicastTo(ctx, n[1].Node, false); err != nil {
		t.Fatal(err)
	}
	if err := n[0].Cut(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 0 runs notify_master_rx_lower_pri", func() bool { return heard(0) > 0 })
	if !n[1].holds(t, ctx) {
		t.Fatal("node 1 stepped down while it could not hear node 0: the one-way heal let node 0's adverts through")
	}
	if err := multicastTo(ctx, n[1].Node, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 1 steps down after the heal", func() bool { return !n[1].holds(t, ctx) })
	time.Sleep(time.Second)
	if heard(1) != 0 {
		t.Errorf("node 1, which stepped down, ran notify_master_rx_lower_pri %d times", heard(1))
	}
	if got := strings.Count(n[0].proc.Output(), "state change:"); got != changes0 {
		t.Errorf("node 0 changed state during the heal (%d state changes, want %d)", got, changes0)
	}
	if !n[0].holds(t, ctx) {
		t.Error("node 0 lost the VIP")
	}
	t.Logf("node 0 ran notify_master_rx_lower_pri %d times", heard(0))
}

// multicastTo lets the lab's bridge flood multicast (the VRRP adverts) to nd, or stops it:
// nd then hears no advert while its own still reach the others.
func multicastTo(ctx context.Context, nd *lab.Node, on bool) error {
	sw := strings.TrimSuffix(nd.NS, "-"+nd.Name) + "-sw"
	port := "p" + strings.TrimPrefix(nd.Name, "n")
	flag := map[bool]string{true: "on", false: "off"}[on]
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", sw, "bridge", "link", "set", "dev", port, "mcast_flood", flag).CombinedOutput(); err != nil {
		return fmt.Errorf("bridge link set dev %s mcast_flood %s in %s: %w: %s", port, flag, sw, err, out)
	}
	return nil
}
