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

// runSched runs case c in a fresh test binary and returns its output.
func runSched(t *testing.T, c string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), schedHelper+"="+c)
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

// everyThread reports the threads of this process that do not match want.
func everyThread(want unix.SchedAttr) []string {
	var bad []string
	tids, err := threadIDs()
	if err != nil {
		return []string{err.Error()}
	}
	for _, tid := range tids {
		cur, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended
		}
		if !sameScheduling(cur, &want) {
			bad = append(bad, fmt.Sprintf("tid %d: policy %d priority %d nice %d flags %#x", tid, cur.Policy, cur.Priority, cur.Nice, cur.Flags))
		}
	}
	return bad
}

func runSchedHelper(c string) int {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: &logs, mu: &mu}, Level: hclog.Debug})
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
		if err := syscall.Setgid(65534); err != nil {
			fmt.Println("SKIP", err)
			return 0
		}
		if err := syscall.Setuid(65534); err != nil {
			fmt.Println("SKIP", err)
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
		if bad := everyThread(unix.SchedAttr{Policy: unix.SCHED_NORMAL, Flags: unix.SCHED_FLAG_RESET_ON_FORK}); len(bad) > 0 {
			fmt.Println("FAIL after reset:", strings.Join(bad, "; "))
			return 1
		}
		unix.Prlimit(0, unix.RLIMIT_RTTIME, nil, &lim)
		if lim.Cur != unix.RLIM_INFINITY {
			fmt.Printf("FAIL RLIMIT_RTTIME not restored: %d\n", lim.Cur)
			return 1
		}
		fmt.Println("OK")
	default:
		fmt.Println("FAIL unknown case", c)
		return 1
	}
	return 0
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
