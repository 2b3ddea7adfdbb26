package fsm

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	t0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ourAddr  = netip.MustParseAddr("10.0.0.2")
	lowAddr  = netip.MustParseAddr("10.0.0.1")
	highAddr = netip.MustParseAddr("10.0.0.3")
)

// baseConfig: VRRPv3, priority 100, 1 s adverts. Skew_Time = 156/256 s =
// 609.375 ms, Master_Down_Interval = 3.609375 s.
func baseConfig() Config {
	return Config{VRID: 1, Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, PrimaryAddr: ourAddr}
}

const noTimer = time.Duration(-1)

// reach drives a new machine to state s through the public API and returns
// it with the time of the last input.
func reach(t *testing.T, cfg Config, s State) (*Machine, time.Time) {
	t.Helper()
	m := New(cfg)
	now := t0
	switch s {
	case Init:
	case Backup:
		m.Handle(now, Startup{})
	case Master:
		m.Handle(now, Startup{})
		if m.State() != Master {
			now = now.Add(m.MasterDownInterval())
			m.Tick(now)
		}
	case Fault:
		m.Handle(now, Startup{})
		m.Handle(now, FaultChanged{Faulty: true, Reason: "link down"})
	}
	if m.State() != s {
		t.Fatalf("reach %v: got %v", s, m.State())
	}
	return m, now
}

// timerIn returns how far in the future the machine's deadline is, or noTimer.
func timerIn(m *Machine, now time.Time) time.Duration {
	d, ok := m.NextDeadline()
	if !ok {
		return noTimer
	}
	return d.Sub(now)
}

// stripReasons blanks Transition reasons (checked to be non-empty) so that
// tables compare only what the runtime acts on.
func stripReasons(t *testing.T, as []Action) []Action {
	t.Helper()
	var out []Action
	for _, a := range as {
		if tr, ok := a.(Transition); ok {
			if tr.Reason == "" {
				t.Errorf("transition %v->%v without a reason", tr.From, tr.To)
			}
			tr.Reason = ""
			a = tr
		}
		out = append(out, a)
	}
	return out
}

func tr(from, to State) Transition { return Transition{From: from, To: to} }

