package supervisor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadSched is what /proc/PID/task/TID/stat and sched_getattr say of one thread.
type threadSched struct {
	tid         int
	nice        int
	rtPriority  int
	policy      int
	resetOnFork bool
}

func (s threadSched) String() string {
	return fmt.Sprintf("tid %d: policy %d rt_priority %d nice %d reset_on_fork %v", s.tid, s.policy, s.rtPriority, s.nice, s.resetOnFork)
}

// statSched reads nice (field 19), rt_priority (40) and policy (41) of /proc/.../stat; the
// fields are counted after the command name, which may hold blanks and parentheses.
func statSched(path string) (threadSched, error) {
	var s threadSched
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b)[i+1:]) // f[0] is field 3
	if len(f) < 39 {
		return s, fmt.Errorf("%s: %d fields", path, len(f)+2)
	}
	s.nice, _ = strconv.Atoi(f[19-3])
	s.rtPriority, _ = strconv.Atoi(f[40-3])
	s.policy, _ = strconv.Atoi(f[41-3])
	return s, nil
}

// threadsOf reads every thread of pid: /proc for nice, policy and priority, sched_getattr
// for SCHED_RESET_ON_FORK, which /proc does not show.
func threadsOf(t *testing.T, pid int) []threadSched {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []threadSched
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		s, err := statSched(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
		if err != nil {
			continue // the thread ended meanwhile
		}
		s.tid = tid
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue
		}
		s.resetOnFork = attr.Flags&unix.SCHED_FLAG_RESET_ON_FORK != 0
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatalf("no threads read for pid %d", pid)
	}
	return out
}

