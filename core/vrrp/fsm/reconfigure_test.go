package fsm

import (
	"testing"
	"time"
)

// TestReconfigureKeepsState: a reload's new settings leave the state and the running timers
// alone; the new base priority acts through PriorityChanged; identity cannot change.
func TestReconfigureKeepsState(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	before := timerIn(m, now)
	cfg := baseConfig()
	cfg.Priority = 50
	cfg.AdvertInterval = 2 * time.Second
	if err := m.Reconfigure(now, cfg); err != nil {
		t.Fatal(err)
	}
	if m.State() != Master || timerIn(m, now) != before {
		t.Fatalf("after Reconfigure: %s with the Adver_Timer in %s, want Master in %s", m.State(), timerIn(m, now), before)
	}
	if m.EffectivePriority() != baseConfig().Priority {
		t.Fatalf("priority %d before PriorityChanged; the runtime sends it with the new base", m.EffectivePriority())
	}
	// The next advert goes out on the old timer; the one after on the new interval.
	next := now.Add(before)
	if acts := m.Tick(next); len(acts) != 1 {
		t.Fatalf("Tick at the old deadline: %v", acts)
	}
	if got := timerIn(m, next); got != 2*time.Second {
		t.Fatalf("Adver_Timer after the first advert: %s, want the new 2s", got)
	}
	m.Handle(next, PriorityChanged{Effective: 50})
	// A backup with a higher priority now takes over (it preempts when its adverts outrank
	// ours): we answer its advert by stepping down, once.
	acts := m.Handle(next, AdvertReceived{From: lowAddr, Priority: 100, Interval: time.Second})
	var got []Transition
	for _, a := range acts {
		if tr, ok := a.(Transition); ok {
			got = append(got, tr)
		}
	}
	if len(got) != 1 || got[0].To != Backup {
		t.Fatalf("a higher priority advert after lowering ours: %v, want one transition to Backup", acts)
	}

	bad := baseConfig()
	bad.VRID++
	if err := m.Reconfigure(next, bad); err == nil {
		t.Error("Reconfigure accepted another VRID")
	}
}

// TestReconfigureOwner: becoming the address owner takes 255 at once; leaving it goes back to
// the configured priority.
func TestReconfigureOwner(t *testing.T) {
	m, now := reach(t, baseConfig(), Backup)
	cfg := baseConfig()
	cfg.Priority = PriorityOwner
	if err := m.Reconfigure(now, cfg); err != nil {
		t.Fatal(err)
	}
	if m.EffectivePriority() != PriorityOwner {
		t.Fatalf("owner's priority %d", m.EffectivePriority())
	}
	cfg.Priority = 120
	if err := m.Reconfigure(now, cfg); err != nil {
		t.Fatal(err)
	}
	if m.EffectivePriority() != 120 {
		t.Fatalf("priority %d after leaving ownership, want 120", m.EffectivePriority())
	}
}
