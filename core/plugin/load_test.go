package plugin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/sdk/check"
)

// These tests reproduce, on this machine, what a saturated one did to a plugin in the IPVS
// benchmark (qemu TCG, load 7, a thousand TCP_CHECKs through one plugin): the plugin got the
// CPU in bursts. Here the bursts are made with SIGSTOP and SIGCONT, which is how a starved
// scheduler looks from outside the process, only more so: a stopped plugin does not even
// wait for a CPU. They assert outcomes (who was killed, which check went down, what was
// answered), never how fast; their bursts are far longer than what they must survive, and
// their bounds generous.

// loadLog is a host logger that keeps its warnings and errors for the test to look into and
// shows them in the test's log.
func loadLog(t *testing.T) (hclog.Logger, *syncBuffer) {
	var buf syncBuffer
	return hclog.New(&hclog.LoggerOptions{Name: "vigil", Output: &teeWriter{&buf, &syncWriter{t: t}}, Level: hclog.Warn}), &buf
}

type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.a.Write(p)
	return w.b.Write(p)
}

// freezer stops the processes pids() names for stop, lets them run for run, and again,
// until Stop; Stop leaves them running.
type freezer struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	longest time.Duration // of the stops, from the first SIGSTOP to the SIGCONT
}

// Longest is the longest stop so far, as it really was: the freezer itself may run late.
func (f *freezer) Longest() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.longest
}

