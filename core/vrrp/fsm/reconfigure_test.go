package fsm

import (
	"net/netip"
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

// TestReconfigurePrimaryAddrInFault: a machine made before its interface had an address
// takes one in FAULT (or before its start), and compares addresses with it once it runs;
// a running backup or master cannot change it.
func TestReconfigurePrimaryAddrInFault(t *testing.T) {
	cfg := baseConfig()
	cfg.PrimaryAddr = netip.Addr{}
	m := New(cfg)
	now := time.Unix(1000, 0)
	m.Handle(now, FaultChanged{Faulty: true, Reason: "no IPv4 address on eth0"})
	m.Handle(now, Startup{})
	if m.State() != Fault {
		t.Fatalf("started faulty: %s, want FAULT", m.State())
	}
	withAddr := baseConfig()
	withAddr.PrimaryAddr = netip.MustParseAddr("192.0.2.50")
	if err := m.Reconfigure(now, withAddr); err != nil {
		t.Fatalf("a new primary address in FAULT: %v", err)
	}
	m.Handle(now, FaultChanged{Faulty: false})
	if m.State() != Backup {
		t.Fatalf("fault cleared: %s, want BACKUP", m.State())
	}
	// Equal priorities: the higher primary address wins, so ours (192.0.2.50) must be the
	// one compared. A master at 192.0.2.10 loses to it: we discard its advert and take
	// over when the timer runs out.
	m.Handle(now, AdvertReceived{From: netip.MustParseAddr("192.0.2.10"), Priority: uint8(cfg.Priority), Interval: cfg.AdvertInterval})
	dl, _ := m.NextDeadline()
	if m.Tick(dl); m.State() != Master {
		t.Fatalf("after an equal priority advert from a lower address: %s, want MASTER", m.State())
	}
	other := withAddr
	other.PrimaryAddr = netip.MustParseAddr("192.0.2.51")
	if err := m.Reconfigure(dl, other); err == nil {
		t.Error("a master took another primary address in place")
	}
}
