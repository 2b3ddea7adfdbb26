package lvs

import (
	"net/netip"
	"testing"
)

// reloadCase: start on from, apply results, reload to to; the reload's events and table.
type reloadCase struct {
	name    string
	from    []Service
	results []string // "NAME" up, "-NAME" down, before the reload
	to      []Service
	events  string
	dests   string
	after   []step
}

func (c reloadCase) run(t *testing.T) {
	t.Helper()
	d, _ := New(Config{Services: c.from})
	for _, r := range c.results {
		if r[0] == '-' {
			d.Check(r[1:], Result{Up: false})
		} else {
			d.Check(r, Result{Up: true})
		}
	}
	ev := d.Reload(Config{Services: c.to})
	if got := lines(ev); got != c.events {
		t.Errorf("reload events = %q, want %q", got, c.events)
	}
	if got := dests(d); got != c.dests {
		t.Errorf("table after reload = %q, want %q", got, c.dests)
	}
	for i, s := range c.after {
		ev := d.Check(s.check, Result{Up: s.up, Weight: s.weight})
		if got := lines(ev); got != s.events {
			t.Errorf("step %d (%s up=%v): events = %q, want %q", i, s.check, s.up, got, s.events)
		}
		if got := dests(d); got != s.dests {
			t.Errorf("step %d (%s up=%v): table = %q, want %q", i, s.check, s.up, got, s.dests)
		}
	}
}

func withQuorum(s Service, q int64, so *Sorry) Service { s.Quorum, s.Sorry = q, so; return s }