func freeze(pids func() []int, stop, run time.Duration) *freezer {
	f := &freezer{done: make(chan struct{})}
	f.wg.Go(func() {
		stopped := map[int]bool{}
		var since time.Time // the first SIGSTOP of this stop
		cont := func() {
			for pid := range stopped {
				syscall.Kill(pid, syscall.SIGCONT)
			}
			if len(stopped) > 0 {
				f.mu.Lock()
				f.longest = max(f.longest, time.Since(since))
				f.mu.Unlock()
			}
			clear(stopped)
		}
		defer cont()
		for {
			// Stopped for stop: a process that appears meanwhile (a restarted plugin) is
			// stopped as soon as it is seen.
			until := time.Now().Add(stop)
			for time.Now().Before(until) {
				for _, pid := range pids() {
					if !stopped[pid] && syscall.Kill(pid, syscall.SIGSTOP) == nil {
						if len(stopped) == 0 {
							since = time.Now()
						}
						stopped[pid] = true
					}
				}
				select {
				case <-f.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			cont()
			select {
			case <-f.done:
				return
			case <-time.After(run):
			}
		}
	})
	return f
}

func (f *freezer) Stop() {
	close(f.done)
	f.wg.Wait()
}

// testPlugins lists the running vigil-check-test processes this test process started.
func testPlugins() []int {
	var pids []int
	for _, c := range children() {
		f := strings.Fields(c) // pid comm state: the comm is cut to 15 bytes
		if len(f) == 3 && f[1] == "vigil-check-tes" && f[2] != "Z" {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// runChecks runs specs on the scheduler until the returned stop is called, which returns
// every change that was not an initial state.
func runChecks(t *testing.T, specs []checksched.Spec) (stop func() []checksched.Change) {
	changes := make(chan checksched.Change, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		checksched.Run(ctx, specs, changes)
	}()
	var mu sync.Mutex
	var got []checksched.Change
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for c := range changes {
			if !c.Initial {
				mu.Lock()
				got = append(got, c)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(cancel)
	return func() []checksched.Change {
		cancel()
		<-ran
		close(changes)
		<-collected
		return got
	}
}

// plugSpec is the scheduler's spec of a test plugin check, configured on h.
func plugSpec(t *testing.T, h *Host, name, mode string, interval, timeout time.Duration, fall int) checksched.Spec {
	t.Helper()
	spec, err := h.CheckSpec(ctxFor(t, time.Minute), &config.PluginCheck{Name: name, Plugin: "test", Interval: interval, Timeout: timeout,
		Rise: 1, Fall: fall, Params: []config.Param{{Key: "mode", Values: []string{mode}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestSlowPluginNotHung: a plugin that gets the CPU only in bursts (stopped 2.6 s, running
// 0.4 s, four times) is slow, not hung. A check with a short timeout passes its deadline in
// every burst, so the host pings the plugin each time, and a ping (2 s) that starts in a stop
// misses its deadline. The plugin must not be killed, and no probe of the healthy checks
// (timeout 30 s, fall 1) may fail: before the fix the host killed the plugin at the first
// missed ping, failing every probe it had in flight. A stop is well under two pings (what a
// hang verdict takes) even if the freezer runs a second late; if it ran later still, the
// plugin really was frozen for two pings, and a verdict then proves nothing: the test says
// so instead of failing.
func TestSlowPluginNotHung(t *testing.T) {
	const ping = 2 * time.Second
	log, buf := loadLog(t)
	h := newHost(t, Options{PingTimeout: ping, Logger: log})
	specs := []checksched.Spec{plugSpec(t, h, "impatient", "ok", 100*time.Millisecond, 200*time.Millisecond, 1000)}
	for i := range 20 {
		specs = append(specs, plugSpec(t, h, fmt.Sprintf("healthy%d", i), "ok", 100*time.Millisecond, 30*time.Second, 1))
	}
	pid := probeOK(t, h, "healthy0")
	stop := runChecks(t, specs)
	f := freeze(func() []int { return []int{pid} }, 2600*time.Millisecond, 400*time.Millisecond)
	time.Sleep(12 * time.Second) // four bursts
	f.Stop()
	changes := stop()
	var bad []string
	for _, c := range changes {
		// The first answer changes the weight (the plugin reports one): only down counts.
		if strings.HasPrefix(c.Name, "healthy") && !c.Up {
			bad = append(bad, fmt.Sprintf("healthy check went down: %+v", c))
		}
	}
	if pid2 := probeOK(t, h, "healthy0"); pid2 != pid {
		bad = append(bad, fmt.Sprintf("the slow plugin %d was replaced by %d", pid, pid2))
	}
	if strings.Contains(buf.String(), "hung: no answer") {
		bad = append(bad, "the slow plugin was judged hung")
	}
	if len(bad) > 0 && f.Longest() >= pingMisses*ping {
		t.Skipf("inconclusive: the freezer ran late and stopped the plugin for %s, %d pings: %v", f.Longest(), pingMisses, bad)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestRestartUnderLoad: a plugin with 3,000 configurations restarts while every process of it
// gets the CPU only in bursts (stopped 1.5 s, running 0.3 s), with a StartTimeout of 3 s.
// The start and the replay make progress in every burst, so the restart must succeed with
// every configuration replayed, and the checks probed meanwhile (timeout 30 s, fall 1) must
// not go down. Before the fix the replay had StartTimeout in all, and configurations it had
// not sent by then were lost: their probes failed with "unknown check".
func TestRestartUnderLoad(t *testing.T) {
	log, buf := loadLog(t)
	h := newHost(t, Options{StartTimeout: 3 * time.Second, Logger: log})
	const n = 3000
	var specs []checksched.Spec
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		if i%150 == 0 {
			specs = append(specs, plugSpec(t, h, name, "ok", 200*time.Millisecond, 30*time.Second, 1))
			continue
		}
		configure(t, h, "test", name, "mode", "ok")
	}
	pid := probeOK(t, h, "c1")
	stop := runChecks(t, specs)
	f := freeze(testPlugins, 1500*time.Millisecond, 300*time.Millisecond)
	// A crash: the next probe restarts the plugin, which gets every configuration again.
	syscall.Kill(pid, syscall.SIGKILL)
	var pid2 int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := h.Check(ctxFor(t, 30*time.Second), "test", check.CheckRequest{Name: "c1"})
		if err == nil && resp.Status == check.OK && int(resp.Metrics["pid"]) != pid {
			pid2 = int(resp.Metrics["pid"])
			break
		}
		if isPluginError(err) || time.Now().After(deadline) {
			// The plugin's own refusal ("not configured") does not go away: the replay lost it.
			f.Stop()
			t.Fatalf("no answer from a restarted plugin: %+v, %v", resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every configuration reached the new process, still in bursts.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lost []string
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := fmt.Sprintf("c%d", i)
			resp, err := h.Check(ctxFor(t, time.Minute), "test", check.CheckRequest{Name: name})
			if err != nil || resp.Status != check.OK || int(resp.Metrics["pid"]) != pid2 {
				mu.Lock()
				lost = append(lost, fmt.Sprintf("%s: %+v %v", name, resp, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	f.Stop()
	changes := stop()
	if len(lost) > 0 {
		t.Errorf("%d of %d checks not served by the restarted plugin, first: %s", len(lost), n, lost[0])
	}
	for _, c := range changes {
		if !c.Up {
			t.Errorf("check went down while its plugin restarted under load: %+v", c)
		}
	}
	if out := buf.String(); strings.Contains(out, "did not start") || strings.Contains(out, "rejects a configuration") {
		t.Error("the restart under load failed, or lost configurations (see the log)")
	}
}

// TestHungPluginFailsAfterBudget is the other side: a plugin frozen for good is killed as
// hung, and when no new one can start (its executable is gone), its check goes down once
// its failure budget has passed, however the probes came out (timed out, or no result while
// the plugin was under the hang verdict and could not restart).
func TestHungPluginFailsAfterBudget(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil-check-test")
	copyPlugin(t, bin, 0o755)
	log, buf := loadLog(t)
	h := newHost(t, Options{Dir: dir, PingTimeout: 500 * time.Millisecond, Logger: log})
	spec := plugSpec(t, h, "svc", "ok", 200*time.Millisecond, 500*time.Millisecond, 3)
	pid := probeOK(t, h, "svc")
	changes := make(chan checksched.Change, 64)
	ctx := ctxFor(t, 3*time.Minute)
	go checksched.Run(ctx, []checksched.Spec{spec}, changes)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case c := <-changes:
			if c.Initial {
				if !c.Up {
					t.Fatalf("initial state %+v", c)
				}
				continue
			}
			if c.Up {
				t.Fatalf("change %+v; want down", c)
			}
			t.Logf("down: %s", c.Msg)
			for deadline := time.Now().Add(time.Minute); running(pid); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the frozen plugin %d is still there", pid)
				}
			}
			if !strings.Contains(buf.String(), "hung: no answer") {
				t.Error("the frozen plugin was not logged as hung")
			}
			return
		case <-ctx.Done():
			t.Fatal("the check of a frozen plugin that cannot restart never went down")
		}
	}
}

// TestProgressSeesStopAndWork: what the hang verdict and the start rest on. A stopped process
// shows no progress; one that spins shows progress, whether it gets a CPU or waits for one
// (on a loaded machine); this test process's own threads are readable too.
func TestProgressSeesStopAndWork(t *testing.T) {
	if !schedOf(os.Getpid()).ok {
		t.Fatal("no scheduling figures for this process in /proc")
	}
	start := func(script string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	stopped := start("while :; do :; done")
	if err := stopped.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	spinning := start("while :; do :; done")
	time.Sleep(100 * time.Millisecond) // the SIGSTOP lands
	const span = 500 * time.Millisecond
	s0, b0 := schedOf(stopped.Process.Pid), schedOf(spinning.Process.Pid)
	time.Sleep(span)
	s1, b1 := schedOf(stopped.Process.Pid), schedOf(spinning.Process.Pid)
	if progressed(s0, s1, span) {
		t.Errorf("a stopped process progressed: %+v -> %+v", s0, s1)
	}
	if !progressed(b0, b1, span) {
		t.Errorf("a spinning process made no progress: %+v -> %+v", b0, b1)
	}
	if progressed(sched{}, b1, span) || progressed(b0, sched{}, span) {
		t.Error("a process gone (nothing read) counts as progress")
	}
}
