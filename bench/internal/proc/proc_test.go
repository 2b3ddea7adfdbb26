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
