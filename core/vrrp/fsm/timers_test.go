package fsm

import (
	"net/netip"
	"testing"
	"time"
)

func TestMasterDownInterval(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		version  int
		interval time.Duration
		prio     int
		skew     time.Duration
		mdi      time.Duration
	}{
		// RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 s, whatever the interval.
		{2, time.Second, 100, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, time.Second, 1, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		{2, time.Second, 254, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{2, time.Second, 255, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		{2, 3 * time.Second, 100, 609375 * time.Microsecond, 9609375 * time.Microsecond},
		// RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
		{3, 100 * ms, 100, 60937500 * time.Nanosecond, 300*ms + 156*100*ms/256},
		{3, 100 * ms, 100, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
		{3, time.Second, 200, 218750 * time.Microsecond, 3218750 * time.Microsecond},
		{3, time.Second, 255, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
		{3, 40 * time.Second, 1, 39843750 * time.Microsecond, 159843750 * time.Microsecond},
		{3, 10 * ms, 128, 5 * ms, 35 * ms},
	}
	for _, tt := range tests {
		m := New(Config{Version: tt.version, Priority: tt.prio, AdvertInterval: tt.interval})
		if g := m.SkewTime(); g != tt.skew {
			t.Errorf("v%d %v prio %d: skew %v, want %v", tt.version, tt.interval, tt.prio, g, tt.skew)
		}
		if g := m.MasterDownInterval(); g != tt.mdi {
			t.Errorf("v%d %v prio %d: Master_Down_Interval %v, want %v", tt.version, tt.interval, tt.prio, g, tt.mdi)
		}
	}
	// keepalived's down_timer_adverts replaces the 3.
	m := New(Config{Version: 3, Priority: 100, AdvertInterval: time.Second, DownTimerAdverts: 5})
	if g, want := m.MasterDownInterval(), 5*time.Second+609375*time.Microsecond; g != want {
		t.Errorf("down_timer_adverts 5: %v, want %v", g, want)
	}
}

// 6.4.2: a v3 backup takes Master_Adver_Interval from the master's adverts and
// recomputes Skew_Time and Master_Down_Interval from it; a v2 backup does not.
func TestMasterIntervalAdoption(t *testing.T) {
	for _, tt := range []struct {
		version int
		adv     time.Duration
		wantMAI time.Duration
		wantMDI time.Duration
	}{
		{3, 100 * time.Millisecond, 100 * time.Millisecond, 360937500 * time.Nanosecond},
		{3, 5 * time.Second, 5 * time.Second, 18046875 * time.Microsecond},
		{2, 5 * time.Second, time.Second, 3609375 * time.Microsecond},
	} {
		cfg := baseConfig()
		cfg.Version = tt.version
		m, now := reach(t, cfg, Backup)
		now = now.Add(time.Second)
		m.Handle(now, AdvertReceived{From: highAddr, Priority: 200, Interval: tt.adv})
		if m.MasterAdverInterval() != tt.wantMAI || m.MasterDownInterval() != tt.wantMDI || timerIn(m, now) != tt.wantMDI {
			t.Errorf("v%d advert %v: MAI %v MDI %v timer %v, want %v %v", tt.version, tt.adv,
				m.MasterAdverInterval(), m.MasterDownInterval(), timerIn(m, now), tt.wantMAI, tt.wantMDI)
		}
		// A master that steps down adopts it as well.
		mm, now := reach(t, cfg, Master)
		mm.Handle(now, AdvertReceived{From: highAddr, Priority: 200, Interval: tt.adv})
		if mm.MasterAdverInterval() != tt.wantMAI || timerIn(mm, now) != tt.wantMDI {
			t.Errorf("v%d master stepping down: MAI %v timer %v, want %v %v", tt.version, mm.MasterAdverInterval(), timerIn(mm, now), tt.wantMAI, tt.wantMDI)
		}
		// Becoming master again, it advertises its own interval.
		now = now.Add(tt.wantMDI)
		mm.Tick(now)
		if mm.State() != Master || mm.MasterAdverInterval() != time.Second || timerIn(mm, now) != time.Second {
			t.Errorf("v%d master again: %v MAI %v timer %v", tt.version, mm.State(), mm.MasterAdverInterval(), timerIn(mm, now))
		}
	}
}

// 6.4.2: priority 0 sets the Master_Down_Timer to Skew_Time only, so the best
// backup takes over first.
func TestPriorityZeroSkewOnly(t *testing.T) {
	for _, prio := range []int{1, 100, 254} {
		cfg := baseConfig()
		cfg.Priority = prio
		m, now := reach(t, cfg, Backup)
		now = now.Add(time.Second)
		m.Handle(now, AdvertReceived{From: highAddr, Priority: 255, Interval: 200 * time.Millisecond})
		now = now.Add(100 * time.Millisecond)
		m.Handle(now, AdvertReceived{From: highAddr, Priority: 0, Interval: 200 * time.Millisecond})
		skew := time.Duration(256-prio) * 200 * time.Millisecond / 256
		if g := timerIn(m, now); g != skew {
			t.Errorf("prio %d: timer %v, want skew %v", prio, g, skew)
		}
		if a := m.Tick(now.Add(skew - 1)); a != nil || m.State() != Backup {
			t.Errorf("prio %d: took over before Skew_Time", prio)
		}
		acts := m.Tick(now.Add(skew))
		if m.State() != Master {
			t.Errorf("prio %d: not master after Skew_Time", prio)
		}
		// The transition says why: the logs (and the lab tests) tell a handover from a
		// master that went silent by it.
		if r := transitionReason(acts); r != "master resigned (priority 0 advert)" {
			t.Errorf("prio %d: took over with reason %q", prio, r)
		}
		// A master that goes silent afterwards is a failure, not a resignation.
		m.Handle(now.Add(time.Second), AdvertReceived{From: highAddr, Priority: 255, Interval: 200 * time.Millisecond})
		if m.State() != Backup {
			t.Fatalf("prio %d: %v after the higher master came back", prio, m.State())
		}
		d, _ := m.NextDeadline()
		if r := transitionReason(m.Tick(d)); m.State() != Master || r != "master down timer expired" {
			t.Errorf("prio %d: %v with reason %q after the master went silent", prio, m.State(), r)
		}
	}
}

// transitionReason is the reason of the Transition among acts, "" if none.
func transitionReason(acts []Action) string {
	for _, a := range acts {
		if tr, ok := a.(Transition); ok {
			return tr.Reason
		}
	}
	return ""
}

// runAgainstLowerMaster feeds a backup adverts from a lower-priority master every second from
// t0+1s until until, and returns when it became master (zero if never).
func runAgainstLowerMaster(m *Machine, until time.Time) time.Time {
	m.Handle(t0, Startup{})
	next := t0.Add(time.Second)
	for now := t0; !now.After(until); {
		d, _ := m.NextDeadline()
		if d.Before(next) {
			now = d
			m.Tick(now)
		} else {
			now = next
			m.Handle(now, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second})
			next = next.Add(time.Second)
		}
		if m.State() == Master {
			return now
		}
	}
	return time.Time{}
}

// keepalived's preempt_delay: the first lower-priority advert starts the
// delay; adverts are accepted until it ends, then discarded, and the master
// down timer (from the last accepted advert) makes us master.
func TestPreemptDelay(t *testing.T) {
	mdi := 3218750 * time.Microsecond // priority 200, 1 s
	tests := []struct {
		name    string
		preempt bool
		delay   time.Duration
		want    time.Duration // from t0; 0 = never
	}{
		// Startup at t0: the timer from startup runs out before any advert matters.
		{"preempt, no delay", true, 0, mdi},
		// First advert at 1s starts a 5 s delay; adverts at 1..5 s accepted,
		// the one at 6 s (not before 1+5) discarded: master at 5 s + MDI.
		{"preempt_delay 5s", true, 5 * time.Second, 5*time.Second + mdi},
		{"preempt_delay 2.5s", true, 2500 * time.Millisecond, 3*time.Second + mdi},
		{"nopreempt", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Priority = 200
			cfg.Preempt = tt.preempt
			cfg.PreemptDelay = tt.delay
			got := runAgainstLowerMaster(New(cfg), t0.Add(60*time.Second))
			var gotD time.Duration
			if !got.IsZero() {
				gotD = got.Sub(t0)
			}
			if gotD != tt.want {
				t.Errorf("became master after %v, want %v (0 = never)", gotD, tt.want)
			}
		})
	}
}

// An advert from an equal or higher master stops a running preempt delay, and
// the next lower advert starts it again from scratch.
func TestPreemptDelayReset(t *testing.T) {
	cfg := baseConfig()
	cfg.Priority = 200
	cfg.PreemptDelay = 5 * time.Second
	m, now := reach(t, cfg, Backup)
	lower := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
	m.Handle(now.Add(1*time.Second), lower)                                                                // delay until 6s
	m.Handle(now.Add(2*time.Second), AdvertReceived{From: highAddr, Priority: 250, Interval: time.Second}) // stops it
	m.Handle(now.Add(7*time.Second), lower)                                                                // starts again: until 12s
	now = now.Add(11 * time.Second)
	m.Handle(now, lower)
	if g := timerIn(m, now); g != m.MasterDownInterval() {
		t.Fatalf("advert within the restarted delay discarded (timer %v)", g)
	}
}

// keepalived moves a running Master_Down_Timer by the change in
// Master_Down_Interval when the priority changes.
func TestTimerAdjustedOnPriorityChange(t *testing.T) {
	m, now := reach(t, baseConfig(), Backup) // deadline t0 + 3.609375s
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 254, Interval: 400 * time.Millisecond})
	before, _ := m.NextDeadline() // now + 1.2s + 156*0.4/256 s
	for _, p := range []int{200, 1, 254, 100} {
		old := m.MasterDownInterval()
		prev, _ := m.NextDeadline()
		m.Handle(now.Add(50*time.Millisecond), PriorityChanged{Effective: p})
		d, _ := m.NextDeadline()
		if got, want := d.Sub(prev), m.MasterDownInterval()-old; got != want {
			t.Errorf("priority -> %d: deadline moved %v, want %v", p, got, want)
		}
	}
	if d, _ := m.NextDeadline(); !d.Equal(before) {
		t.Errorf("back at priority 100, deadline %v, want %v", d, before)
	}
	// Master: nothing moves; the next advert carries the new priority.
	mm, now := reach(t, baseConfig(), Master)
	mm.Handle(now, PriorityChanged{Effective: 180})
	now = now.Add(time.Second)
	if got := mm.Tick(now); len(got) != 1 || got[0] != (SendAdvert{180}) {
		t.Errorf("master advert after priority change: %#v", got)
	}
}

