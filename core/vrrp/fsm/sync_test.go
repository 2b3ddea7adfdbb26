package fsm

import (
	"reflect"
	"testing"
	"time"
)

func newGroup(t *testing.T, prios ...int) *SyncGroup {
	t.Helper()
	var ms []*Machine
	for i, p := range prios {
		cfg := baseConfig()
		cfg.VRID = uint8(i + 1)
		cfg.Priority = p
		ms = append(ms, New(cfg))
	}
	return NewSyncGroup(ms...)
}

func stripMember(t *testing.T, as []MemberAction) []MemberAction {
	t.Helper()
	for i, a := range as {
		as[i].Action = stripReasons(t, []Action{a.Action})[0]
	}
	return as
}

func states(g *SyncGroup) []State {
	var s []State
	for i := range g.Len() {
		s = append(s, g.Member(i).State())
	}
	return s
}

func startGroup(t *testing.T, g *SyncGroup, now time.Time) {
	for i := range g.Len() {
		g.Handle(now, i, Startup{})
	}
}

// tickUntil ticks the group at each deadline until cond holds or limit passes.
func tickUntil(g *SyncGroup, now, limit time.Time, cond func() bool) time.Time {
	for !cond() {
		d, ok := g.NextDeadline()
		if !ok || d.After(limit) {
			break
		}
		now = d
		g.Tick(now)
	}
	return now
}

