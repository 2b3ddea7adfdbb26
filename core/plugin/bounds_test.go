package plugin

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

// These tests hold the bounds of a plugin's start and hang verdict against plugins that
// misbehave while they use the CPU, against a host that closes under a start, and against a
// host whose own threads are busy. They assert outcomes; their deadlines are failure bounds
// only, far above what the behaviour under test takes.

// spinPlugin copies the test plugin into a private directory and returns that directory and
// the path to create (the executable's name and what) to make the plugin spin: see
// testdata/vigil-check-test.
func spinPlugin(t *testing.T, what string) (dir, marker string) {
	dir = t.TempDir()
	bin := filepath.Join(dir, "vigil-check-test")
	copyPlugin(t, bin, 0o755)
	return dir, bin + "." + what
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// killPluginsOnCleanup SIGKILLs the test plugins left when the test ends, before the host's
// Close (cleanups run last first): a test that failed because a start never ends would
// otherwise hang in Close.
func killPluginsOnCleanup(t *testing.T) {
	t.Cleanup(func() {
		for _, pid := range testPlugins() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// spinningPlugin waits until a test plugin other than old runs and has used the CPU for a
// while (it spins), and returns its pid.
func spinningPlugin(t *testing.T, old int) int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		for _, pid := range testPlugins() {
			if s := schedOf(pid); pid != old && s.ok && s.run >= 300*time.Millisecond {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no spinning plugin")
		}
	}
}

// TestSpinningReplayFails: a restarted plugin that spins in every Configure of the replay
// (it runs, so the stall watch sees progress) fails its start once no configuration was
// answered for startLimit StartTimeouts, and its process is killed. The Configure calls the
// cut-short replay had in flight are no configuration's failure: none is logged as one.
// Before the fix the replay had no bound but the stall watch: that start never ended.
func TestSpinningReplayFails(t *testing.T) {
	dir, marker := spinPlugin(t, "spin-configure")
	log, buf := loadLog(t)
	h := newHost(t, Options{Dir: dir, StartTimeout: time.Second, Logger: log})
	killPluginsOnCleanup(t)
	for _, name := range []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15", "c16", "c17", "c18", "c19"} {
		configure(t, h, "test", name, "mode", "ok")
	}
	pid := probeOK(t, h, "c0")
	touch(t, marker)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var err error
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err = h.Check(ctxFor(t, 90*time.Second), "test", check.CheckRequest{Name: "c0"})
		if err != nil && strings.Contains(err.Error(), "replaying its configurations") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the start of a plugin spinning in its replay did not fail: last %v", err)
		}
	}
	t.Logf("start failed: %v", err)
	if !strings.Contains(err.Error(), "though it ran") {
		t.Errorf("the start failed for another reason than the bound: %v", err)
	}
	if !isNotRun(err) {
		t.Errorf("a failed replay is not a probe without result: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); len(testPlugins()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the spinning plugin was not killed: %v", testPlugins())
		}
	}
	if strings.Contains(buf.String(), "failed a configuration it accepted before") {
		t.Error("the cut-short replay logged its configurations as failed")
	}
}

// TestCloseEndsSpinningStart: Close does not wait for a start under way, whether the plugin
// spins before its handshake (bounded by startLimit StartTimeouts, three minutes here) or in
// its replay (bounded by as much without an answer): Close cuts either short and kills the
// process. Before the fix Close waited out the handshake's bound, and for the replay forever;
// a check process's stop and a reload (which closes the old host) waited with it.
func TestCloseEndsSpinningStart(t *testing.T) {
	for _, what := range []string{"spin-start", "spin-configure"} {
		t.Run(what, func(t *testing.T) {
			dir, marker := spinPlugin(t, what)
			log, buf := loadLog(t)
			h := newHost(t, Options{Dir: dir, StartTimeout: 30 * time.Second, Logger: log})
			killPluginsOnCleanup(t)
			old := 0
			if what == "spin-configure" {
				configure(t, h, "test", "c0", "mode", "ok")
				old = probeOK(t, h, "c0")
				touch(t, marker)
				if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			} else {
				touch(t, marker)
			}
			// A call starts the plugin (the first one after the death may see it die).
			go func() {
				for i := 0; i < 3; i++ {
					h.Check(ctxFor(t, time.Second), "test", check.CheckRequest{Name: "c0"})
				}
			}()
			spinningPlugin(t, old)
			closed := make(chan struct{})
			go func() {
				h.Close()
				close(closed)
			}()
			select {
			case <-closed:
			case <-time.After(45 * time.Second):
				t.Fatal("Close waits for a spinning plugin's start")
			}
			if kids := testPlugins(); len(kids) > 0 {
				t.Errorf("plugins left after Close: %v", kids)
			}
			if strings.Contains(buf.String(), "did not start") {
				t.Error("a start the host's Close cut short was logged as failed")
			}
		})
	}
}