// TestStateEventTable is RFC 5798 6.4 (plus keepalived's FAULT state) as a
// table: every state, reached through the public API, times every event.
// Inputs arrive 100 ms after the state was reached; "timer" is the time from
// that input to the next deadline afterwards.
//
// Our router: v3, priority 100, 1 s interval, address 10.0.0.2, preempt.
// Master_Down_Interval 3.609375 s; with a 2 s master interval 7.21875 s.
func TestStateEventTable(t *testing.T) {
	const (
		mdi      = 3609375 * time.Microsecond // 3*1s + 156*1s/256
		mdi2s    = 7218750 * time.Microsecond // adopted 2 s: 3*2s + 156*2s/256
		skew     = 609375 * time.Microsecond
		backupIn = mdi - 100*time.Millisecond // untouched Master_Down_Timer
		masterIn = 900 * time.Millisecond     // untouched Adver_Timer
	)
	events := []struct {
		name string
		ev   Event // nil: Tick at the deadline (or an hour later if none)
	}{
		{"startup", Startup{}},
		{"shutdown", Shutdown{}},
		{"advert higher prio", AdvertReceived{From: lowAddr, Priority: 150, Interval: 2 * time.Second}},
		{"advert equal prio, higher addr", AdvertReceived{From: highAddr, Priority: 100, Interval: time.Second}},
		{"advert equal prio, lower addr", AdvertReceived{From: lowAddr, Priority: 100, Interval: time.Second}},
		{"advert lower prio", AdvertReceived{From: highAddr, Priority: 50, Interval: time.Second}},
		{"advert prio 0", AdvertReceived{From: highAddr, Priority: 0, Interval: time.Second}},
		{"timer expiry", nil},
		{"priority up", PriorityChanged{Effective: 150}},
		{"priority down", PriorityChanged{Effective: 50}},
		{"fault on", FaultChanged{Faulty: true, Reason: "link down"}},
		{"fault off", FaultChanged{Faulty: false}},
	}
	type want struct {
		actions []Action
		state   State
		timer   time.Duration
	}
	none := []Action(nil)
	table := map[State][]want{
		// 6.4.1: Init waits for Startup and ignores everything else
		// (a fault is remembered for Startup).
		Init: {
			{[]Action{tr(Init, Backup)}, Backup, mdi},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
			{none, Init, noTimer},
		},
		// 6.4.2 Backup.
		Backup: {
			{none, Backup, backupIn},
			{[]Action{tr(Backup, Init)}, Init, noTimer},
			{none, Backup, mdi2s}, // accept, adopt the 2 s interval
			{none, Backup, mdi},   // equal priority: accept (address irrelevant in Backup)
			{none, Backup, mdi},
			{none, Backup, backupIn}, // preempt: discard, timer runs on
			{none, Backup, skew},     // priority 0: Master_Down_Timer = Skew_Time
			{[]Action{SendAdvert{100}, tr(Backup, Master)}, Master, time.Second},
			{none, Backup, backupIn - 195312500*time.Nanosecond}, // skew 156/256 -> 106/256
			{none, Backup, backupIn + 195312500*time.Nanosecond}, // skew 156/256 -> 206/256
			{[]Action{tr(Backup, Fault)}, Fault, noTimer},
			{none, Backup, backupIn},
		},
		// 6.4.3 Master.
		Master: {
			{none, Master, masterIn},
			{[]Action{SendAdvert{0}, tr(Master, Init)}, Init, noTimer},
			{[]Action{tr(Master, Backup)}, Backup, mdi2s},
			{[]Action{tr(Master, Backup)}, Backup, mdi},
			{[]Action{SendAdvert{100}, LowerPriorityHeard{lowAddr, 100}}, Master, time.Second},
			{[]Action{SendAdvert{100}, LowerPriorityHeard{highAddr, 50}}, Master, time.Second},
			{[]Action{SendAdvert{100}}, Master, time.Second},
			{[]Action{SendAdvert{100}}, Master, time.Second},
			{none, Master, masterIn},
			{none, Master, masterIn},
			{[]Action{SendAdvert{0}, tr(Master, Fault)}, Fault, noTimer},
			{none, Master, masterIn},
		},
		// keepalived FAULT: deaf and silent until the fault clears.
		Fault: {
			{none, Fault, noTimer},
			{[]Action{tr(Fault, Init)}, Init, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{none, Fault, noTimer},
			{[]Action{tr(Fault, Backup)}, Backup, mdi},
		},
	}
	for _, s := range []State{Init, Backup, Master, Fault} {
		rows := table[s]
		if len(rows) != len(events) {
			t.Fatalf("%v: %d rows for %d events", s, len(rows), len(events))
		}
		for i, e := range events {
			t.Run(s.String()+"/"+e.name, func(t *testing.T) {
				m, at := reach(t, baseConfig(), s)
				now := at.Add(100 * time.Millisecond)
				var got []Action
				if e.ev == nil {
					if d, ok := m.NextDeadline(); ok {
						now = d
					} else {
						now = now.Add(time.Hour)
					}
					got = m.Tick(now)
				} else {
					got = m.Handle(now, e.ev)
				}
				w := rows[i]
				if g := stripReasons(t, got); !reflect.DeepEqual(g, w.actions) {
					t.Errorf("actions = %#v, want %#v", g, w.actions)
				}
				if m.State() != w.state {
					t.Errorf("state = %v, want %v", m.State(), w.state)
				}
				if g := timerIn(m, now); g != w.timer {
					t.Errorf("timer in %v, want %v", g, w.timer)
				}
			})
		}
	}
}

// TestConfigVariants: the rows of the table that configuration changes.
func TestConfigVariants(t *testing.T) {
	owner := func(c *Config) { c.Priority = 255 }
	mdiOwner := 3*time.Second + time.Second/256
	tests := []struct {
		name    string
		mod     func(*Config)
		from    State
		ev      Event
		actions []Action
		state   State
		timer   time.Duration // from the event
		prio    int
	}{
		{"owner startup goes master at once (6.4.1)", owner, Init, Startup{},
			[]Action{SendAdvert{255}, tr(Init, Master)}, Master, time.Second, 255},
		{"owner with state BACKUP starts as backup (keepalived)", func(c *Config) { owner(c); c.InitialState = Backup }, Init, Startup{},
			[]Action{tr(Init, Backup)}, Backup, mdiOwner, 255},
		{"non-owner with state MASTER: backup for Master_Down_Interval (6.4.1)", func(c *Config) { c.InitialState = Master }, Init, Startup{},
			[]Action{tr(Init, Backup)}, Backup, 3609375 * time.Microsecond, 100},
		{"owner leaving fault goes master at once", owner, Fault, FaultChanged{Faulty: false},
			[]Action{SendAdvert{255}, tr(Fault, Master)}, Master, time.Second, 255},
		{"owner ignores priority changes", owner, Master, PriorityChanged{Effective: 10},
			nil, Master, 900 * time.Millisecond, 255},
		{"owner master yields to another owner with higher address", owner, Master, AdvertReceived{From: highAddr, Priority: 255, Interval: time.Second},
			[]Action{tr(Master, Backup)}, Backup, mdiOwner, 255},
		{"owner master answers another owner with lower address", owner, Master, AdvertReceived{From: lowAddr, Priority: 255, Interval: time.Second},
			[]Action{SendAdvert{255}, LowerPriorityHeard{lowAddr, 255}}, Master, time.Second, 255},
		{"nopreempt backup accepts a lower advert", func(c *Config) { c.Preempt = false }, Backup, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second},
			nil, Backup, 3609375 * time.Microsecond, 100},
		{"lower_prio_no_advert: notify only", func(c *Config) { c.LowerPrioNoAdvert = true }, Master, AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second},
			[]Action{LowerPriorityHeard{lowAddr, 50}}, Master, 900 * time.Millisecond, 100},
		{"fault before startup: startup goes to fault", nil, Init, FaultChanged{Faulty: true}, nil, Init, noTimer, 100},
		{"priority clamped to 254", nil, Backup, PriorityChanged{Effective: 400}, nil, Backup, 3*time.Second + 2*time.Second/256 - 100*time.Millisecond, 254},
		{"priority clamped to 1", nil, Backup, PriorityChanged{Effective: -20}, nil, Backup, 3*time.Second + 255*time.Second/256 - 100*time.Millisecond, 1},
		{"v2 backup does not adopt the advertised interval", func(c *Config) { c.Version = 2 }, Backup, AdvertReceived{From: lowAddr, Priority: 150, Interval: 5 * time.Second},
			nil, Backup, 3609375 * time.Microsecond, 100},
		{"equal priority from our own address is ignored", nil, Master, AdvertReceived{From: ourAddr, Priority: 100, Interval: time.Second},
			nil, Master, 900 * time.Millisecond, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			m, at := reach(t, cfg, tt.from)
			now := at.Add(100 * time.Millisecond)
			got := stripReasons(t, m.Handle(now, tt.ev))
			if !reflect.DeepEqual(got, tt.actions) {
				t.Errorf("actions = %#v, want %#v", got, tt.actions)
			}
			if m.State() != tt.state {
				t.Errorf("state = %v, want %v", m.State(), tt.state)
			}
			if g := timerIn(m, now); g != tt.timer {
				t.Errorf("timer in %v, want %v", g, tt.timer)
			}
			if m.EffectivePriority() != tt.prio {
				t.Errorf("priority %d, want %d", m.EffectivePriority(), tt.prio)
			}
		})
	}
}