// A priority-0 advert says that the master is resigning. One from a router that is not the
// master this backup follows resigns nothing: it is a forger's, or another cluster's, and
// a storm of them must not make the backup take over (bench/faults forged-malformed). Before
// the backup has heard any master, a priority 0 from anyone still counts.
func TestPriorityZeroOnlyFromTheMaster(t *testing.T) {
	stranger := netip.MustParseAddr("192.0.2.99")
	cfg := baseConfig()
	m, now := reach(t, cfg, Backup)
	m.Handle(now, AdvertReceived{From: stranger, Priority: 0, Interval: time.Second})
	if g := timerIn(m, now); g != m.SkewTime() {
		t.Fatalf("no master heard yet: timer %v, want skew %v", g, m.SkewTime())
	}
	now = now.Add(100 * time.Millisecond)
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 150, Interval: time.Second})
	now = now.Add(100 * time.Millisecond)
	for range 10 {
		now = now.Add(10 * time.Millisecond)
		m.Handle(now, AdvertReceived{From: stranger, Priority: 0, Interval: time.Second})
	}
	if g, want := timerIn(m, now), m.MasterDownInterval()-200*time.Millisecond; g != want {
		t.Fatalf("after a stranger's priority 0: timer %v, want the master's %v", g, want)
	}
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 0, Interval: time.Second})
	if g := timerIn(m, now); g != m.SkewTime() {
		t.Fatalf("after the master's priority 0: timer %v, want skew %v", g, m.SkewTime())
	}
}

// TestPriorityZeroAfterLeavingMaster: a router that was master follows no master once it is
// back in Backup (after a fault here; a sync group's push is the same), until it accepts an
// advert. The new master's resignation in that window must still set Skew_Time: had it kept
// its own address as "the master it follows", it would ignore it and wait a whole
// Master_Down_Interval with nobody holding the addresses.
func TestPriorityZeroAfterLeavingMaster(t *testing.T) {
	cfg := baseConfig()
	m, now := reach(t, cfg, Master)
	m.Handle(now, FaultChanged{Faulty: true, Reason: "link down"})
	now = now.Add(time.Second)
	m.Handle(now, FaultChanged{Faulty: false})
	if m.State() != Backup {
		t.Fatalf("after the fault: %v, want BACKUP", m.State())
	}
	now = now.Add(100 * time.Millisecond)
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 0, Interval: time.Second})
	if g := timerIn(m, now); g != m.SkewTime() {
		t.Fatalf("the new master's priority 0 before any advert of it: timer %v, want skew %v", g, m.SkewTime())
	}
}