// TestFrozenPluginHungUnderBusyHost: a plugin frozen with SIGSTOP is killed as hung after
// pingMisses missed pings without progress, even while the host process has many threads
// that are busy, and so wait for a CPU, all the time (a check process on a loaded machine).
// Those threads run at the lowest priority, so the goroutine doing the pings runs on time:
// the host was not starved. Before the fix the host summed its threads' waits, took itself
// for starved at every miss, and killed the frozen plugin only by the busyPings bound, with a
// verdict saying it ran.
func TestFrozenPluginHungUnderBusyHost(t *testing.T) {
	const spinners = 12
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(spinners + 4))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range spinners {
		wg.Go(func() {
			// A locked goroutine that ends ends its thread: the niced thread goes with it.
			runtime.LockOSThread()
			syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
			for {
				select {
				case <-done:
					return
				default:
				}
				for i := 0; i < 1e6; i++ {
				}
			}
		})
	}
	defer wg.Wait()
	defer close(done)

	log, buf := loadLog(t)
	h := newHost(t, Options{PingTimeout: 500 * time.Millisecond, Logger: log})
	pidfile := filepath.Join(t.TempDir(), "sleeper")
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "stop", "mode", "stop", "pidfile", pidfile)
	pid := probeOK(t, h, "good")
	// Host threads that wait: the kernel shows it before the plugin is frozen.
	before := schedOf(os.Getpid())
	time.Sleep(200 * time.Millisecond)
	if after := schedOf(os.Getpid()); after.wait-before.wait < 200*time.Millisecond/4 {
		t.Logf("the host's threads waited only %s in 200ms: the premise is weak here", after.wait-before.wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := h.Check(ctx, "test", check.CheckRequest{Name: "stop"})
	cancel()
	if err == nil {
		t.Fatal("the stopping probe answered")
	}
	for deadline := time.Now().Add(2 * time.Minute); running(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the frozen plugin %d is still there", pid)
		}
	}
	if b, err := os.ReadFile(pidfile); err == nil {
		t.Logf("sleeper %s", b)
	}
	if out := buf.String(); !strings.Contains(out, "health pings in a row") {
		t.Errorf("the frozen plugin was not killed for missed pings without progress:\n%s", out)
	}
}

// TestUnrunnablePluginFailsPlainly: a plugin that cannot be run at all (missing, its checksum
// not the pinned one) fails its calls plainly, at the first and at later calls: that does not
// go away by itself, so its checks must not wait a failure budget with probes that have no
// result. Before the fix every start error made a probe without result.
func TestUnrunnablePluginFailsPlainly(t *testing.T) {
	for name, opts := range map[string]Options{
		"missing":  {Dir: t.TempDir()},
		"checksum": {Checksums: map[string]string{"vigil-check-test": strings.Repeat("0", 64)}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t, opts)
			for i := range 3 {
				_, err := h.Check(ctxFor(t, 20*time.Second), "test", check.CheckRequest{Name: "c0"})
				if err == nil {
					t.Fatal("a plugin that cannot run answered")
				}
				if isNotRun(err) {
					t.Errorf("call %d: a plugin that cannot run makes a probe without result: %v", i, err)
				}
			}
			// As the scheduler sees it.
			if res := (Prober{Host: h, Plugin: "test", Check: "c0"}).Probe(ctxFor(t, 20*time.Second)); res.NoResult || res.OK {
				t.Errorf("probe of a plugin that cannot run: %+v; want a failure", res)
			}
		})
	}
}

// TestFrozenPluginFoundAtProbeDeadline: a probe's call waits past the probe's deadline for a
// late verdict, but a plugin frozen meanwhile is pinged from soon after the probe deadline,
// not from the end of that wait: it is killed while the call still waits, and the call ends
// as a probe that timed out (a failure, not a probe without result). Before the fix, the
// call ran to the end of its wait (here 20 s) and only then was the plugin pinged.
func TestFrozenPluginFoundAtProbeDeadline(t *testing.T) {
	log, buf := loadLog(t)
	h := newHost(t, Options{PingTimeout: 400 * time.Millisecond, Logger: log})
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "stop", "mode", "stop", "pidfile", filepath.Join(t.TempDir(), "sleeper"))
	pid := probeOK(t, h, "good")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = check.WithProbeDeadline(ctx, time.Now().Add(300*time.Millisecond))
	_, err := h.Check(ctx, "test", check.CheckRequest{Name: "stop"})
	switch {
	case err == nil:
		t.Fatal("the frozen plugin answered")
	case ctx.Err() != nil:
		t.Fatalf("the call ran to the end of its wait (%v): the frozen plugin was not found meanwhile", err)
	case isNotRun(err):
		t.Errorf("the probe that the frozen plugin held past its deadline has no result (%v); it timed out", err)
	}
	// Killed by the verdict, which the call's end followed (the kill itself may lag).
	for deadline := time.Now().Add(2 * time.Minute); running(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the frozen plugin %d is still there", pid)
		}
	}
	if out := buf.String(); !strings.Contains(out, "health pings in a row") {
		t.Errorf("the frozen plugin was not killed for missed pings without progress:\n%s", out)
	}
	// A fresh process takes the next probe.
	if p := probeOK(t, h, "good"); p == pid {
		t.Errorf("the next probe went to the frozen process %d", pid)
	}
}
