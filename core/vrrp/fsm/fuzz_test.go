package fsm

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// FuzzMachine decodes a configuration and a sequence of events from the fuzz
// input, feeds them to one machine, and checks that it never panics and keeps
// its invariants after every step.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{3, 100, 1, 0, 0, 0, 1, 7, 200, 5, 9, 2, 6, 8, 4})
	f.Add([]byte{2, 255, 0, 3, 1, 0, 1, 5, 6, 7, 0, 0, 2})
	f.Add([]byte{3, 50, 1, 2, 2, 1, 1, 3, 100, 2, 10, 5, 6, 3, 0, 3, 5, 6, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return int(b)
		}
		cfg := Config{
			VRID: 1, Version: 2 + next()%2, Priority: 1 + next()%255,
			AdvertInterval: time.Duration(1+next()%40) * 50 * time.Millisecond,
			Preempt:        next()%4 != 0,
			PrimaryAddr:    netip.AddrFrom4([4]byte{10, 0, 0, 100}),
		}
		cfg.PreemptDelay = time.Duration(next()%4) * time.Second
		cfg.InitialState = State(next() % 3)
		cfg.LowerPrioNoAdvert = next()%2 == 1
		m := New(cfg)
		now := t0
		var lastAdv AdvertReceived
		for steps := 0; len(data) > 0 && steps < 500; steps++ {
			before := m.State()
			var acts []Action
			switch op := next() % 12; op {
			case 0:
				acts = m.Handle(now, Startup{})
			case 1:
				acts = m.Handle(now, Shutdown{})
			case 2, 3:
				lastAdv = AdvertReceived{
					From:     netip.AddrFrom4([4]byte{10, 0, 0, byte(95 + next()%10)}),
					Priority: uint8(next()),
					Interval: time.Duration(next()%50) * 100 * time.Millisecond,
				}
				acts = m.Handle(now, lastAdv)
			case 4:
				acts = m.Handle(now, PriorityChanged{Effective: next()*2 - 200})
			case 5:
				acts = m.Handle(now, FaultChanged{Faulty: next()%2 == 0})
			case 6, 7:
				if d, ok := m.NextDeadline(); ok && d.After(now) {
					now = d
				}
				acts = m.Tick(now)
				if d, ok := m.NextDeadline(); ok && !d.After(now) {
					t.Fatalf("deadline %v not after Tick(%v)", d, now)
				}
			case 10:
				acts = m.Handle(now, Demote{})
			case 11:
				acts = m.Handle(now, Promote{})
			default:
				now = now.Add(time.Duration(next()) * 37 * time.Millisecond)
			}
			checkInvariants(t, m, before, acts)
			checkRefresh(t, m, lastAdv, now.Add(time.Duration(next())*time.Millisecond))
		}
	})
}

func checkInvariants(t *testing.T, m *Machine, before State, acts []Action) {
	t.Helper()
	_, ok := m.NextDeadline()
	_, noMaster := m.NoMasterSince()
	switch m.State() {
	case Master, Backup:
		// A demoted backup that found no master keeps none: it will not take over.
		if !ok && !(m.State() == Backup && m.Demoted() && noMaster) {
			t.Fatalf("%v without a timer", m.State())
		}
	case Init, Fault:
		if ok {
			t.Fatalf("%v with a timer", m.State())
		}
	default:
		t.Fatalf("bad state %v", m.State())
	}
	p := m.EffectivePriority()
	if m.Config().Priority == PriorityOwner && p != PriorityOwner || m.Config().Priority != PriorityOwner && (p < 1 || p > 254) {
		t.Fatalf("priority %d with base %d", p, m.Config().Priority)
	}
	if m.MasterDownInterval() <= 3*m.MasterAdverInterval() || m.MasterAdverInterval() <= 0 {
		t.Fatalf("Master_Down_Interval %v with Master_Adver_Interval %v", m.MasterDownInterval(), m.MasterAdverInterval())
	}
	if m.Demoted() && m.State() == Master {
		t.Fatalf("demoted and MASTER")
	}
	if noMaster && (!m.Demoted() || m.State() != Backup || ok) {
		t.Fatalf("NoMasterSince set in %v, demoted %v, timer %v", m.State(), m.Demoted(), ok)
	}
	// Transitions chain from the old state to the new one.
	cur := before
	wasMaster := before == Master
	for _, a := range acts {
		switch a := a.(type) {
		case Transition:
			if a.From != cur || a.From == a.To || a.Reason == "" {
				t.Fatalf("transition %+v from state %v", a, cur)
			}
			cur = a.To
		case SendAdvert:
			// Priority 0 only from a master that leaves; any other advert
			// only from a master (or one becoming master next).
			if a.Priority == PriorityStop && cur != Master {
				t.Fatalf("priority 0 advert in %v", cur)
			}
			if a.Priority != PriorityStop && int(a.Priority) != m.EffectivePriority() {
				t.Fatalf("advert with priority %d, ours is %d", a.Priority, m.EffectivePriority())
			}
		case LowerPriorityHeard:
			if !wasMaster || cur != Master {
				t.Fatalf("lower priority heard in %v", cur)
			}
		}
	}
	if cur != m.State() {
		t.Fatalf("transitions end in %v, state is %v", cur, m.State())
	}
	for _, a := range acts {
		if sa, ok := a.(SendAdvert); ok && sa.Priority != PriorityStop && m.State() != Master {
			t.Fatalf("advert with priority %d, then state %v", sa.Priority, m.State())
		}
	}
}

// checkRefresh holds RefreshedBy to its promise: when it says yes, handling the advert later
// changes nothing but the Master_Down_Timer, which it sets to that time + MasterDownInterval.
func checkRefresh(t *testing.T, m *Machine, ev AdvertReceived, at time.Time) {
	t.Helper()
	if !m.RefreshedBy(ev) {
		return
	}
	c := *m
	if acts := c.Handle(at, ev); len(acts) != 0 {
		t.Fatalf("RefreshedBy(%+v) but handling it gave %v", ev, acts)
	}
	if want := at.Add(m.MasterDownInterval()); !c.deadline.Equal(want) {
		t.Fatalf("RefreshedBy(%+v): deadline %v, want %v", ev, c.deadline, want)
	}
	c.deadline = m.deadline
	if !reflect.DeepEqual(&c, m) {
		t.Fatalf("RefreshedBy(%+v) but handling it changed the machine:\n%+v\n%+v", ev, c, *m)
	}
}
