package fsm

import (
	"net/netip"
	"testing"
	"time"
)

// TestAdvertCadenceDoesNotDrift: a master whose ticks come late keeps sending on its own
// schedule, so runtime latency does not stretch the advert period seen by the backups.
func TestAdvertCadenceDoesNotDrift(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := New(Config{VRID: 1, Version: 3, Priority: 255, AdvertInterval: 10 * time.Millisecond, Preempt: true, PrimaryAddr: netip.MustParseAddr("192.0.2.1")})
	m.Handle(t0, Startup{})
	if m.State() != Master {
		t.Fatalf("owner did not start as master: %s", m.State())
	}
	sent := 0
	now := t0
	for i := 0; i < 100; i++ {
		dl, _ := m.NextDeadline()
		now = dl.Add(3 * time.Millisecond) // every wake-up 3 ms late
		for _, a := range m.Tick(now) {
			if _, ok := a.(SendAdvert); ok {
				sent++
			}
		}
	}
	// 100 ticks at 3 ms late each: on schedule the last is due at t0 + 100 x 10 ms.
	if want := t0.Add(1000 * time.Millisecond); now.Sub(want) > 5*time.Millisecond {
		t.Errorf("after 100 adverts the schedule is %s behind", now.Sub(want))
	}
	if sent != 100 {
		t.Errorf("sent %d adverts, want 100", sent)
	}
	// More than a whole interval late: the next advert is one interval after now.
	dl, _ := m.NextDeadline()
	late := dl.Add(25 * time.Millisecond)
	m.Tick(late)
	if next, _ := m.NextDeadline(); next != late.Add(10*time.Millisecond) {
		t.Errorf("after a long stall the next advert is at %s, want %s", next.Sub(late), 10*time.Millisecond)
	}
}
