package proc

import (
	"os"
	"testing"
)

func TestReadUsageSeesAnOpenedFile(t *testing.T) {
	before, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSSKB == 0 || before.Threads < 1 || before.FDs < 3 {
		t.Fatalf("usage of this test: %+v", before)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Other goroutines of the test binary hold no files that come and go.
	if after.FDs != before.FDs+1 {
		t.Errorf("fds %d, then %d after opening one file", before.FDs, after.FDs)
	}
	if rss, err := MemKB([]int{os.Getpid()}, "status", "VmRSS"); err != nil || rss == 0 {
		t.Errorf("MemKB VmRSS: %d, %v", rss, err)
	}
	if n := Threads([]int{os.Getpid()}); n < 1 {
		t.Errorf("Threads: %d", n)
	}
}

// The machine's busy time grows with what this process spends on a CPU (by half of it at
// least: the machine's ticks are sampled, a process's time is measured).
func TestMachineTicksCountsThisProcess(t *testing.T) {
	m0, err := MachineTicks()
	if err != nil {
		t.Fatal(err)
	}
	s0, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for {
		for i := range 1 << 20 {
			x ^= i
		}
		s, err := ReadStat(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s.Ticks >= s0.Ticks+10 {
			break
		}
	}
	m1, err := MachineTicks()
	if err != nil {
		t.Fatal(err)
	}
	if m1 < m0+5 {
		t.Errorf("machine ticks %d -> %d while this process spent 10 ticks (x=%d)", m0, m1, x)
	}
}
