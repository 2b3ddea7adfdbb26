package netif

import (
	"runtime"
	"sync"
	"testing"
)

// TestRequestsLeaveCallersStacksSmall: goroutines that make netlink requests keep small
// stacks. The library reads answers into 64 KiB on the stack of the goroutine that runs the
// request; run on the callers' own, every caller kept 128 KiB (the vrrp process's goroutine
// per instance: 32 MiB at 255 instances).
func TestRequestsLeaveCallersStacksSmall(t *testing.T) {
	n, err := New()
	if err != nil {
		t.Skipf("no netlink socket here: %v", err)
	}
	defer n.Close()
	const callers = 64
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	release := make(chan struct{})
	var asked sync.WaitGroup
	for range callers {
		asked.Add(1)
		go func() {
			defer func() { <-release }() // alive, with its stack, until measured
			defer asked.Done()
			if _, err := n.linkByName("lo"); err != nil {
				t.Error(err)
			}
		}()
	}
	asked.Wait()
	runtime.ReadMemStats(&after)
	close(release)
	grew := int64(after.StackInuse) - int64(before.StackInuse)
	t.Logf("stacks grew by %d KiB for %d callers", grew>>10, callers)
	if limit := int64(callers * 32 << 10); grew > limit {
		t.Errorf("stacks grew by %d KiB for %d callers, more than %d KiB: the requests ran on the callers' stacks", grew>>10, callers, limit>>10)
	}
}