// probeScript writes the stat line of the shell that runs it to out: the scheduling that a
// script started by vigil gets.
func probeScript(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := fmt.Sprintf("#!/bin/sh\ncat /proc/$$/stat > %s.tmp && mv %s.tmp %s\nexit 0\n", out, out, out)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func schedConf(globals, chk, notify string) string {
	return fmt.Sprintf(`global_defs {
%s}
vrrp_script chk {
    script "%s"
    interval 0.5
    timeout 10
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.2
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
    notify_master "%s"
}
`, globals, chk, notify)
}

// TestProcessPriorities runs the daemon with keepalived's process priority keywords and
// reads, for every thread of the vrrp and check processes, what the kernel says: with
// vrrp_rt_priority 50 all are SCHED_RR at 50 (the check process's with SCHED_RESET_ON_FORK,
// see core/child's scheduling), and the nice value of
// vrrp_priority -10 is left alone, as keepalived 2.2.7 leaves it (its VRRP process reads nice
// 0 beside SCHED_RR 50 on the same file); a script started by the check process and a notify
// script run SCHED_OTHER at nice 0. Without a real-time priority vrrp_priority -10 sets nice
// -10 on every thread, and a reload that removes it puts back nice 0. *_no_swap locks the
// processes' memory; a reload without checker_no_swap unlocks the check process's.
func TestProcessPriorities(t *testing.T) {
	ctx, n := newLab(t, 1)
	dir := n[0].dir
	chkOut, notifyOut := filepath.Join(dir, "chk.stat"), filepath.Join(dir, "notify.stat")
	chk := probeScript(t, dir, "chk.sh", chkOut)
	notify := probeScript(t, dir, "notify.sh", notifyOut)

	// A limit of 1 s (vigil warns at half of it, 500 ms, by SIGXCPU): with the default 10 ms
	// (5 ms) the garbage collector or a reload on a loaded machine may send one, and the log
	// must hold none.
	n[0].start(t, schedConf(`    vrrp_priority -10
    vrrp_rt_priority 50
    vrrp_rlimit_rttime 1000000
    checker_priority -5
    checker_rt_priority 40
    checker_rlimit_rttime 1000000
    vrrp_no_swap
    checker_no_swap
`, chk, notify))
	waitFor(t, 15*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	var vrrpPID, checkPID int
	waitFor(t, 5*time.Second, "children running", func() bool {
		vrrpPID, checkPID = n[0].childPID(t, "vrrp"), n[0].childPID(t, "check")
		return vrrpPID != 0 && checkPID != 0
	})
	waitFor(t, 10*time.Second, "scripts ran", func() bool {
		_, e1 := os.Stat(chkOut)
		_, e2 := os.Stat(notifyOut)
		return e1 == nil && e2 == nil
	})
	if strings.Contains(n[0].proc.Output(), "the kernel refused SCHED_RR") {
		// vigil carries on with the nice value instead; that much must hold.
		for _, th := range threadsOf(t, vrrpPID) {
			if th.nice != -10 || th.policy != unix.SCHED_NORMAL {
				t.Errorf("vrrp child after SCHED_RR was refused: %s, want SCHED_OTHER at nice -10", th)
			}
		}
		t.Skipf("the kernel refused SCHED_RR here (no CAP_SYS_NICE, or a cgroup without real-time runtime); vigil logged it and applied vrrp_priority:\n%s", n[0].proc.Output())
	}
	// The vrrp process starts no program: its threads go without SCHED_RESET_ON_FORK, so that
	// new ones inherit SCHED_RR. The check process starts scripts and plugins: its threads
	// carry the flag, and those the runtime creates later are set within a second.
	for _, c := range []struct {
		role  string
		pid   int
		prio  int
		reset bool
	}{{"vrrp", vrrpPID, 50, false}, {"check", checkPID, 40, true}} {
		ok := func(th threadSched) bool {
			return th.policy == unix.SCHED_RR && th.rtPriority == c.prio && th.resetOnFork == c.reset && th.nice == 0
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			bad := 0
			for _, th := range threadsOf(t, c.pid) {
				if !ok(th) {
					bad++
				}
			}
			if bad == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		ths := threadsOf(t, c.pid)
		for _, th := range ths {
			t.Logf("%s child %d %s", c.role, c.pid, th)
			if !ok(th) {
				t.Errorf("%s child thread %s; want SCHED_RR (2) at %d, reset_on_fork %v, nice 0", c.role, th, c.prio, c.reset)
			}
		}
		t.Logf("%s child: %d threads", c.role, len(ths))
	}
	for _, out := range []string{chkOut, notifyOut} {
		s, err := statSched(out)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: policy %d rt_priority %d nice %d", filepath.Base(out), s.policy, s.rtPriority, s.nice)
		if s.policy != unix.SCHED_NORMAL || s.rtPriority != 0 || s.nice != 0 {
			t.Errorf("%s: policy %d rt_priority %d nice %d; want SCHED_OTHER (0), 0, nice 0", out, s.policy, s.rtPriority, s.nice)
		}
	}
	// The vrrp child keeps CAP_SYS_NICE (bit 23) and CAP_IPC_LOCK (14) beside its network
	// capabilities, for reloads; vrrp_no_swap locked its pages (as they are touched: VmLck
	// follows VmRSS instead of the runtime's reservations).
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", vrrpPID))
	if err != nil || !strings.Contains(string(b), "CapEff:\t0000000000807000") {
		t.Errorf("vrrp child capabilities, want CapEff 0x807000:\n%s", b)
	}
	if v := vmLck(t, checkPID); v == "0" {
		t.Error("checker_no_swap: nothing locked in the check child")
	}
	var vm []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "VmLck:" || f[0] == "VmRSS:" || f[0] == "VmSize:") {
			vm = append(vm, line)
			if f[0] == "VmLck:" && f[1] == "0" {
				t.Errorf("vrrp_no_swap: nothing locked: %s", line)
			}
		}
	}
	t.Logf("vrrp child memory: %s", strings.Join(vm, "; "))

	// Without a real-time priority: nice -10 on every thread, reset on fork.
	path := filepath.Join(dir, n[0].Name+".conf")
	os.Remove(chkOut)
	writeReload := func(globals string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(schedConf(globals, chk, notify)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := n[0].Exec(ctx, vigilBin, "reload", "--control", n[0].sock()); err != nil {
			t.Fatalf("vigil reload: %v\n%s", err, out)
		}
	}
	writeReload("    vrrp_priority -10\n    checker_priority -5\n")
	want := func(what string, pid, nice int) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool {
			for _, th := range threadsOf(t, pid) {
				if th.policy != unix.SCHED_NORMAL || th.nice != nice || th.resetOnFork != (pid == checkPID) {
					return false
				}
			}
			return true
		})
		for _, th := range threadsOf(t, pid) {
			t.Logf("%s: %s", what, th)
		}
	}
	want("vrrp child at nice -10 after the reload", vrrpPID, -10)
	want("check child at nice -5 after the reload", checkPID, -5)
	waitFor(t, 10*time.Second, "script ran again", func() bool { _, err := os.Stat(chkOut); return err == nil })
	// checker_no_swap is gone: the check child unlocked its memory, and lives on (had it
	// lost CAP_IPC_LOCK while locked, the runtime's next mapping would have failed).
	if v := vmLck(t, checkPID); v != "0" {
		t.Errorf("check child VmLck %s kB after a reload without checker_no_swap", v)
	}
	if p := n[0].childPID(t, "check"); p != checkPID {
		t.Errorf("check child restarted (%d -> %d)", checkPID, p)
	}
	if s, err := statSched(chkOut); err != nil || s.policy != unix.SCHED_NORMAL || s.nice != 0 {
		t.Errorf("script of the check child at nice -5: %+v %v; want SCHED_OTHER at nice 0", s, err)
	}

	// A reload without the keywords puts back what the threads had before.
	writeReload("")
	want("vrrp child back at nice 0", vrrpPID, 0)
	want("check child back at nice 0", checkPID, 0)
	if p := n[0].childPID(t, "vrrp"); p != vrrpPID {
		t.Errorf("vrrp child restarted (%d -> %d)", vrrpPID, p)
	}
	if out := n[0].proc.Output(); strings.Contains(out, "not applied") || strings.Contains(out, "SIGXCPU") {
		t.Errorf("warnings in the log:\n%s", out)
	}
	if !n[0].holds(t, ctx) {
		t.Error("n1 lost the VIP")
	}
}

