package fsm

import (
	"testing"
	"time"
)

func TestRefreshedBy(t *testing.T) {
	adv := AdvertReceived{From: highAddr, Priority: 200, Interval: time.Second}
	m, now := reach(t, baseConfig(), Backup)
	if m.RefreshedBy(adv) {
		t.Fatal("RefreshedBy before any master was heard: the first advert also sets the master")
	}
	now = now.Add(time.Second)
	m.Handle(now, adv)
	if !m.RefreshedBy(adv) {
		t.Fatal("the same advert again only restarts the timer, RefreshedBy should say so")
	}
	for name, ev := range map[string]AdvertReceived{
		"other sender":   {From: lowAddr, Priority: 200, Interval: time.Second},
		"other interval": {From: highAddr, Priority: 200, Interval: 2 * time.Second},
		"priority 0":     {From: highAddr, Priority: 0, Interval: time.Second},
		"lower priority": {From: highAddr, Priority: 50, Interval: time.Second}, // discarded: we preempt
	} {
		if m.RefreshedBy(ev) {
			t.Errorf("%s: RefreshedBy is true", name)
		}
	}

	// nopreempt accepts a lower priority master: a refresh too.
	cfg := baseConfig()
	cfg.Preempt = false
	m, now = reach(t, cfg, Backup)
	low := AdvertReceived{From: highAddr, Priority: 50, Interval: time.Second}
	m.Handle(now, low)
	if !m.RefreshedBy(low) {
		t.Fatal("nopreempt backup following a lower priority master: RefreshedBy false")
	}

	// A running preempt_delay is time dependent: never a plain refresh.
	cfg = baseConfig()
	cfg.PreemptDelay = 5 * time.Second
	m, now = reach(t, cfg, Backup)
	m.Handle(now, low)
	if m.RefreshedBy(low) {
		t.Fatal("preempt_delay running: RefreshedBy true")
	}
}

func TestAdvertsSentUntil(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	next := now.Add(7 * time.Second)
	m.AdvertsSentUntil(next)
	if got := timerIn(m, now); got != 7*time.Second {
		t.Fatalf("Adver_Timer in %v after AdvertsSentUntil(+7s)", got)
	}
	if acts := m.Tick(next.Add(-time.Millisecond)); len(acts) != 0 {
		t.Fatalf("Tick before the new deadline: %v", acts)
	}
	if acts := m.Tick(next); len(acts) != 1 {
		t.Fatalf("Tick at the new deadline: %v, want one advert", acts)
	}

	b, now := reach(t, baseConfig(), Backup)
	before := timerIn(b, now)
	b.AdvertsSentUntil(now.Add(time.Hour))
	if got := timerIn(b, now); got != before {
		t.Fatalf("AdvertsSentUntil moved a backup's timer from %v to %v", before, got)
	}
}
