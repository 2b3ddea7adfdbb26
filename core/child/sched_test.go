package child

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/config"
)

// schedHelper names the case a re-executed test binary runs: scheduling changes the whole
// process, so each case runs in a process of its own.
const schedHelper = "VIGIL_SCHED_HELPER"

func TestMain(m *testing.M) {
	if c := os.Getenv(schedHelper); c != "" {
		os.Exit(runSchedHelper(c))
	}
	os.Exit(m.Run())
}

// runSched runs case c in a fresh test binary, with env added to its environment, and
// returns its output.
func runSched(t *testing.T, c string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), schedHelper+"="+c)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", c, err, out)
	}
	return string(out)
}

// churnThreads keeps the runtime creating and ending threads until stop is closed: each
// goroutine locks itself to a thread, sleeps in a system call (so the runtime needs another
// thread for the rest) and ends locked, which ends its thread.
func churnThreads(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
					unix.Nanosleep(&unix.Timespec{Nsec: 2e6}, nil)
					close(done)
				}()
				<-done
			}
		}()
	}
	return &wg
}

// threadsWhere lists the threads of this process whose scheduling bad reports, with it.
// A thread that ended meanwhile is left out.
func threadsWhere(bad func(cur *unix.SchedAttr) bool) []string {
	tids, err := threadIDs()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, tid := range tids {
		cur, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended
		}
		if bad(cur) {
			out = append(out, fmt.Sprintf("tid %d: policy %d priority %d nice %d flags %#x", tid, cur.Policy, cur.Priority, cur.Nice, cur.Flags))
		}
	}
	return out
}

// everyThread reports the threads of this process that do not match want.
func everyThread(want unix.SchedAttr) []string {
	return threadsWhere(func(cur *unix.SchedAttr) bool { return !sameScheduling(cur, &want) })
}

// everyThreadOrdinary lists the threads that are not back at SCHED_OTHER and the nice value
// the process started with (base: 0, or what `nice go test` gave it), after an undo. The
// reset-on-fork flag is not asked for: the kernel clears it in a thread created from one
// that has it, so a thread the runtime starts after the undo lacks it, and with nothing
// privileged left there is nothing for it to reset.
func everyThreadOrdinary(base int32) []string {
	return threadsWhere(func(cur *unix.SchedAttr) bool { return cur.Policy != unix.SCHED_NORMAL || cur.Nice != base })
}

// threadsAt lists the threads whose nice value is nice.
func threadsAt(nice int32) []string {
	return threadsWhere(func(cur *unix.SchedAttr) bool { return cur.Nice == nice })
}

