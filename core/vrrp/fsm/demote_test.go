package fsm

import (
	"reflect"
	"testing"
	"time"
)

// A demoted master resigns as on Shutdown (RFC 5798 6.4.3: a priority 0 advert, so the
// backup takes over after Skew_Time) but goes to BACKUP, not INIT: one transition.
func TestDemoteMasterResignsAndStaysBackup(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	got := stripReasons(t, m.Handle(now, Demote{}))
	want := []Action{SendAdvert{Priority: PriorityStop}, tr(Master, Backup)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("demote: got %v, want %v", got, want)
	}
	if !m.Demoted() || m.State() != Backup {
		t.Fatalf("demoted %v, state %v", m.Demoted(), m.State())
	}
	if d := timerIn(m, now); d != m.MasterDownInterval() {
		t.Errorf("Master_Down_Timer %v, want %v", d, m.MasterDownInterval())
	}
	// A second demote changes nothing.
	if got := m.Handle(now, Demote{}); len(got) != 0 {
		t.Errorf("demote again: %v", got)
	}
}

// The new master has a lower priority than ours and we preempt: demoted, we follow it all
// the same (its adverts reset our timer), and we never take over.
func TestDemotedFollowsLowerPriorityMaster(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	m.Handle(now, Demote{})
	for range 10 {
		now = now.Add(time.Second)
		adv := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
		if !m.RefreshedBy(adv) && m.MasterAddr() == lowAddr {
			t.Fatalf("a steady master's advert does not just refresh a demoted backup")
		}
		if got := m.Handle(now, adv); len(got) != 0 {
			t.Fatalf("advert: %v", got)
		}
		if got := m.Tick(now.Add(time.Second - time.Millisecond)); len(got) != 0 {
			t.Fatalf("tick: %v", got)
		}
	}
	if m.State() != Backup || m.MasterAddr() != lowAddr {
		t.Errorf("state %v, master %v", m.State(), m.MasterAddr())
	}
	if _, gone := m.NoMasterSince(); gone {
		t.Errorf("no master reported while one advertises")
	}
}

// The peer dies while we are demoted: the timer runs out, and we say so once (NoMaster)
// instead of taking over. An advert ends the episode.
func TestDemotedNeverTakesOverAlone(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	m.Handle(now, Demote{})
	now = now.Add(time.Second)
	m.Handle(now, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second})
	// The peer stops without a word.
	dl, _ := m.NextDeadline()
	got := m.Tick(dl)
	if want := []Action{NoMaster{Since: dl}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("down timer: got %v, want %v", got, want)
	}
	if since, ok := m.NoMasterSince(); !ok || !since.Equal(dl) || m.State() != Backup {
		t.Fatalf("NoMasterSince %v %v, state %v", since, ok, m.State())
	}
	if _, ok := m.NextDeadline(); ok {
		t.Errorf("a demoted backup with no master keeps a timer")
	}
	if got := m.Tick(dl.Add(time.Hour)); len(got) != 0 {
		t.Errorf("later tick: %v", got)
	}
	// The peer resigns again (or a forger does): still no takeover, no second NoMaster.
	now = dl.Add(time.Minute)
	m.Handle(now, AdvertReceived{From: lowAddr, Priority: PriorityStop, Interval: time.Second})
	if got := m.Tick(now.Add(time.Second)); len(got) != 0 || m.State() != Backup {
		t.Errorf("after a priority 0 advert: %v, state %v", got, m.State())
	}
	// A master comes back.
	m.Handle(now.Add(2*time.Second), AdvertReceived{From: highAddr, Priority: 200, Interval: time.Second})
	if _, ok := m.NoMasterSince(); ok || m.MasterAddr() != highAddr {
		t.Errorf("a master is heard again: NoMasterSince still set (%v) or master %v", ok, m.MasterAddr())
	}
}

// The master resigns while we are demoted: we do not take over after Skew_Time either.
func TestDemotedIgnoresResignation(t *testing.T) {
	m, now := reach(t, baseConfig(), Backup)
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 200, Interval: time.Second})
	if got := m.Handle(now, Demote{}); len(got) != 0 {
		t.Fatalf("demoting a backup: %v", got)
	}
	m.Handle(now, AdvertReceived{From: highAddr, Priority: PriorityStop, Interval: time.Second})
	now = now.Add(m.SkewTime())
	if got := m.Tick(now); !reflect.DeepEqual(got, []Action{NoMaster{Since: now}}) || m.State() != Backup {
		t.Errorf("after the master resigned: %v, state %v", got, m.State())
	}
}