// keepalived: a member whose timer runs out first waits (re-armed) until the
// others want MASTER too; then all go together.
func TestSyncGroupGoesMasterTogether(t *testing.T) {
	g := newGroup(t, 100, 200)
	startGroup(t, g, t0)
	// Member 1 (priority 200) times out first, at 3.21875 s, and is held.
	now := t0.Add(3218750 * time.Microsecond)
	if a := g.Tick(now); a != nil || g.Member(1).State() != Backup {
		t.Fatalf("member 1 did not wait for member 0: %v %v", a, states(g))
	}
	// Member 0 times out at 3.609375 s: both go master, member 0 first.
	now = t0.Add(3609375 * time.Microsecond)
	got := stripMember(t, g.Tick(now))
	want := []MemberAction{
		{0, SendAdvert{100}}, {0, tr(Backup, Master)},
		{1, SendAdvert{200}}, {1, tr(Backup, Master)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
	if g.State() != Master {
		t.Fatalf("group state %v", g.State())
	}
	// One member hears a higher priority: all go backup, without priority 0.
	got = stripMember(t, g.Handle(now, 1, AdvertReceived{From: highAddr, Priority: 250, Interval: time.Second}))
	want = []MemberAction{{1, tr(Master, Backup)}, {0, tr(Master, Backup)}}
	if !reflect.DeepEqual(got, want) || g.State() != Backup {
		t.Fatalf("actions %#v, want %#v (group %v)", got, want, g.State())
	}
}

func TestSyncGroupFault(t *testing.T) {
	g := newGroup(t, 100, 100, 100)
	startGroup(t, g, t0)
	now := tickUntil(g, t0, t0.Add(time.Minute), func() bool { return g.State() == Master })
	if !reflect.DeepEqual(states(g), []State{Master, Master, Master}) {
		t.Fatalf("states %v", states(g))
	}
	// One member faults: every master resigns with priority 0.
	got := stripMember(t, g.Handle(now, 1, FaultChanged{Faulty: true}))
	want := []MemberAction{
		{1, SendAdvert{0}}, {1, tr(Master, Fault)},
		{0, SendAdvert{0}}, {0, tr(Master, Fault)},
		{2, SendAdvert{0}}, {2, tr(Master, Fault)},
	}
	if !reflect.DeepEqual(got, want) || g.State() != Fault {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
	// A second member faults and the first recovers: still all FAULT.
	if a := g.Handle(now, 2, FaultChanged{Faulty: true}); a != nil {
		t.Fatalf("second fault: %v", a)
	}
	if a := g.Handle(now, 1, FaultChanged{Faulty: false}); a != nil {
		t.Fatalf("group left FAULT with a member still faulty: %v", a)
	}
	// The last fault clears: all go BACKUP with full timers.
	got = stripMember(t, g.Handle(now, 2, FaultChanged{Faulty: false}))
	want = []MemberAction{{2, tr(Fault, Backup)}, {0, tr(Fault, Backup)}, {1, tr(Fault, Backup)}}
	if !reflect.DeepEqual(got, want) || g.State() != Backup {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
	for i := range g.Len() {
		if d, _ := g.Member(i).NextDeadline(); d.Sub(now) != 3609375*time.Microsecond {
			t.Errorf("member %d timer %v", i, d.Sub(now))
		}
	}
	// A member that starts while another is faulty starts in FAULT.
	h := newGroup(t, 100, 100)
	h.Handle(t0, 0, FaultChanged{Faulty: true})
	h.Handle(t0, 0, Startup{})
	h.Handle(t0, 1, Startup{})
	if !reflect.DeepEqual(states(h), []State{Fault, Fault}) {
		t.Fatalf("start with faulty member: %v", states(h))
	}
	// ... and leaves it when the faulty one shuts down.
	h.Handle(t0, 0, Shutdown{})
	if !reflect.DeepEqual(states(h), []State{Init, Backup}) {
		t.Fatalf("after faulty member shut down: %v", states(h))
	}
}

// A member that is master hears a lower-priority advert: it answers, and the
// group stays master.
func TestSyncGroupLowerPriority(t *testing.T) {
	g := newGroup(t, 200, 200)
	startGroup(t, g, t0)
	now := tickUntil(g, t0, t0.Add(time.Minute), func() bool { return g.State() == Master })
	got := stripMember(t, g.Handle(now, 0, AdvertReceived{From: lowAddr, Priority: 100, Interval: time.Second}))
	want := []MemberAction{{0, SendAdvert{200}}, {0, LowerPriorityHeard{lowAddr, 100}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
}

func TestGroupedMachinePanicsWhenDrivenAlone(t *testing.T) {
	g := newGroup(t, 100)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	g.Member(0).Handle(t0, Startup{})
}

// TestSyncGroupReannounces: when one member hears a lower priority advert, the
// other members that are MASTER re-announce their addresses too, each with its
// own garp_lower_prio settings (keepalived's vrrp_state_master_rx).
func TestSyncGroupReannounces(t *testing.T) {
	var ms []*Machine
	for i, rep := range []int{5, 0, 3} {
		cfg := baseConfig()
		cfg.VRID = uint8(i + 1)
		cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = rep, time.Duration(i)*time.Second
		ms = append(ms, New(cfg))
	}
	g := NewSyncGroup(ms...)
	startGroup(t, g, t0)
	now := tickUntil(g, t0, t0.Add(time.Minute), func() bool { return states(g)[0] == Master && states(g)[2] == Master })
	got := g.Handle(now, 0, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second})
	want := []MemberAction{
		{0, SendAdvert{100}},
		{0, Reannounce{Repeat: 5, Soon: time.Second}},
		{2, Reannounce{Repeat: 3, Again: 2 * time.Second, Soon: time.Second}},
		{0, LowerPriorityHeard{lowAddr, 50}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("actions %#v, want %#v", got, want)
	}
}

// TestSyncGroupReannouncesOnce: in a group-wide split brain every member hears
// its own lower priority advert within moments. The first one re-announces
// for the whole group; the others' adverts must not start another round for
// every member (N×Repeat announcements at once, and the pending second round
// pushed back each time). Later rounds stay rate-limited per member.
func TestSyncGroupReannouncesOnce(t *testing.T) {
	var ms []*Machine
	for i := range 3 {
		cfg := baseConfig()
		cfg.VRID = uint8(i + 1)
		cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = 2, 5*time.Second
		ms = append(ms, New(cfg))
	}
	g := NewSyncGroup(ms...)
	startGroup(t, g, t0)
	now := tickUntil(g, t0, t0.Add(time.Minute), func() bool {
		s := states(g)
		return s[0] == Master && s[1] == Master && s[2] == Master
	})
	lower := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
	count := func(as []MemberAction) (re [3]int, heard [3]int) {
		for _, a := range as {
			switch a.Action.(type) {
			case Reannounce:
				re[a.Member]++
			case LowerPriorityHeard:
				heard[a.Member]++
			}
		}
		return re, heard
	}
	var re, heard [3]int
	// Adverts of the other node's three masters, a second apart for a minute.
	for s := range 61 {
		for i := range 3 {
			r, h := count(g.Handle(now.Add(time.Duration(i)*time.Millisecond), i, lower))
			for j := range 3 {
				re[j] += r[j]
				heard[j] += h[j]
			}
			if s == 0 && i == 0 && r != [3]int{1, 1, 1} {
				t.Fatalf("first advert: re-announcements per member %v, want [1 1 1]", r)
			}
			if s == 0 && i > 0 && r != [3]int{} {
				t.Fatalf("member %d's first advert right after member 0's: re-announcements %v, want none", i, r)
			}
		}
		now = now.Add(time.Second)
		g.Tick(now)
	}
	// Each member's notification once; re-announcements every
	// max(5 s, Master_Down_Interval) = 5 s: at 0, 5, ..., 60 s.
	if heard != [3]int{1, 1, 1} {
		t.Errorf("LowerPriorityHeard per member %v, want [1 1 1]", heard)
	}
	if re != [3]int{13, 13, 13} {
		t.Errorf("re-announcements per member in 60 s %v, want [13 13 13]", re)
	}
}
