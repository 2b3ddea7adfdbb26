package notify

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestDeliveredHearsOutcomes: Options.Delivered (core's notify metrics) hears each delivery
// with the action's name and its outcome, ok or failed, and not the deliveries skipped.
func TestDeliveredHearsOutcomes(t *testing.T) {
	cfg := parse(t, "vrrp_notify hook {\n plugin rec\n}\n"+instance("VI_1", 1, " notify_action hook\n"))
	r := newRecorder()
	var mu sync.Mutex
	var heard []string
	d := New(cfg, Options{Plugins: r, Installed: all, Log: testLog(t), Delivered: func(action, outcome string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took < 0 {
			t.Errorf("%s took %s", action, took)
		}
		heard = append(heard, fmt.Sprintf("%s %s", action, outcome))
	}})
	defer d.Close()
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP"})
	waitFor(t, "the first delivery", func() bool { return len(r.events("hook")) == 1 })
	r.mu.Lock()
	r.fail = errors.New("webhook answered 500")
	r.mu.Unlock()
	d.Transition(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER"})
	waitFor(t, "the second delivery heard", func() bool { mu.Lock(); defer mu.Unlock(); return len(heard) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"vrrp_notify hook ok", "vrrp_notify hook failed"}; !slices.Equal(heard, want) {
		t.Errorf("heard %q, want %q", heard, want)
	}
}