func runSchedHelper(c string) int {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: &logs, mu: &mu}, Level: hclog.Debug})
	var base int32 // the nice value this process started with, which an undo goes back to
	if cur, err := unix.SchedGetAttr(0, 0); err == nil {
		base = cur.Nice
	}
	switch c {
	case "threads":
		// Threads come and go while every thread is set; afterwards, and while they keep
		// coming, every thread has the settings (new ones inherit them).
		stop := make(chan struct{})
		wg := churnThreads(stop)
		time.Sleep(50 * time.Millisecond)
		want := unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: 7} // raising nice needs no privilege
		n, err := setAllThreads(want)
		if err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		created := 0
		for range 20 {
			if bad := everyThread(want); len(bad) > 0 {
				fmt.Println("FAIL", strings.Join(bad, "; "))
				return 1
			}
			created++
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		fmt.Println("OK changed", n, "checks", created)
	case "refused":
		// Without CAP_SYS_NICE and RLIMIT_RTPRIO the kernel refuses SCHED_RR: the refusal is
		// logged with the keyword's place, and the nice value is applied instead.
		if err := unix.Prlimit(0, unix.RLIMIT_RTPRIO, &unix.Rlimit{}, nil); err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		// As nobody the process has no capability left (Go changes every thread's ids).
		if !becomeNobody() {
			return 0
		}
		s := newScheduling(log, "vrrp", false)
		s.apply(config.Process{Nice: 5, RTPriority: 50, RLimitRTTime: 10000,
			Places: map[string]config.Pos{"vrrp_rt_priority": {File: "k.conf", Line: 3, Col: 5}}})
		mu.Lock()
		out := logs.String()
		mu.Unlock()
		if bad := everyThread(unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: 5}); len(bad) > 0 {
			fmt.Println("FAIL", strings.Join(bad, "; "), out)
			return 1
		}
		if !strings.Contains(out, "vrrp_rt_priority not applied: the kernel refused SCHED_RR: place=k.conf:3:5") ||
			!strings.Contains(out, "nice value set") {
			fmt.Println("FAIL log:", out)
			return 1
		}
		fmt.Println("OK")
	case "rr":
		// As root: SCHED_RR with reset-on-fork for a process that starts programs; threads
		// that the runtime creates later lose it, and watchThreads sets them again.
		s := newScheduling(log, "checker", true)
		stop := make(chan struct{})
		wg := churnThreads(stop)
		s.apply(config.Process{RTPriority: 1, RLimitRTTime: 10000})
		want := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		close(stop)
		wg.Wait()
		// No more churn: within a few of watchThreads' passes every thread is set.
		deadline := time.Now().Add(10 * time.Second)
		for bad := everyThread(want); len(bad) > 0; bad = everyThread(want) {
			if time.Now().After(deadline) {
				fmt.Println("FAIL", strings.Join(bad, "; "))
				return 1
			}
			time.Sleep(50 * time.Millisecond)
		}
		var lim unix.Rlimit
		unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &lim)
		if lim.Cur != 5000 || lim.Max != unix.RLIM_INFINITY {
			fmt.Printf("FAIL RLIMIT_RTTIME %d/%d, want a soft limit of 5000 and no hard limit\n", lim.Cur, lim.Max)
			return 1
		}
		// A reload without the keyword puts every thread back to SCHED_OTHER at nice 0.
		s.apply(config.Process{RLimitRTTime: 10000})
		if bad := everyThreadOrdinary(base); len(bad) > 0 {
			fmt.Println("FAIL after reset:", strings.Join(bad, "; "))
			return 1
		}
		unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &lim)
		if lim.Cur != unix.RLIM_INFINITY {
			fmt.Printf("FAIL RLIMIT_RTTIME not restored: %d\n", lim.Cur)
			return 1
		}
		fmt.Println("OK")
	case "undo":
		// A positive nice value and its undo: watchThreads runs while it is applied and ends
		// with it, current no longer asks for CAP_SYS_NICE, and stop ends watchThreads too.
		s := newScheduling(log, "checker", true)
		s.apply(config.Process{Nice: 5})
		if !started("watchThreads") || s.current().Nice == 0 {
			fmt.Println("FAIL after checker_priority 5: watchThreads", running("watchThreads"), "current", s.current())
			return 1
		}
		s.apply(config.Process{})
		if bad := everyThreadOrdinary(base); len(bad) > 0 {
			fmt.Println("FAIL after undo:", strings.Join(bad, "; "))
			return 1
		}
		if c := s.current(); c.Nice != 0 || c.RTPriority != 0 || c.NoSwap {
			fmt.Printf("FAIL current after undo: %+v, want nothing left to undo\n", c)
			return 1
		}
		if !gone("watchThreads") {
			fmt.Println("FAIL watchThreads still runs after the undo")
			return 1
		}
		s.apply(config.Process{Nice: 5})
		if !started("watchThreads") {
			fmt.Println("FAIL watchThreads not started again")
			return 1
		}
		s.stop()
		if !gone("watchThreads") {
			fmt.Println("FAIL watchThreads still runs after stop")
			return 1
		}
		// A reload that reaches the process after stop (the two race at shutdown) changes
		// nothing and starts nothing.
		// (Threads the runtime creates after stop have nice 0, reset on fork: only nice 6
		// would be apply's doing.)
		s.apply(config.Process{Nice: 6})
		if n := len(threadsAt(6)); n > 0 || running("watchThreads") {
			fmt.Println("FAIL apply after stop: threads at nice 6:", n, "watchThreads running:", running("watchThreads"))
			return 1
		}
		fmt.Println("OK")
	case "undo-late":
		// An undo refused part-way leaves the settings from before as watchThreads' target
		// (setThreads); once a pass gives every thread that target, the undo is done:
		// nothing is left to undo, no capability is asked for it, and the watch ends.
		s := newScheduling(log, "checker", false)
		cur, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		before := unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: cur.Nice}
		s.mu.Lock()
		s.applied, s.orig = true, int(cur.Nice)
		s.target, s.mixed, s.undoing = &before, true, true
		s.watch = make(chan struct{})
		go s.watchThreads(20*time.Millisecond, s.watch)
		s.mu.Unlock()
		// Waited for by its effect: on a busy machine the watch may not have started yet
		// when this looks (it then looked gone, and the undo not done).
		for deadline := time.Now().Add(10 * time.Second); s.current().Nice != 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				fmt.Printf("FAIL current 10 s after the late undo began: %+v, want nothing left to undo\n", s.current())
				return 1
			}
		}
		if !gone("watchThreads") {
			fmt.Println("FAIL watchThreads still runs after a pass that finished the undo")
			return 1
		}
		fmt.Println("OK")
	case "xcpu":
		// As root: a real-time thread that runs past the soft RLIMIT_RTTIME gets SIGXCPU, and
		// the kernel raises the soft limit by a second; vigil leaves it raised (no signal at
		// every tick), sets it again at the next apply, and ends warnXCPU with the priority.
		s := newScheduling(log, "vrrp", false)
		p := config.Process{RTPriority: 1, RLimitRTTime: 2000}
		s.apply(p)
		done := make(chan error)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1}, 0); err != nil {
				done <- err
				return
			}
			// 200 ms without a system call (GODEBUG=asyncpreemptoff=1: no preemption either).
			for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
			}
			done <- nil
		}()
		if err := <-done; err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			out := logs.String()
			mu.Unlock()
			if strings.Contains(out, "SIGXCPU") {
				break
			}
			if time.Now().After(deadline) {
				fmt.Println("FAIL no SIGXCPU logged:", out)
				return 1
			}
			time.Sleep(20 * time.Millisecond)
		}
		var lim unix.Rlimit
		unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &lim)
		if lim.Cur <= 1000 {
			fmt.Printf("FAIL RLIMIT_RTTIME set back to %d after SIGXCPU: a thread that keeps running gets one at every tick\n", lim.Cur)
			return 1
		}
		s.apply(p)
		unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &lim)
		if lim.Cur != 1000 {
			fmt.Printf("FAIL RLIMIT_RTTIME %d after apply, want 1000 again\n", lim.Cur)
			return 1
		}
		s.apply(config.Process{})
		if !gone("warnXCPU") {
			fmt.Println("FAIL warnXCPU still runs without vrrp_rt_priority")
			return 1
		}
		fmt.Println("OK")
	case "memlock":
		// Without CAP_IPC_LOCK but under a large finite RLIMIT_MEMLOCK mlockall succeeds, and
		// the runtime would die at the limit later: vigil does not lock, and says why.
		big := uint64(1) << 40
		if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: big, Max: big}, nil); err != nil {
			fmt.Println("SKIP cannot raise RLIMIT_MEMLOCK here (no CAP_SYS_RESOURCE?):", err)
			return 0
		}
		if !becomeNobody() {
			return 0
		}
		s := newScheduling(log, "vrrp", false)
		s.apply(config.Process{NoSwap: true, Places: map[string]config.Pos{"vrrp_no_swap": {File: "k.conf", Line: 4, Col: 5}}})
		mu.Lock()
		out := logs.String()
		mu.Unlock()
		st, _ := os.ReadFile("/proc/self/status")
		if s.current().NoSwap || !strings.Contains(string(st), "VmLck:\t       0 kB") {
			fmt.Println("FAIL memory locked without CAP_IPC_LOCK under a finite RLIMIT_MEMLOCK:", out)
			return 1
		}
		if !strings.Contains(out, "vrrp_no_swap not applied: memory not locked: place=k.conf:4:5") {
			fmt.Println("FAIL log:", out)
			return 1
		}
		fmt.Println("OK")
	case "mixed":
		// Without CAP_SYS_NICE, a thread in SCHED_IDLE stays there (RLIMIT_NICE 0), so a
		// nice value is refused part-way: the threads set before keep it, and that is said,
		// and retried. (Threads left SCHED_RR after a refused real-time priority take the
		// same way.)
		if err := unix.Prlimit(0, unix.RLIMIT_NICE, &unix.Rlimit{}, nil); err != nil {
			fmt.Println("FAIL", err)
			return 1
		}
		// The idle thread must not be the first that setAllThreads reaches: goroutines lock
		// threads (kept so) until one is not.
		idle := make(chan error)
		for range 5 {
			go func() {
				runtime.LockOSThread() // never unlocked: the thread stays as it is
				if tids := mustThreads(); len(tids) > 0 && tids[0] == unix.Gettid() {
					idle <- nil
					select {}
				}
				idle <- unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0)
				select {}
			}()
			if err := <-idle; err != nil {
				fmt.Println("SKIP SCHED_IDLE:", err)
				return 0
			}
			if len(everyThread(unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: base})) > 0 { // the idle thread is in
				break
			}
		}
		if !becomeNobody() {
			return 0
		}
		s := newScheduling(log, "vrrp", false)
		s.apply(config.Process{Nice: 5})
		mu.Lock()
		out := logs.String()
		mu.Unlock()
		if len(everyThread(unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: 5})) == len(mustThreads()) {
			fmt.Println("SKIP no thread took nice 5 before the refusal:", out)
			return 0
		}
		s.mu.Lock()
		target, watch := s.target, s.watch
		s.mu.Unlock()
		if !strings.Contains(out, "threads left with mixed scheduling") || target == nil || watch == nil {
			fmt.Println("FAIL threads left mixed without a word or a retry:", out)
			return 1
		}
		fmt.Println("OK")
	default:
		fmt.Println("FAIL unknown case", c)
		return 1
	}
	return 0
}