// Every way into MASTER is closed while demoted: the owner's start and its leaving FAULT.
func TestDemotedOwnerStartsAsBackup(t *testing.T) {
	cfg := baseConfig()
	cfg.Priority = PriorityOwner
	m := New(cfg)
	m.Handle(t0, Demote{}) // before Startup: a vrrp process restarted while demoted
	got := stripReasons(t, m.Handle(t0, Startup{}))
	if want := []Action{tr(Init, Backup)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("startup: got %v, want %v", got, want)
	}
	m.Handle(t0, FaultChanged{Faulty: true})
	got = stripReasons(t, m.Handle(t0, FaultChanged{Faulty: false}))
	if want := []Action{tr(Fault, Backup)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("leaving fault: got %v, want %v", got, want)
	}
	// Promoted, the owner has heard no master: its timer runs, and it takes over by 6.4.2.
	if got := m.Handle(t0, Promote{}); len(got) != 0 {
		t.Fatalf("promote: %v", got)
	}
	dl, _ := m.NextDeadline()
	if got := stripReasons(t, m.Tick(dl)); !reflect.DeepEqual(got, []Action{SendAdvert{Priority: PriorityOwner}, tr(Backup, Master)}) {
		t.Errorf("after promote: %v", got)
	}
}

// Promoted with preemption and a higher priority than the master's, we discard its adverts
// and take over when the Master_Down_Timer fires (6.4.2): one transition.
func TestPromotePreempts(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	m.Handle(now, Demote{})
	low := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
	now = now.Add(time.Second)
	m.Handle(now, low)
	if got := m.Handle(now, Promote{}); len(got) != 0 || m.Demoted() {
		t.Fatalf("promote: %v, demoted %v", got, m.Demoted())
	}
	if m.RefreshedBy(low) {
		t.Errorf("a lower priority advert still refreshes a promoted backup that preempts")
	}
	var got []Action
	for i := 0; i < 10 && m.State() == Backup; i++ {
		now = now.Add(time.Second)
		got = append(got, m.Tick(now)...)
		got = append(got, m.Handle(now, low)...)
	}
	want := []Action{SendAdvert{Priority: 100}, tr(Backup, Master)}
	if got = stripReasons(t, got); !reflect.DeepEqual(got[:min(2, len(got))], want) {
		t.Errorf("after promote: got %v, want %v first", got, want)
	}
}

// Promoted when nobody is master, we take over at once: our timer ran out long ago.
func TestPromoteWithNoMasterTakesOver(t *testing.T) {
	m, now := reach(t, baseConfig(), Master)
	m.Handle(now, Demote{})
	now = now.Add(m.MasterDownInterval())
	m.Tick(now)
	now = now.Add(time.Minute)
	got := stripReasons(t, m.Handle(now, Promote{}))
	if want := []Action{SendAdvert{Priority: 100}, tr(Backup, Master)}; !reflect.DeepEqual(got, want) {
		t.Errorf("promote: got %v, want %v", got, want)
	}
}

// Without preemption, a promoted backup stays one while the master advertises.
func TestPromoteNopreemptStaysBackup(t *testing.T) {
	cfg := baseConfig()
	cfg.Preempt = false
	m, now := reach(t, cfg, Master)
	m.Handle(now, Demote{})
	m.Handle(now, Promote{})
	for range 10 {
		now = now.Add(time.Second)
		if got := m.Handle(now, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}); len(got) != 0 {
			t.Fatalf("advert: %v", got)
		}
		m.Tick(now)
	}
	if m.State() != Backup {
		t.Errorf("state %v", m.State())
	}
}

// Demoting one member of a sync group demotes the group: every master resigns with its own
// priority 0 advert before any steps down, and none goes back to MASTER.
func TestDemoteSyncGroup(t *testing.T) {
	g := newGroup(t, 100, 100)
	startGroup(t, g, t0)
	now := tickUntil(g, t0, t0.Add(time.Minute), func() bool { return g.State() == Master })
	if g.State() != Master {
		t.Fatalf("group did not become master: %v", states(g))
	}
	got := stripMember(t, g.Handle(now, 1, Demote{}))
	want := []MemberAction{
		{0, SendAdvert{Priority: PriorityStop}}, {1, SendAdvert{Priority: PriorityStop}},
		{0, tr(Master, Backup)}, {1, tr(Master, Backup)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("demote member 1: got %v, want %v", got, want)
	}
	if !g.Member(0).Demoted() || !g.Member(1).Demoted() || g.State() != Backup {
		t.Fatalf("demoted %v %v, group %v", g.Member(0).Demoted(), g.Member(1).Demoted(), g.State())
	}
	// Nobody takes over: each member reports NoMaster, none goes MASTER.
	end := now.Add(time.Minute)
	var acts []MemberAction
	for d, ok := g.NextDeadline(); ok && !d.After(end); d, ok = g.NextDeadline() {
		acts = append(acts, g.Tick(d)...)
	}
	for _, a := range acts {
		if _, ok := a.Action.(NoMaster); !ok {
			t.Errorf("demoted group: %+v", a)
		}
	}
	if len(acts) != 2 {
		t.Errorf("demoted group: %d actions, want a NoMaster each: %v", len(acts), acts)
	}
	// Promoting either member promotes both; with no master around they go MASTER together.
	got = stripMember(t, g.Handle(end, 0, Promote{}))
	var masters int
	for _, a := range got {
		if a.Action == (Action(tr(Backup, Master))) {
			masters++
		}
	}
	if masters != 2 || g.State() != Master || g.Member(0).Demoted() || g.Member(1).Demoted() {
		t.Errorf("promote: %v, group %v", got, g.State())
	}
}