func TestFaultBeforeStartup(t *testing.T) {
	m := New(baseConfig())
	m.Handle(t0, FaultChanged{Faulty: true})
	got := stripReasons(t, m.Handle(t0, Startup{}))
	if want := []Action{tr(Init, Fault)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("startup with fault: %#v, want %#v", got, want)
	}
	got = stripReasons(t, m.Handle(t0, FaultChanged{Faulty: false}))
	if want := []Action{tr(Fault, Backup)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fault cleared: %#v, want %#v", got, want)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Init: "INIT", Backup: "BACKUP", Master: "MASTER", Fault: "FAULT", State(9): "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}

// TestStartupStateMasterWaitsForRunningMaster: a non-owner configured "state
// MASTER" restarts beside a running master whose first advert after the
// restart is lost. RFC 5798 6.4.1 starts it as a backup with the full
// Master_Down_Interval, so the master's next advert arrives in time and the
// restarted router never sends an advert of its own (not even one). Alone, it
// takes over when Master_Down_Interval has run out, and not before.
func TestStartupStateMasterWaitsForRunningMaster(t *testing.T) {
	cfg := baseConfig()
	cfg.InitialState = Master
	mdi := 3609375 * time.Microsecond
	master := AdvertReceived{From: highAddr, Priority: 150, Interval: time.Second}

	m := New(cfg)
	check := func(now time.Time, as []Action) {
		t.Helper()
		for _, a := range as {
			if sa, ok := a.(SendAdvert); ok {
				t.Fatalf("at +%v: restarted router sent an advert (priority %d) while a master runs", now.Sub(t0), sa.Priority)
			}
			if tr, ok := a.(Transition); ok && tr.To == Master {
				t.Fatalf("at +%v: restarted router became master while a master runs", now.Sub(t0))
			}
		}
	}
	check(t0, m.Handle(t0, Startup{}))
	if m.State() != Backup {
		t.Fatalf("after startup: %v, want BACKUP", m.State())
	}
	// The running master advertises at +0.5 s (lost), +1.5 s, +2.5 s ...;
	// Tick as a runtime would, every 10 ms.
	next := t0.Add(1500 * time.Millisecond)
	for now := t0; now.Before(t0.Add(10 * time.Second)); now = now.Add(10 * time.Millisecond) {
		if !now.Before(next) {
			check(now, m.Handle(now, master))
			next = next.Add(time.Second)
		}
		check(now, m.Tick(now))
	}
	if m.State() != Backup {
		t.Fatalf("state %v, want BACKUP", m.State())
	}

	// Alone on the link: master exactly when Master_Down_Interval runs out.
	m = New(cfg)
	m.Handle(t0, Startup{})
	if got := timerIn(m, t0); got != mdi {
		t.Fatalf("startup timer %v, want Master_Down_Interval %v", got, mdi)
	}
	if as := m.Tick(t0.Add(mdi - time.Nanosecond)); len(as) != 0 || m.State() != Backup {
		t.Fatalf("before Master_Down_Interval: %#v, state %v", as, m.State())
	}
	got := stripReasons(t, m.Tick(t0.Add(mdi)))
	if want := []Action{SendAdvert{100}, tr(Backup, Master)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("at Master_Down_Interval: %#v, want %#v", got, want)
	}

	// The owner (priority 255) goes master at once (6.4.1), its advert first.
	cfg.Priority = PriorityOwner
	m = New(cfg)
	got = stripReasons(t, m.Handle(t0, Startup{}))
	if want := []Action{SendAdvert{255}, tr(Init, Master)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("owner startup: %#v, want %#v", got, want)
	}
}

// TestLowerPriorityReannounces: a split brain ends when the master hears the
// other master's lower priority advert. It answers every such advert, and once
// per episode re-announces its addresses with garp_lower_prio_repeat rounds now
// and as many after garp_lower_prio_delay (keepalived 2.2.7's defaults: 5 and
// 5 s), then notifies. Adverts queued while it was frozen are one episode; a
// new one starts after a Master_Down_Interval without them, or after a
// stay in BACKUP.
func TestLowerPriorityReannounces(t *testing.T) {
	cfg := baseConfig()
	cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = 5, 5*time.Second
	m, now := reach(t, cfg, Master)
	lower := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
	episode := []Action{SendAdvert{100}, Reannounce{Repeat: 5, Again: 5 * time.Second, Soon: time.Second}, LowerPriorityHeard{lowAddr, 50}}

	now = now.Add(100 * time.Millisecond)
	if got := m.Handle(now, lower); !reflect.DeepEqual(got, episode) {
		t.Fatalf("first lower priority advert: %#v, want %#v", got, episode)
	}
	// 49 more queued adverts, processed at once: each answered, nothing else.
	for i := range 49 {
		now = now.Add(time.Millisecond)
		if got, want := m.Handle(now, lower), []Action{SendAdvert{100}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("queued advert %d: %#v, want %#v", i+2, got, want)
		}
	}
	// Quiet for a Master_Down_Interval: the next one starts a new episode.
	now = now.Add(m.MasterDownInterval())
	m.Tick(now)
	if got := m.Handle(now, lower); !reflect.DeepEqual(got, episode) {
		t.Fatalf("after a quiet Master_Down_Interval: %#v, want %#v", got, episode)
	}
	// Back to BACKUP and MASTER again: a new episode at once.
	m.Handle(now, AdvertReceived{From: highAddr, Priority: 200, Interval: time.Second})
	now = now.Add(m.MasterDownInterval())
	m.Tick(now)
	if m.State() != Master {
		t.Fatalf("state %v, want MASTER", m.State())
	}
	now = now.Add(10 * time.Millisecond)
	if got := m.Handle(now, lower); !reflect.DeepEqual(got, episode) {
		t.Fatalf("first lower advert of a new mastership: %#v, want %#v", got, episode)
	}

	// garp_lower_prio_repeat 0 turns the announcements off; lower_prio_no_advert the answer.
	cfg.LowerPrioGarpRepeat, cfg.LowerPrioNoAdvert = 0, true
	m, now = reach(t, cfg, Master)
	if got, want := m.Handle(now, lower), []Action{LowerPriorityHeard{lowAddr, 50}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("repeat 0, lower_prio_no_advert: %#v, want %#v", got, want)
	}

	// Equal priority from a lower address is a lower advert too (6.4.3).
	cfg = baseConfig()
	cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = 2, 0
	m, now = reach(t, cfg, Master)
	want := []Action{SendAdvert{100}, Reannounce{Repeat: 2, Soon: time.Second}, LowerPriorityHeard{lowAddr, 100}}
	if got := m.Handle(now, AdvertReceived{From: lowAddr, Priority: 100, Interval: time.Second}); !reflect.DeepEqual(got, want) {
		t.Fatalf("equal priority, lower address: %#v, want %#v", got, want)
	}
}

// TestHigherPrioSendAdvert: keepalived's higher_prio_send_advert makes the
// master that loses a split brain send one advert with its own priority before
// it steps down, so that the winner hears a lower priority and re-announces.
func TestHigherPrioSendAdvert(t *testing.T) {
	higher := AdvertReceived{From: highAddr, Priority: 200, Interval: time.Second}
	for _, send := range []bool{false, true} {
		cfg := baseConfig()
		cfg.HigherPrioSendAdvert = send
		m, now := reach(t, cfg, Master)
		want := []Action{tr(Master, Backup)}
		if send {
			want = append([]Action{SendAdvert{100}}, want...)
		}
		if got := stripReasons(t, m.Handle(now, higher)); !reflect.DeepEqual(got, want) {
			t.Errorf("higher_prio_send_advert %v: %#v, want %#v", send, got, want)
		}
	}
}

// TestLowerPriorityReannouncesWhileAdvertsKeepComing: in a one-way partition
// the other master cannot hear us, so it keeps advertising (and refreshing its
// own gratuitous ARPs) once a second and the episode of lower priority adverts
// never ends. We must keep re-announcing, at most once per
// max(garp_lower_prio_delay, Master_Down_Interval), while the notification
// stays once per episode.
func TestLowerPriorityReannouncesWhileAdvertsKeepComing(t *testing.T) {
	for _, delay := range []time.Duration{0, 5 * time.Second} {
		cfg := baseConfig()
		cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = 5, delay
		m, now := reach(t, cfg, Master)
		every := max(delay, m.MasterDownInterval())
		lower := AdvertReceived{From: lowAddr, Priority: 50, Interval: time.Second}
		start := now
		var at []time.Duration
		heard := 0
		for range 61 {
			for _, a := range m.Handle(now, lower) {
				switch a.(type) {
				case Reannounce:
					at = append(at, now.Sub(start))
				case LowerPriorityHeard:
					heard++
				}
			}
			now = now.Add(time.Second)
			m.Tick(now)
		}
		if heard != 1 {
			t.Errorf("delay %v: %d LowerPriorityHeard in one episode, want 1", delay, heard)
		}
		// Adverts come each second: a re-announce at 0, then at the first
		// advert at least `every` after the previous one.
		var want []time.Duration
		for last, s := time.Duration(-1), time.Duration(0); s <= 60*time.Second; s += time.Second {
			if last < 0 || s-last >= every {
				want, last = append(want, s), s
			}
		}
		if !reflect.DeepEqual(at, want) {
			t.Errorf("delay %v (every %v): re-announced at %v, want %v", delay, every, at, want)
		}
	}
}

// TestLowerPriorityReannounceAgainSoon: a backup that lost our adverts takes over and
// sends its advert, then its gratuitous ARPs; we hear the advert and re-announce at once,
// and its ARPs can reach the clients after ours (seen in bench/faults' packet-loss rows: the
// clients then stay with it until garp_lower_prio_delay, 5 s, after it stepped down). Each
// re-announce asks for one more round soon after: an advert interval, at least 100 ms.
func TestLowerPriorityReannounceAgainSoon(t *testing.T) {
	for _, c := range []struct {
		advert, soon time.Duration
		repeat       int
	}{
		{time.Second, time.Second, 5},
		{100 * time.Millisecond, 100 * time.Millisecond, 5},
		{10 * time.Millisecond, 100 * time.Millisecond, 5},
		{time.Second, 0, 0}, // garp_lower_prio_repeat 0: no re-announce at all
	} {
		cfg := baseConfig()
		cfg.AdvertInterval = c.advert
		cfg.LowerPrioGarpRepeat, cfg.LowerPrioGarpDelay = c.repeat, 5*time.Second
		m, now := reach(t, cfg, Master)
		var got []Reannounce
		for _, a := range m.Handle(now, AdvertReceived{From: lowAddr, Priority: 50, Interval: c.advert}) {
			if r, ok := a.(Reannounce); ok {
				got = append(got, r)
			}
		}
		var want []Reannounce
		if c.repeat > 0 {
			want = []Reannounce{{Repeat: c.repeat, Again: 5 * time.Second, Soon: c.soon}}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("advert %v: %+v, want %+v", c.advert, got, want)
		}
	}
}

// TestStatesListed: States lists every state the const block declares, each with a name: a
// state added there and not to States would be refused by core (which takes the names a
// vrrp child may send from States).
func TestStatesListed(t *testing.T) {
	states := States()
	for i, s := range states {
		if s != State(i) || strings.HasPrefix(s.String(), "State(") {
			t.Errorf("States()[%d] = %v", i, s)
		}
	}
	if next := State(len(states)); !strings.HasPrefix(next.String(), "State(") {
		t.Errorf("state %d (%s) is not in States()", int(next), next)
	}
}