// becomeNobody drops the helper process to user and group nobody, which leaves it no
// capability (Go changes every thread's ids). When it cannot, it prints SKIP and says so.
func becomeNobody() bool {
	if err := syscall.Setgid(65534); err != nil {
		fmt.Println("SKIP", err)
		return false
	}
	if err := syscall.Setuid(65534); err != nil {
		fmt.Println("SKIP", err)
		return false
	}
	return true
}

func mustThreads() []int {
	tids, _ := threadIDs()
	return tids
}

// running reports whether a goroutine runs the scheduling method fn.
func running(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*scheduling)."+fn)
}

// started waits for a goroutine running fn, 10 s at most (a failure bound): one just
// created may not be in runtime.Stack's list yet.
func started(fn string) bool {
	for deadline := time.Now().Add(10 * time.Second); !running(fn); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// gone waits for the goroutines running fn to end, 10 s at most (a failure bound).
func gone(fn string) bool {
	for deadline := time.Now().Add(10 * time.Second); running(fn); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSetAllThreads: every thread gets the settings, those created while the passes run
// included (a thread made by one not yet set inherits the old ones: a later pass finds it).
func TestSetAllThreads(t *testing.T) {
	out := runSched(t, "threads")
	t.Log(strings.TrimSpace(out))
	if !strings.HasPrefix(out, "OK") {
		t.Error(out)
	}
}

// TestRefusedRealTimeFallsBackToNice: a kernel that refuses SCHED_RR does not stop the
// process; the refusal names the keyword and its place, and vrrp_priority applies.
func TestRefusedRealTimeFallsBackToNice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test becomes nobody to make the kernel refuse SCHED_RR")
	}
	out := runSched(t, "refused")
	t.Log(strings.TrimSpace(out))
	if strings.HasPrefix(out, "SKIP") {
		t.Skipf("cannot become nobody here: %s", out)
	}
	if !strings.HasPrefix(out, "OK") {
		t.Error(out)
	}
}

