package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/internal/lab"
)

func TestTouchOnceMapsAndUnmaps(t *testing.T) {
	for range 3 {
		if err := touchOnce(4 << 20); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHogBytesIsBounded(t *testing.T) {
	n, err := hogBytes(2)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 || n > 256<<20 {
		t.Errorf("hog size %d", n)
	}
}

// TestBurnersBurnAndStop starts a spinning and a hogging copy of the test binary (the
// burner mode is the package's init) in a lab node: both use CPU, and stop leaves none.
func TestBurnersBurnAndStop(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.New(ctx, "burn", 1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := startBurners(l.Nodes[0], 1, 1, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	pids := make([]int, len(b.procs))
	for i, p := range b.procs {
		pids[i] = p.Cmd.Process.Pid
	}
	// A failure bound only: each burner must have used some CPU by then.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for {
			s, err := proc.ReadStat(pid)
			if err != nil {
				t.Fatalf("burner %d: %v\n%s", pid, err, b.procs[0].Output())
			}
			if s.Ticks > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("burner %d used no CPU", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n := b.running(); n != 2 {
		t.Errorf("%d burners running, want 2", n)
	}
	b.stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("burner %d still there after stop", pid)
		}
	}
	if n := b.running(); n != 0 {
		t.Errorf("%d burners running after stop", n)
	}
}

func TestIdlePct(t *testing.T) {
	a := cpuTimes{idle: 100, total: 1000}
	if got := idlePct(a, cpuTimes{idle: 150, total: 1100}); got != 50 {
		t.Errorf("idle: %v %%, want 50", got)
	}
	if got := idlePct(a, a); got != 0 {
		t.Errorf("no time passed: %v %%", got)
	}
	if _, err := readCPUTimes(); err != nil {
		t.Error(err)
	}
}
