package plugin

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

// TestStatsCountsRestarts: Stats (vigil_plugin_up, vigil_plugin_restarts_total) says the
// plugin runs, then that it died once and does not run, then that it runs again after its
// restart, the death still counted.
func TestStatsCountsRestarts(t *testing.T) {
	h := newHost(t, Options{})
	configure(t, h, "test", "good", "mode", "ok")
	configure(t, h, "test", "boom", "mode", "crash")
	probeOK(t, h, "good")
	stats := func() string { return fmt.Sprint(h.Stats()) }
	if got, want := stats(), "[{check test true 0}]"; got != want {
		t.Errorf("running: %s, want %s", got, want)
	}
	h.Check(ctxFor(t, 10*time.Second), "test", check.CheckRequest{Name: "boom"})
	if got, want := stats(), "[{check test false 1}]"; got != want {
		t.Errorf("after the crash: %s, want %s", got, want)
	}
	probeOK(t, h, "good")
	if got, want := stats(), "[{check test true 1}]"; got != want {
		t.Errorf("restarted: %s, want %s", got, want)
	}
}
