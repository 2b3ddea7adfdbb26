package control

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestGetLeavesNoConnection asks for the status many times from one process, as a
// monitoring agent or the fault suite's soak does: neither side may keep a connection (a
// goroutine and a descriptor each) per request. A leak shows as one or more goroutines per
// request; the bound leaves room for the runtime's own.
func TestGetLeavesNoConnection(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vigil.sock")
	s, err := Listen(sock, func(context.Context) any { return map[string]int{"ok": 1} }, func(context.Context) any { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := Get(ctx, sock, "/status"); err != nil {
		t.Fatal(err)
	}
	settle := func() int {
		// Closed connections end their goroutines a moment later: wait (a failure bound only).
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				break
			}
			n = m
		}
		return n
	}
	before := settle()
	const requests = 50
	for range requests {
		if _, err := Get(ctx, sock, "/status"); err != nil {
			t.Fatal(err)
		}
	}
	if after := settle(); after > before+5 {
		t.Errorf("goroutines: %d before %d requests, %d after", before, requests, after)
	}
}
