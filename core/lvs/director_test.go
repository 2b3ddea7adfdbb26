package lvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/ipvs"
)

// The scenarios below are written from keepalived 2.2.7's check/ipwrapper.c and
// ipvswrapper.c: what its checker process adds to and removes from IPVS, and what it
// notifies, for the same sequence of checker results.

const vip = "192.0.2.100"

func ck(name string) Checker    { return Checker{Name: name} }
func alpha(name string) Checker { return Checker{Name: name, Alpha: true} }

func rs(last byte, weight int64, checkers ...Checker) Real {
	return Real{Dest: Dest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, last}), Port: 80}, Weight: weight, Checkers: checkers}
}

func inhibited(r Real) Real { r.Inhibit = true; return r }

func service(reals ...Real) Service {
	return Service{
		ID: "TCP " + vip + ":80", Name: vip + ":80", FIFO: "[" + vip + "]:tcp:80", Protocol: "tcp",
		Keys:      []ipvs.ServiceKey{ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort(vip+":80"))},
		Scheduler: "wlc", Quorum: 1, Reals: reals,
	}
}

func sorry(inhibit bool) *Sorry {
	return &Sorry{Dest: Dest{Addr: netip.MustParseAddr("198.51.100.9"), Port: 80}, Inhibit: inhibit}
}

// dests renders the destinations of the first service: "ADDR:PORT=WEIGHT ...".
func dests(d *Director) string {
	t := d.Desired()
	if err := t.Validate(); err != nil {
		return err.Error()
	}
	if len(t) == 0 {
		return "(no service)"
	}
	return destsOf(t[t.Keys()[0]])
}

func destsOf(v ipvs.Virtual) string {
	var out []string
	for _, k := range v.DestKeys() {
		out = append(out, fmt.Sprintf("%s=%d", k, v.Dests[k].Weight))
	}
	return strings.Join(out, " ")
}