func TestReload(t *testing.T) {
	two := service(rs(11, 1, ck("a")), rs(12, 1, ck("b")))
	other := service(rs(13, 1))
	other.ID, other.FIFO = "TCP 192.0.2.200:80", "[192.0.2.200]:tcp:80"
	for _, c := range []reloadCase{{
		// An unchanged configuration changes nothing: a failed server stays out, its
		// checker keeps its state (no new "down" at its next failure).
		name: "unchanged", from: []Service{two}, results: []string{"-a"}, to: []Service{two},
		events: "", dests: "192.0.2.12:80=1",
		after: []step{{check: "a", up: false, events: "", dests: "192.0.2.12:80=1"}},
	}, {
		name: "remove live real server", from: []Service{two},
		to:     []Service{service(rs(12, 1, ck("b")))},
		events: rs11 + " DOWN", dests: "192.0.2.12:80=1",
	}, {
		name: "remove failed real server", from: []Service{two}, results: []string{"-a"},
		to:     []Service{service(rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.12:80=1",
	}, {
		// New real servers start as at start, silently: up without alpha, down with.
		name: "add real servers", from: []Service{two},
		to:     []Service{service(rs(11, 1, ck("a")), rs(12, 1, ck("b")), rs(13, 1, ck("c")), rs(14, 1, alpha("d")))},
		events: "", dests: "192.0.2.11:80=1 192.0.2.12:80=1 192.0.2.13:80=1",
	}, {
		// A weight edit is an edit in place, without events.
		name: "weight edit", from: []Service{two},
		to:     []Service{service(rs(11, 7, ck("a")), rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.11:80=7 192.0.2.12:80=1",
	}, {
		// A dynamic weight survives the reload.
		name: "dynamic weight kept", from: []Service{two},
		to:     []Service{service(rs(11, 7, ck("a")), rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.11:80=7 192.0.2.12:80=1",
		after: []step{
			{check: "a", up: true, weight: w(3), events: "", dests: "192.0.2.11:80=3 192.0.2.12:80=1"},
		},
	}, {
		// A new alpha checker on a healthy server does not take it down (keepalived's
		// migrate_checkers starts it up unless the server has a failure or never ran).
		name: "alpha checker added to healthy server", from: []Service{two}, results: []string{"a"},
		to:     []Service{service(rs(11, 1, ck("a"), alpha("a2")), rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.11:80=1 192.0.2.12:80=1",
	}, {
		name: "alpha checker added to failed server", from: []Service{two}, results: []string{"-a"},
		to:     []Service{service(rs(11, 1, ck("a"), alpha("a2")), rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.12:80=1",
		after: []step{
			{check: "a", up: true, events: "", dests: "192.0.2.12:80=1"},
			{check: "a2", up: true, events: rs11 + " UP", dests: "192.0.2.11:80=1 192.0.2.12:80=1"},
		},
	}, {
		// Removing the failing checker brings its server up.
		name: "failing checker removed", from: []Service{service(rs(11, 1, ck("a"), ck("a2")))}, results: []string{"-a2"},
		to:     []Service{service(rs(11, 1, ck("a")))},
		events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=1",
	}, {
		name: "virtual server removed", from: []Service{two, other}, results: []string{"-a"},
		to:     []Service{other},
		events: rs12 + " DOWN; " + vsDn, dests: "192.0.2.13:80=1",
	}, {
		name: "virtual server added", from: []Service{other},
		to:     []Service{other, two},
		events: vsUp + " (init)", dests: "192.0.2.13:80=1",
	}, {
		// Removing servers below the quorum puts the sorry server in, reported once
		// (keepalived reports this loss twice: once for the removal, once at its start).
		name: "quorum lost by removal", results: []string{"-b"},
		from:   []Service{withQuorum(service(rs(11, 1, ck("a")), rs(12, 1, ck("b")), rs(13, 1, ck("c"))), 2, sorry(false))},
		to:     []Service{withQuorum(service(rs(12, 1, ck("b")), rs(13, 1, ck("c"))), 2, sorry(false))},
		events: rs11 + " DOWN; " + vsDn, dests: "198.51.100.9:80=1",
	}, {
		// A sorry server added while the quorum is down goes in, and keepalived reports
		// the quorum down again, as at start.
		name: "sorry server added", from: []Service{two}, results: []string{"-a", "-b"},
		to:     []Service{withQuorum(two, 1, sorry(false))},
		events: vsDn + " (init)", dests: "198.51.100.9:80=1",
	}, {
		// A live server the sorry server pushed out leaves without a report.
		name: "remove pushed-out server", results: []string{"-b"},
		from:   []Service{withQuorum(two, 2, sorry(false))},
		to:     []Service{withQuorum(service(rs(12, 1, ck("b"))), 1, sorry(false))},
		events: "", dests: "198.51.100.9:80=1",
	}, {
		// A quorum lowered by a reload is gained at once.
		name: "quorum lowered", from: []Service{withQuorum(two, 2, sorry(false))}, results: []string{"-a"},
		to:     []Service{withQuorum(two, 1, sorry(false))},
		events: vsUp + " (init)", dests: "192.0.2.12:80=1",
	}, {
		// inhibit_on_failure switched on keeps the failed server at 0.
		name: "inhibit switched on", from: []Service{two}, results: []string{"-a"},
		to:     []Service{service(inhibited(rs(11, 1, ck("a"))), rs(12, 1, ck("b")))},
		events: "", dests: "192.0.2.11:80=0 192.0.2.12:80=1",
	}} {
		t.Run(c.name, c.run)
	}
}

func TestReloadRemovalWithFlushOnStop(t *testing.T) {
	// With lvs_flush_on_stop, a virtual server removed by a reload reports nothing while it
	// had live weight (keepalived's clear_service_vs takes its flushing branch).
	two := service(rs(11, 1, ck("a")), rs(12, 1, ck("b")))
	other := service(rs(13, 1))
	other.ID = "other"
	d, _ := New(Config{Services: []Service{two, other}, FlushOnStop: "VS"})
	if ev := d.Reload(Config{Services: []Service{other}, FlushOnStop: "VS"}); len(ev) != 0 {
		t.Fatalf("events %q", lines(ev))
	}
}

func TestReloadKeepsSuspension(t *testing.T) {
	s := service(rs(11, 1, ck("a")))
	s.HASuspend = true
	cfg := Config{Services: []Service{s}, Instances: map[string][]netip.Addr{"VI_1": {netip.MustParseAddr(vip)}}}
	d, _ := New(cfg)
	d.InstanceState("VI_1", true)
	if ev := d.Reload(cfg); len(ev) != 0 {
		t.Fatalf("reload events %q", lines(ev))
	}
	s.HASuspend = false
	cfg.Services = []Service{s}
	d.InstanceState("VI_1", false)
	if ev := d.Reload(cfg); lines(ev) != "checkers resumed" {
		t.Fatalf("reload events %q", lines(ev))
	}
}