// TestRealTimeEveryThread: SCHED_RR with reset-on-fork on every thread, new ones set again
// by watchThreads; RLIMIT_RTTIME's soft limit at half of the setting and no hard limit; a
// reload without the keyword undoes both.
func TestRealTimeEveryThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE) for SCHED_RR")
	}
	if err := exec.Command("chrt", "-r", "1", "true").Run(); err != nil {
		t.Skipf("the kernel refuses SCHED_RR here (a cgroup without real-time runtime?): %v", err)
	}
	out := runSched(t, "rr")
	t.Log(strings.TrimSpace(out))
	if !strings.HasPrefix(out, "OK") {
		t.Error(out)
	}
}

// TestPriorityCaps: any nice value needs CAP_SYS_NICE, a positive one to go back to 0
// (RLIMIT_NICE is 0); a real-time priority too; *_no_swap needs CAP_IPC_LOCK.
func TestPriorityCaps(t *testing.T) {
	for _, c := range []struct {
		p    config.Process
		want []int
	}{
		{config.Process{}, nil},
		{config.Process{Nice: 5}, []int{unix.CAP_SYS_NICE}},
		{config.Process{Nice: -5}, []int{unix.CAP_SYS_NICE}},
		{config.Process{RTPriority: 1}, []int{unix.CAP_SYS_NICE}},
		{config.Process{NoSwap: true}, []int{unix.CAP_IPC_LOCK}},
	} {
		if got := PriorityCaps(c.p); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("PriorityCaps(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
}

// runSchedCase runs a helper case that needs root and reads its verdict.
func runSchedCase(t *testing.T, c string, env ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	out := runSched(t, c, env...)
	t.Log(strings.TrimSpace(out))
	if strings.HasPrefix(out, "SKIP") {
		t.Skip(out)
	}
	if !strings.HasPrefix(out, "OK") {
		t.Error(out)
	}
}

// TestUndoNice: a reload that removes a positive nice value undoes it; nothing is then left
// to undo (the check process drops CAP_SYS_NICE), and watchThreads ends with it and at stop.
func TestUndoNice(t *testing.T) { runSchedCase(t, "undo") }

// TestUndoFinishedByWatch: an undo that a later pass of watchThreads completes leaves
// nothing to undo, as one that succeeded at once.
func TestUndoFinishedByWatch(t *testing.T) { runSchedCase(t, "undo-late") }

// TestStopWatchForgetsFailure: a watch that warned of a failure and was stopped leaves no
// warning state for the next one, which warns of its own first failure.
func TestStopWatchForgetsFailure(t *testing.T) {
	s := newScheduling(hclog.NewNullLogger(), "checker", true)
	s.watch, s.watchFail = make(chan struct{}), true
	s.stopWatch()
	if s.watch != nil || s.watchFail {
		t.Fatalf("after stopWatch: watch %v, watchFail %v; want nil, false", s.watch, s.watchFail)
	}
}

// TestNoSwapNeedsCapability: under a large finite RLIMIT_MEMLOCK and without CAP_IPC_LOCK,
// *_no_swap is refused with a warning instead of a lock that would end the process later.
func TestNoSwapNeedsCapability(t *testing.T) { runSchedCase(t, "memlock") }

// TestMixedScheduling: threads left with different settings by a refusal part-way are
// reported and set again.
func TestMixedScheduling(t *testing.T) { runSchedCase(t, "mixed") }

// TestSIGXCPUSpacing: after SIGXCPU the soft RLIMIT_RTTIME stays as the kernel raised it,
// until the next apply.
func TestSIGXCPUSpacing(t *testing.T) {
	if err := exec.Command("chrt", "-r", "1", "true").Run(); err != nil {
		t.Skipf("the kernel refuses SCHED_RR here: %v", err)
	}
	runSchedCase(t, "xcpu", "GODEBUG=asyncpreemptoff=1")
}