// lines renders events: the FIFO line where there is one, else the kind.
func lines(ev []Event) string {
	var out []string
	for _, e := range ev {
		s := e.FIFO
		if s == "" {
			s = e.Kind.String()
			if e.Kind == SyncRole {
				s += " " + e.Role.String()
			}
		}
		if e.Init {
			s += " (init)"
		}
		if e.Stopping {
			s += " (stopping)"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func w(n int) *int { return &n }

// step is one input and what must follow.
type step struct {
	check  string // checker name; "" for none
	up     bool
	weight *int
	master string // "NAME" to make an instance master, "-NAME" backup
	events string
	dests  string
}

func run(t *testing.T, cfg Config, start, startDests string, steps []step) *Director {
	t.Helper()
	d, ev := New(cfg)
	if got := lines(ev); got != start {
		t.Errorf("start events = %q, want %q", got, start)
	}
	if got := dests(d); got != startDests {
		t.Errorf("start table = %q, want %q", got, startDests)
	}
	for i, s := range steps {
		var ev []Event
		switch {
		case s.check != "":
			ev = d.Check(s.check, Result{Up: s.up, Weight: s.weight})
		case strings.HasPrefix(s.master, "-"):
			ev = d.InstanceState(s.master[1:], false)
		case s.master != "":
			ev = d.InstanceState(s.master, true)
		}
		if got := lines(ev); got != s.events {
			t.Errorf("step %d (%s up=%v): events = %q, want %q", i, s.check+s.master, s.up, got, s.events)
		}
		if got := dests(d); got != s.dests {
			t.Errorf("step %d (%s up=%v): table = %q, want %q", i, s.check+s.master, s.up, got, s.dests)
		}
	}
	return d
}

const (
	rs11 = "RS [192.0.2.11]:tcp:80 [192.0.2.100]:tcp:80"
	rs12 = "RS [192.0.2.12]:tcp:80 [192.0.2.100]:tcp:80"
	rs13 = "RS [192.0.2.13]:tcp:80 [192.0.2.100]:tcp:80"
	vsUp = "VS [192.0.2.100]:tcp:80 UP"
	vsDn = "VS [192.0.2.100]:tcp:80 DOWN"
)

func TestAllCheckersMustBeUp(t *testing.T) {
	// A real server is in the pool only while every checker is up; a server without
	// checkers is always in. keepalived counts failed checkers (num_failed_checkers).
	// It also starts with its quorum evaluated, and reports a quorum reached at start:
	// quorum_up runs and the FIFO gets "VS ... UP" when keepalived starts.
	cfg := Config{Services: []Service{service(rs(11, 1, ck("a"), ck("b")), rs(12, 2))}}
	run(t, cfg, vsUp+" (init)", "192.0.2.11:80=1 192.0.2.12:80=2", []step{
		{check: "a", up: false, events: rs11 + " DOWN", dests: "192.0.2.12:80=2"},
		{check: "b", up: false, events: "", dests: "192.0.2.12:80=2"},
		{check: "a", up: true, events: "", dests: "192.0.2.12:80=2"},
		{check: "a", up: true, events: "", dests: "192.0.2.12:80=2"},
		{check: "b", up: true, events: rs11 + " UP", dests: "192.0.2.11:80=1 192.0.2.12:80=2"},
		{check: "nosuch", up: false, events: "", dests: "192.0.2.11:80=1 192.0.2.12:80=2"},
	})
}

func TestAlpha(t *testing.T) {
	// With alpha a checker starts failed: the server is out until its first success.
	// keepalived announces an alpha checker's first result even when it changes nothing
	// (the server is reported down again once its first check fails), and a server that
	// is then up again at the next success.
	cfg := Config{Services: []Service{service(rs(11, 1, alpha("a")), rs(12, 1, ck("b")))}}
	run(t, cfg, vsUp+" (init)", "192.0.2.12:80=1", []step{
		{check: "a", up: false, events: rs11 + " DOWN", dests: "192.0.2.12:80=1"},
		{check: "a", up: false, events: "", dests: "192.0.2.12:80=1"},
		{check: "a", up: true, events: rs11 + " UP", dests: "192.0.2.11:80=1 192.0.2.12:80=1"},
		// A non-alpha checker's first success confirms it silently; its first failure
		// is a change.
		{check: "b", up: false, events: rs12 + " DOWN", dests: "192.0.2.11:80=1"},
	})
}

func TestAlphaFirstSuccess(t *testing.T) {
	// The first result of an alpha checker that succeeds is the change to up, reported once.
	cfg := Config{Services: []Service{service(rs(11, 1, alpha("a")))}}
	run(t, cfg, "", "", []step{
		{check: "a", up: true, events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=1"},
	})
}

func TestInhibitOnFailure(t *testing.T) {
	// inhibit_on_failure keeps a failed server at weight 0, established connections
	// live on; with alpha it starts in the table at 0.
	cfg := Config{Services: []Service{service(inhibited(rs(11, 3, ck("a"))), inhibited(rs(12, 2, alpha("b"))))}}
	run(t, cfg, vsUp+" (init)", "192.0.2.11:80=3 192.0.2.12:80=0", []step{
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: "192.0.2.11:80=0 192.0.2.12:80=0"},
		{check: "b", up: true, events: rs12 + " UP; " + vsUp, dests: "192.0.2.11:80=0 192.0.2.12:80=2"},
		{check: "a", up: true, events: rs11 + " UP", dests: "192.0.2.11:80=3 192.0.2.12:80=2"},
	})
}

func TestDynamicWeight(t *testing.T) {
	// MISC_CHECK's misc_dynamic (exit status - 2) and a plugin's weight answer take the
	// place of the configured weight while the checker is up; a success without one
	// (exit 0) brings the configured weight back; a failure drops it. Two checkers'
	// differences from the configured weight add up, and the result is clamped at 0.
	cfg := Config{Services: []Service{service(rs(11, 5, ck("m"), ck("p")))}}
	run(t, cfg, vsUp+" (init)", "192.0.2.11:80=5", []step{
		{check: "m", up: true, weight: w(10), events: "", dests: "192.0.2.11:80=10"},
		{check: "p", up: true, weight: w(7), events: "", dests: "192.0.2.11:80=12"}, // 5 + 5 + 2
		{check: "p", up: true, weight: w(0), events: "", dests: "192.0.2.11:80=5"},  // 5 + 5 - 5
		// 5 - 4 - 5 < 0: no weight left, and so no quorum.
		{check: "m", up: true, weight: w(1), events: vsDn, dests: "192.0.2.11:80=0"},
		{check: "p", up: true, events: vsUp, dests: "192.0.2.11:80=1"},
		{check: "m", up: true, events: "", dests: "192.0.2.11:80=5"},
		{check: "m", up: false, weight: w(200), events: rs11 + " DOWN; " + vsDn, dests: ""},
		// Back up: the weight reported with the failure was not kept.
		{check: "m", up: true, events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=5"},
	})
}

func TestDynamicWeightMovesQuorum(t *testing.T) {
	// A weight of 0 leaves the server up but with no weight towards the quorum.
	s := service(rs(11, 1, ck("m")))
	s.Sorry = sorry(false)
	cfg := Config{Services: []Service{s}}
	run(t, cfg, vsUp+" (init)", "192.0.2.11:80=1", []step{
		{check: "m", up: true, weight: w(0), events: vsDn, dests: "198.51.100.9:80=1"},
		{check: "m", up: true, weight: w(3), events: vsUp, dests: "192.0.2.11:80=3"},
	})
}

func TestQuorumSorryServer(t *testing.T) {
	// Below the quorum the sorry server goes in and the real servers still up go out
	// (keepalived's perform_quorum_state): all traffic goes to the sorry server. Real
	// servers that change meanwhile are reported but not programmed; regaining the quorum
	// takes the sorry server out and puts the live servers back.
	s := service(rs(11, 1, ck("a")), rs(12, 1, ck("b")), rs(13, 1, ck("c")))
	s.Quorum, s.Sorry = 2, sorry(false)
	run(t, Config{Services: []Service{s}}, vsUp+" (init)", "192.0.2.11:80=1 192.0.2.12:80=1 192.0.2.13:80=1", []step{
		{check: "a", up: false, events: rs11 + " DOWN", dests: "192.0.2.12:80=1 192.0.2.13:80=1"},
		{check: "b", up: false, events: rs12 + " DOWN; " + vsDn, dests: "198.51.100.9:80=1"},
		{check: "c", up: false, events: rs13 + " DOWN", dests: "198.51.100.9:80=1"},
		{check: "a", up: true, events: rs11 + " UP", dests: "198.51.100.9:80=1"},
		{check: "c", up: true, events: rs13 + " UP; " + vsUp, dests: "192.0.2.11:80=1 192.0.2.13:80=1"},
	})
}

func TestQuorumHysteresis(t *testing.T) {
	// quorum 3, hysteresis 1: lost below 2, regained at 4.
	var reals []Real
	for i := range 5 {
		reals = append(reals, rs(byte(11+i), 1, ck(fmt.Sprint(i))))
	}
	s := service(reals...)
	s.Quorum, s.Hysteresis = 3, 1
	d, _ := New(Config{Services: []Service{s}})
	quorum := func() bool { return d.Status()[0].QuorumUp }
	for i, want := range []bool{true, true, true, false, false} { // live 4, 3, 2, 1, 0
		d.Check(fmt.Sprint(i), Result{Up: false})
		if quorum() != want {
			t.Fatalf("after %d failures: quorum %v, want %v", i+1, quorum(), want)
		}
	}
	for i, want := range []bool{false, false, false, true, true} { // live 1, 2, 3, 4, 5
		d.Check(fmt.Sprint(i), Result{Up: true})
		if quorum() != want {
			t.Fatalf("after %d recoveries: quorum %v, want %v", i+1, quorum(), want)
		}
	}
}

func TestSorryServerInhibit(t *testing.T) {
	// sorry_server_inhibit: the sorry server stays at weight 0 while it is not needed.
	// Inhibited real servers stay at 0 while the sorry server is in.
	s := service(inhibited(rs(11, 2, ck("a"))), rs(12, 1, ck("b")))
	s.Quorum, s.Sorry = 2, sorry(true)
	run(t, Config{Services: []Service{s}}, vsUp+" (init)", "192.0.2.11:80=2 192.0.2.12:80=1 198.51.100.9:80=0", []step{
		{check: "b", up: false, events: rs12 + " DOWN", dests: "192.0.2.11:80=2 198.51.100.9:80=0"},
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: "192.0.2.11:80=0 198.51.100.9:80=1"},
		{check: "a", up: true, events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=2 198.51.100.9:80=0"},
	})
}

func TestNoQuorumSettings(t *testing.T) {
	// Without quorum settings the quorum is 1: the sorry server comes in when no real
	// server is up. Without a sorry server the loss is only reported: the table keeps
	// what it has (here nothing).
	s := service(rs(11, 1, ck("a")))
	run(t, Config{Services: []Service{s}}, vsUp+" (init)", "192.0.2.11:80=1", []step{
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: ""},
	})
	s.Sorry = sorry(false)
	run(t, Config{Services: []Service{s}}, vsUp+" (init)", "192.0.2.11:80=1", []step{
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: "198.51.100.9:80=1"},
	})
}

func TestStartWithoutQuorum(t *testing.T) {
	// A service that starts below its quorum (alpha) reports it only when it has a sorry
	// server to put in: keepalived's "Starting with quorum down"; without one, nothing is
	// reported until the quorum is reached.
	s := service(rs(11, 1, alpha("a")))
	run(t, Config{Services: []Service{s}}, "", "", []step{
		{check: "a", up: true, events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=1"},
	})
	s.Sorry = sorry(false)
	run(t, Config{Services: []Service{s}}, vsDn+" (init)", "198.51.100.9:80=1", []step{
		{check: "a", up: true, events: rs11 + " UP; " + vsUp, dests: "192.0.2.11:80=1"},
	})
}

func TestSorryServerIsARealServer(t *testing.T) {
	// A sorry server at a real server's address and port shares its destination:
	// at weight 1 while it stands in, the real server's own otherwise.
	s := service(rs(11, 5, ck("a")), rs(12, 5, ck("b")))
	s.Quorum = 6
	s.Sorry = &Sorry{Dest: rs(12, 0).Dest}
	run(t, Config{Services: []Service{s}}, vsUp+" (init)", "192.0.2.11:80=5 192.0.2.12:80=5", []step{
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: "192.0.2.12:80=1"},
	})
}

func TestInitialResultsIgnored(t *testing.T) {
	// A scheduler's initial state is no result: the Director starts checkers as
	// keepalived does.
	d, _ := New(Config{Services: []Service{service(rs(11, 1, alpha("a")), rs(12, 1, ck("b")))}})
	if ev := d.Check("b", Result{Up: false, Initial: true}); len(ev) != 0 {
		t.Fatalf("initial result gave %q", lines(ev))
	}
	if ev := d.Check("a", Result{Up: true, Initial: true}); len(ev) != 0 {
		t.Fatalf("initial result gave %q", lines(ev))
	}
	if got, want := dests(d), "192.0.2.12:80=1"; got != want {
		t.Fatalf("table %q, want %q", got, want)
	}
}

func TestHASuspend(t *testing.T) {
	// keepalived 2.2.7's ha_suspend suspends the checkers while the service's address is
	// not up on the host: results are ignored and the real servers keep their state. It
	// does not remove the service from IPVS: the backup director keeps the service
	// programmed (no traffic reaches it without the address).
	s := service(rs(11, 1, ck("a")))
	s.HASuspend = true
	cfg := Config{Services: []Service{s}, Instances: map[string][]netip.Addr{"VI_1": {netip.MustParseAddr(vip)}}}
	d := run(t, cfg, vsUp+" (init)", "192.0.2.11:80=1", []step{
		{check: "a", up: false, events: "", dests: "192.0.2.11:80=1"},
		{master: "VI_2", events: "", dests: "192.0.2.11:80=1"},
		{master: "VI_1", events: "checkers resumed", dests: "192.0.2.11:80=1"},
		{check: "a", up: false, events: rs11 + " DOWN; " + vsDn, dests: ""},
		{master: "-VI_1", events: "checkers suspended", dests: ""},
		{check: "a", up: true, events: "", dests: ""},
	})
	if got := d.Suspended(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Suspended() = %q", got)
	}
	// A static address is always up.
	cfg.Static = []netip.Addr{netip.MustParseAddr(vip)}
	d, _ = New(cfg)
	if got := d.Suspended(); len(got) != 0 {
		t.Fatalf("Suspended() = %q with a static address", got)
	}
}

func TestHASuspendGroup(t *testing.T) {
	// keepalived 2.2.7 never matches a group's addresses for ha_suspend (addr_matches
	// returns early for a group), so its checkers stay suspended for ever; vigil matches
	// the group's addresses, as the code after that return means to.
	s := service(rs(11, 1, ck("a")))
	s.Keys = []ipvs.ServiceKey{ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.101:80")), ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.102:80"))}
	s.HASuspend = true
	cfg := Config{Services: []Service{s}, Instances: map[string][]netip.Addr{"VI_1": {netip.MustParseAddr("192.0.2.102")}}}
	d, _ := New(cfg)
	if ev := d.InstanceState("VI_1", true); lines(ev) != "checkers resumed" {
		t.Fatalf("events %q", lines(ev))
	}
}