// TestPositivePriorityUndone: a reload that removes a positive vrrp_priority and
// checker_priority puts every thread of both processes back to nice 0. That raises the
// priority, which needs CAP_SYS_NICE (RLIMIT_NICE is 0): the children keep it when the file
// they start with sets any nice value, not only a negative one. (Core's own bounding set is
// root's whole here: the scripts run as root.)
func TestPositivePriorityUndone(t *testing.T) {
	ctx, n := newLab(t, 1)
	dir := n[0].dir
	chk := probeScript(t, dir, "chk.sh", filepath.Join(dir, "chk.stat"))
	notify := probeScript(t, dir, "notify.sh", filepath.Join(dir, "notify.stat"))
	n[0].start(t, schedConf("    vrrp_priority 5\n    checker_priority 5\n", chk, notify))
	var vrrpPID, checkPID int
	waitFor(t, 15*time.Second, "children running", func() bool {
		vrrpPID, checkPID = n[0].childPID(t, "vrrp"), n[0].childPID(t, "check")
		return vrrpPID != 0 && checkPID != 0
	})
	want := func(what string, pid, nice int) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool {
			for _, th := range threadsOf(t, pid) {
				if th.policy != unix.SCHED_NORMAL || th.nice != nice {
					return false
				}
			}
			return true
		})
	}
	want("vrrp child at nice 5", vrrpPID, 5)
	want("check child at nice 5", checkPID, 5)
	if err := os.WriteFile(filepath.Join(dir, n[0].Name+".conf"), []byte(schedConf("", chk, notify)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n[0].Exec(ctx, vigilBin, "reload", "--control", n[0].sock()); err != nil {
		t.Fatalf("vigil reload: %v\n%s", err, out)
	}
	want("vrrp child back at nice 0", vrrpPID, 0)
	want("check child back at nice 0", checkPID, 0)
	if out := n[0].proc.Output(); strings.Contains(out, "not reset") || strings.Contains(out, "mixed") {
		t.Errorf("warnings in the log:\n%s", out)
	}
}

// TestProcessPrioritiesKeepalived runs keepalived 2.2.7 on the files of TestProcessPriorities
// and reads its VRRP process, the judge of what vigil's vrrp process shows there: with
// vrrp_rt_priority 50 and vrrp_priority -10 it is SCHED_RR at 50 with SCHED_RESET_ON_FORK
// and nice 0 (the nice value is not applied beside a real-time priority); with
// vrrp_priority -10 alone, nice -10. Its vrrp_script (run by its VRRP process) runs
// SCHED_OTHER at nice 0.
func TestProcessPrioritiesKeepalived(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived is not installed")
	}
	_, n := newLab(t, 1)
	dir := n[0].dir
	for i, c := range []struct {
		globals      string
		policy, prio int
		nice         int
		resetOnFork  bool
	}{
		{"    vrrp_priority -10\n    vrrp_rt_priority 50\n", unix.SCHED_RR, 50, 0, true},
		{"    vrrp_priority -10\n", unix.SCHED_NORMAL, 0, -10, false},
	} {
		chkOut := filepath.Join(dir, fmt.Sprintf("ka-chk-%d.stat", i))
		chk := probeScript(t, dir, fmt.Sprintf("ka-chk-%d.sh", i), chkOut)
		notify := probeScript(t, dir, fmt.Sprintf("ka-notify-%d.sh", i), filepath.Join(dir, fmt.Sprintf("ka-notify-%d.stat", i)))
		base := filepath.Join(dir, fmt.Sprintf("ka-%d", i))
		if err := os.WriteFile(base+".conf", []byte(schedConf(c.globals, chk, notify)), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := n[0].Start("keepalived", "-n", "-l", "-D", "-P", "-f", base+".conf", "-p", base+".pid", "-r", base+"-vrrp.pid")
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		waitFor(t, 15*time.Second, "keepalived's VRRP process and its script", func() bool {
			b, err := os.ReadFile(base + "-vrrp.pid")
			if err != nil {
				return false
			}
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			_, err = os.Stat(chkOut)
			return pid > 0 && err == nil
		})
		// Its priorities are set once its configuration is read: wait for them.
		waitFor(t, 10*time.Second, "keepalived's VRRP process scheduled", func() bool {
			ths := threadsOf(t, pid)
			return ths[0].policy == c.policy && ths[0].nice == c.nice
		})
		for _, th := range threadsOf(t, pid) {
			t.Logf("keepalived VRRP process (%s): %s", strings.TrimSpace(strings.ReplaceAll(c.globals, "\n", ";")), th)
			if th.policy != c.policy || th.rtPriority != c.prio || th.nice != c.nice || th.resetOnFork != c.resetOnFork {
				t.Errorf("keepalived VRRP thread %s; want policy %d priority %d nice %d reset_on_fork %v", th, c.policy, c.prio, c.nice, c.resetOnFork)
			}
		}
		s, err := statSched(chkOut)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("keepalived's vrrp_script: policy %d rt_priority %d nice %d", s.policy, s.rtPriority, s.nice)
		if s.policy != unix.SCHED_NORMAL || s.nice != 0 {
			t.Errorf("keepalived's vrrp_script: policy %d nice %d", s.policy, s.nice)
		}
		p.Signal(syscall.SIGTERM)
		if err := p.Wait(20 * time.Second); err != nil && !p.Exited() {
			p.Kill()
		}
	}
}

// vmLck is the VmLck figure (kB) of /proc/PID/status.
func vmLck(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmLck:" {
			return f[1]
		}
	}
	return ""
}