func TestSyncDaemonRole(t *testing.T) {
	// The sync daemon runs as backup until its instance is master (keepalived's vrrp
	// process starts it as backup), and as both without an instance.
	cfg := Config{Services: []Service{service(rs(11, 1))}, SyncDaemon: &SyncDaemon{Interface: "eth0", Instance: "VI_1", SyncID: 5}}
	d, _ := New(cfg)
	states := func() string {
		var out []string
		for _, sd := range d.Daemons() {
			if sd.Interface != "eth0" || sd.SyncID != 5 {
				t.Fatalf("daemon %+v", sd)
			}
			out = append(out, sd.State.String())
		}
		return strings.Join(out, " ")
	}
	if states() != "backup" {
		t.Fatalf("start: %v", states())
	}
	if ev := d.InstanceState("VI_1", true); lines(ev) != "sync daemon role master" || states() != "master" {
		t.Fatalf("events %q, daemons %s", lines(ev), states())
	}
	if ev := d.InstanceState("VI_1", true); len(ev) != 0 {
		t.Fatalf("repeated state gave %q", lines(ev))
	}
	if ev := d.InstanceState("VI_1", false); lines(ev) != "sync daemon role backup" || states() != "backup" {
		t.Fatalf("events %q, daemons %s", lines(ev), states())
	}
	cfg.SyncDaemon.Instance = ""
	if ev := d.Reload(cfg); lines(ev) != "sync daemon role master+backup" || states() != "master backup" {
		t.Fatalf("events %q, daemons %s", lines(ev), states())
	}
	d.Stop()
	if states() != "" {
		t.Fatalf("sync daemons after Stop: %s", states())
	}
}

func TestGroup(t *testing.T) {
	// A virtual_server_group is one service per key, all with the same destinations; a
	// DR destination takes each key's port (none for a fwmark), a NAT one keeps its own.
	s := service(rs(11, 2), Real{Dest: Dest{Addr: netip.MustParseAddr("192.0.2.12"), Port: 8080, Method: ipvs.DR}, Weight: 1})
	s.Keys = []ipvs.ServiceKey{
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.101:80")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("192.0.2.102:443")),
		ipvs.FWMarkKey(ipvs.IPv4, 7),
	}
	d, _ := New(Config{Services: []Service{s}})
	var got []string
	tb := d.Desired()
	if err := tb.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, k := range tb.Keys() {
		got = append(got, k.String()+": "+destsOf(tb[k]))
	}
	want := []string{
		"TCP  192.0.2.101:80: 192.0.2.11:80=2 192.0.2.12:80=1",
		"TCP  192.0.2.102:443: 192.0.2.11:80=2 192.0.2.12:443=1",
		"FWM  7: 192.0.2.11:80=2 192.0.2.12:0=1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestServiceAttributes(t *testing.T) {
	s := service(rs(11, 1))
	s.Scheduler, s.Flags, s.PE, s.Netmask = "sh", ipvs.FlagSHPort, "sip", 24
	d, _ := New(Config{Services: []Service{s}})
	first := func() ipvs.Service { tb := d.Desired(); return tb[tb.Keys()[0]].Service }
	// Persistence settings go with persistence only, as keepalived sends them.
	if got, want := first(), (ipvs.Service{Key: s.Keys[0], Scheduler: "sh", Flags: ipvs.FlagSHPort}); got != want {
		t.Fatalf("not persistent: %+v, want %+v", got, want)
	}
	s.Timeout = 360
	d, _ = New(Config{Services: []Service{s}})
	want := ipvs.Service{Key: s.Keys[0], Scheduler: "sh", Flags: ipvs.FlagSHPort | ipvs.FlagPersistent, Timeout: 360, Netmask: 24, PE: "sip"}
	if got := first(); got != want {
		t.Fatalf("persistent: %+v, want %+v", got, want)
	}
}

func TestInitNotifies(t *testing.T) {
	// rs_init_notifies announces the servers that start up.
	cfg := Config{Services: []Service{service(rs(11, 1, ck("a")), rs(12, 1, alpha("b")))}, InitNotifies: true}
	_, ev := New(cfg)
	if got, want := lines(ev), rs11+" UP; "+vsUp+" (init)"; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestStop(t *testing.T) {
	// On shutdown only omega services notify: the servers that were up, then the quorum
	// down (even when it was down already). The table is emptied either way.
	for _, omega := range []bool{false, true} {
		s := service(rs(11, 1, ck("a")), rs(12, 1, ck("b")))
		s.Omega = omega
		d, _ := New(Config{Services: []Service{s}})
		d.Check("b", Result{Up: false})
		want := ""
		if omega {
			want = rs11 + " DOWN (stopping); " + vsDn + " (stopping)"
		}
		if got := lines(d.Stop()); got != want {
			t.Errorf("omega %v: events %q, want %q", omega, got, want)
		}
		if got := d.Desired(); len(got) != 0 {
			t.Errorf("omega %v: table after Stop: %+v", omega, got)
		}
		if ev := append(d.Check("b", Result{Up: true}), d.Stop()...); len(ev) != 0 {
			t.Errorf("events after Stop: %q", lines(ev))
		}
	}
}

func TestStatus(t *testing.T) {
	s := service(inhibited(rs(11, 4, ck("a"), ck("m"))))
	d, _ := New(Config{Services: []Service{s}})
	d.Check("m", Result{Up: true, Weight: w(9)})
	d.Check("a", Result{Up: false})
	st := d.Status()
	if len(st) != 1 || len(st[0].Reals) != 1 {
		t.Fatalf("status %+v", st)
	}
	r := st[0].Reals[0]
	if r.Up || r.Weight != 9 || r.Configured != 4 || !r.InTable || r.TableWeight != 0 || st[0].QuorumUp {
		t.Fatalf("real %+v", r)
	}
	if c := r.Checkers; len(c) != 2 || c[0].Up || !c[0].HasRun || !c[1].Up || c[1].Weight == nil || *c[1].Weight != 9 {
		t.Fatalf("checkers %+v", c)
	}
}

func TestStopQuiet(t *testing.T) {
	// keepalived reports on stop only the servers in the table: not those the sorry server
	// pushed out, and none when lvs_flush_on_stop empties the table at once.
	s := service(rs(11, 1, ck("a")), rs(12, 1, ck("b")), inhibited(rs(13, 1, ck("c"))))
	s.Omega, s.Quorum, s.Sorry = true, 3, sorry(false)
	d, _ := New(Config{Services: []Service{s}})
	d.Check("a", Result{Up: false})
	if got, want := lines(d.Stop()), rs13+" DOWN (stopping); "+vsDn+" (stopping)"; got != want {
		t.Errorf("sorry server in: events %q, want %q", got, want)
	}
	d, _ = New(Config{Services: []Service{s}, FlushOnStop: "full"})
	if got, want := lines(d.Stop()), vsDn+" (stopping)"; got != want {
		t.Errorf("flush on stop: events %q, want %q", got, want)
	}
}
