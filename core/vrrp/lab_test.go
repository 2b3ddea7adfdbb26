package vrrp_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// These tests run real vigil processes in network namespaces that each test creates, on a
// bridge, and assert who holds the virtual address with `ip addr`, not what the logs say.

var vigilBin string

func TestMain(m *testing.M) { os.Exit(lab.TestMain(m, &vigilBin)) }

type testLab struct {
	*lab.Lab
	t   *testing.T
	ctx context.Context
	dir string
}

func newLab(t *testing.T, n int) *testLab {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("skipping namespace test: %v", err)
	}
	if vigilBin == "" {
		// lab.TestMain builds vigil only when the binary runs tests: a fuzz run's -run
		// pattern can still select a lab test (-run x matches TestVirtualRoutesAndExcluded...).
		t.Skip("skipping namespace test: vigil was not built (the test binary is fuzzing or listing)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	if len(name) > 8 {
		name = name[:8]
	}
	dir := t.TempDir()
	l, err := lab.New(ctx, name, n, dir)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLab{Lab: l, t: t, ctx: ctx, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			tl.dumpLogs()
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return tl
}

func (l *testLab) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		l.t.Logf("--- %s\n%s", filepath.Base(f), b)
	}
}

// start writes conf for node i and runs vigil on it.
func (l *testLab) start(i int, conf string) *lab.Proc {
	l.t.Helper()
	nd := l.Nodes[i]
	path := filepath.Join(l.dir, nd.Name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	if out, err := exec.Command(vigilBin, "-t", "-f", path).CombinedOutput(); err != nil {
		l.t.Fatalf("config for %s rejected: %v\n%s", nd.Name, err, out)
	}
	// Each node gets its own pid file and control socket: the namespaces share one filesystem.
	p, err := nd.Start(vigilBin, "-f", path, "-D", "-p", l.pidFile(i), "--control", l.socket(i))
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

func (l *testLab) pidFile(i int) string { return filepath.Join(l.dir, l.Nodes[i].Name+".pid") }
func (l *testLab) socket(i int) string  { return filepath.Join(l.dir, l.Nodes[i].Name+".sock") }

// addUplinks gives every node a second link, "uplink", to track. A veth pair stands in for
// it: this kernel may lack the dummy driver.
func (l *testLab) addUplinks() {
	l.t.Helper()
	for _, nd := range l.Nodes {
		for _, c := range [][]string{
			{"ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer"},
			{"ip", "link", "set", "uplink-peer", "up"},
			{"ip", "link", "set", "uplink", "up"},
		} {
			if _, err := nd.Exec(l.ctx, c[0], c[1:]...); err != nil {
				l.t.Fatal(err)
			}
		}
	}
}

// holders lists the nodes that carry addr.
func (l *testLab) holders(addr netip.Addr) []string {
	var hs []string
	for _, nd := range l.Nodes {
		ok, err := nd.HasAddr(l.ctx, addr)
		if err != nil {
			l.t.Fatal(err)
		}
		if ok {
			hs = append(hs, nd.Name)
		}
	}
	return hs
}

// waitHolder waits until exactly want holds addr, and returns how long that took.
func (l *testLab) waitHolder(addr netip.Addr, want string, timeout time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	var last []string
	for time.Since(start) < timeout {
		last = l.holders(addr)
		if len(last) == 1 && last[0] == want || (want == "" && len(last) == 0) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("after %s %s is held by %v, want %q", timeout, addr, last, want)
	return 0
}

// stable asserts that addr stays with want for d.
func (l *testLab) stable(addr netip.Addr, want string, d time.Duration) {
	l.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if h := l.holders(addr); len(h) != 1 || h[0] != want {
			l.t.Fatalf("%s held by %v, want only %s", addr, h, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type inst struct {
	name      string
	vrid      int
	prio      int
	advert    string
	version   int
	vip       string
	extra     string
	iface     string
	unicastTo []netip.Addr
	src       netip.Addr
	state     string // keepalived's "state"; BACKUP when empty
}

func (in inst) conf() string {
	if in.name == "" {
		in.name = "VI_1"
	}
	if in.iface == "" {
		in.iface = "eth0"
	}
	if in.advert == "" {
		in.advert = "1"
	}
	if in.version == 0 {
		in.version = 2
	}
	if in.state == "" {
		in.state = "BACKUP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp_instance %s {\n    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int %s\n    version %d\n",
		in.name, in.state, in.iface, in.vrid, in.prio, in.advert, in.version)
	if len(in.unicastTo) > 0 {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", in.src)
		for _, p := range in.unicastTo {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n")
	}
	b.WriteString(in.extra)
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s\n    }\n}\n", in.vip)
	return b.String()
}

var vip4 = netip.MustParseAddr("192.0.2.100")

func TestElectionAndFailoverOnKill(t *testing.T) {
	l := newLab(t, 2)
	p1 := l.start(0, inst{vrid: 51, prio: 150, vip: "192.0.2.100/24"}.conf())
	l.start(1, inst{vrid: 51, prio: 100, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	l.stable(vip4, "n1", 2*time.Second)

	// kill -9 of all of n1's vigil processes (core and children, one process group), as
	// when the node crashes: no goodbye advert, so the backup waits Master_Down_Interval
	// (3 x 1 s + (256-100)/256 s for VRRPv2) before taking over.
	killed := time.Now()
	if err := syscall.Kill(-p1.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p1.Wait(5 * time.Second)
	// The dead process leaves its address behind, as a crashed keepalived would; what
	// matters is that the backup takes the address over.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := l.Nodes[1].HasAddr(l.ctx, vip4)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backup did not take over after the master was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(killed)
	if took < 3*time.Second {
		t.Errorf("backup took over after %s, earlier than Master_Down_Interval (3.6 s)", took)
	}
	t.Logf("takeover %s after kill -9", took)
}

// TestGracefulStopHandsOver: a master stopped by SIGTERM resigns with a priority 0 advert,
// and the backup takes over because of it (after Skew_Time, not Master_Down_Interval): n2's
// log gives the reason of its transition, which a takeover by the Master_Down_Timer (as if
// n1 had just gone silent) gives differently. No clock is read: on a loaded machine both
// take longer, and only the reason tells them apart.
func TestGracefulStopHandsOver(t *testing.T) {
	l := newLab(t, 2)
	p1 := l.start(0, inst{vrid: 52, prio: 150, vip: "192.0.2.100/24"}.conf())
	p2 := l.start(1, inst{vrid: 52, prio: 100, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n1", 30*time.Second)
	stopped := time.Now()
	if err := p1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took := l.waitHolder(vip4, "n2", 30*time.Second)
	if err := p1.Wait(30 * time.Second); err != nil {
		t.Errorf("vigil did not exit cleanly on SIGTERM: %v", err)
	}
	// The transition is logged after the addresses moved: wait for the line. Core's ("vigil:"),
	// not the vrrp child's that core relays ("vigil.vrrp.vigil:"), which says the same.
	var changes []string
	for deadline := time.Now().Add(30 * time.Second); len(changes) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		for line := range strings.Lines(p2.Output()) {
			if strings.Contains(line, " vigil: state change:") && strings.Contains(line, "to=MASTER") {
				changes = append(changes, strings.TrimSpace(line))
			}
		}
	}
	if len(changes) != 1 || !strings.Contains(changes[0], `reason="master resigned (priority 0 advert)"`) {
		t.Errorf("n2's transitions to MASTER: %q; want one, because n1 resigned", changes)
	}
	t.Logf("handover %s after SIGTERM (%s)", took, time.Since(stopped))
}

func TestLinkCutFailover(t *testing.T) {
	l := newLab(t, 2)
	l.start(0, inst{vrid: 53, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	l.start(1, inst{vrid: 53, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	if err := l.Nodes[0].SetLink(l.ctx, false); err != nil {
		t.Fatal(err)
	}
	// n1 sees its interface down: FAULT, address removed; n2 stops hearing adverts.
	l.waitHolder(vip4, "n2", 5*time.Second)
	if err := l.Nodes[0].SetLink(l.ctx, true); err != nil {
		t.Fatal(err)
	}
	// With preemption (the default) the higher priority takes the address back.
	l.waitHolder(vip4, "n1", 5*time.Second)
}

func TestNoPreempt(t *testing.T) {
	l := newLab(t, 2)
	l.start(1, inst{vrid: 54, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: "    nopreempt\n"}.conf())
	l.waitHolder(vip4, "n2", 10*time.Second)
	l.start(0, inst{vrid: 54, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: "    nopreempt\n"}.conf())
	l.stable(vip4, "n2", 3*time.Second)
}

func TestPreemptDelay(t *testing.T) {
	l := newLab(t, 2)
	l.start(1, inst{vrid: 55, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n2", 10*time.Second)
	started := time.Now()
	l.start(0, inst{vrid: 55, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: "    preempt_delay 3\n"}.conf())
	l.stable(vip4, "n2", 2*time.Second)
	l.waitHolder(vip4, "n1", 6*time.Second)
	if d := time.Since(started); d < 3*time.Second {
		t.Errorf("preempted after %s, before preempt_delay 3 s", d)
	}
}

func TestUnicast(t *testing.T) {
	l := newLab(t, 2)
	a1, a2 := l.Nodes[0].Addr4.Addr(), l.Nodes[1].Addr4.Addr()
	l.start(0, inst{vrid: 56, prio: 150, vip: "192.0.2.100/24", src: a1, unicastTo: []netip.Addr{a2}, extra: "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n"}.conf())
	p2 := l.start(1, inst{vrid: 56, prio: 100, vip: "192.0.2.100/24", src: a2, unicastTo: []netip.Addr{a1}, extra: "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n"}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	l.stable(vip4, "n1", 3*time.Second)
	if strings.Contains(p2.Output(), "advert dropped") {
		t.Errorf("backup dropped adverts:\n%s", p2.Output())
	}
}

func TestIPv6(t *testing.T) {
	l := newLab(t, 2)
	vip6 := netip.MustParseAddr("2001:db8::100")
	l.start(0, inst{vrid: 57, prio: 150, advert: "0.2", version: 3, vip: "2001:db8::100/64"}.conf())
	p2 := l.start(1, inst{vrid: 57, prio: 100, advert: "0.2", version: 3, vip: "2001:db8::100/64"}.conf())
	l.waitHolder(vip6, "n1", 10*time.Second)
	l.stable(vip6, "n1", 2*time.Second)
	if err := l.Nodes[0].SetLink(l.ctx, false); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip6, "n2", 5*time.Second)
	_ = p2
}

func TestThreeNodesElectHighest(t *testing.T) {
	l := newLab(t, 3)
	for i, prio := range []int{100, 200, 150} {
		l.start(i, inst{vrid: 58, prio: prio, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	}
	l.waitHolder(vip4, "n2", 10*time.Second)
	l.stable(vip4, "n2", 2*time.Second)
	if err := l.Nodes[1].Cut(l.ctx, true); err != nil {
		t.Fatal(err)
	}
	// n2 is partitioned away (it keeps its address on its side); of the others, n3 wins.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, _ := l.Nodes[2].HasAddr(l.ctx, vip4)
		bad, _ := l.Nodes[0].HasAddr(l.ctx, vip4)
		if bad {
			t.Fatal("n1 (lowest priority) took the address")
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("n3 did not take over from the partitioned master")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTrackInterfaceDemotion(t *testing.T) {
	l := newLab(t, 2)
	l.addUplinks()
	track := "    track_interface {\n        uplink weight -60\n    }\n"
	l.start(0, inst{vrid: 59, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: track}.conf())
	l.start(1, inst{vrid: 59, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: track}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	if _, err := l.Nodes[0].Exec(l.ctx, "ip", "link", "set", "uplink", "down"); err != nil {
		t.Fatal(err)
	}
	// 150 - 60 = 90 < 100: n2 preempts.
	l.waitHolder(vip4, "n2", 5*time.Second)
	if _, err := l.Nodes[0].Exec(l.ctx, "ip", "link", "set", "uplink", "up"); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n1", 5*time.Second)
}

func TestSyncGroupMovesTogether(t *testing.T) {
	l := newLab(t, 2)
	vipA, vipB := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.101")
	l.addUplinks()
	conf := func(prio int) string {
		// Only VI_B tracks the uplink (weight 0: FAULT when it is down); the sync group
		// must take VI_A along.
		return "vrrp_sync_group G {\n    group {\n        VI_A\n        VI_B\n    }\n}\n" +
			inst{name: "VI_A", vrid: 60, prio: prio, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf() +
			inst{name: "VI_B", vrid: 61, prio: prio, advert: "0.2", version: 3, vip: "192.0.2.101/24",
				extra: "    track_interface {\n        uplink\n    }\n"}.conf()
	}
	l.start(0, conf(150))
	l.start(1, conf(100))
	l.waitHolder(vipA, "n1", 10*time.Second)
	l.waitHolder(vipB, "n1", 5*time.Second)
	if _, err := l.Nodes[0].Exec(l.ctx, "ip", "link", "set", "uplink", "down"); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vipB, "n2", 5*time.Second)
	l.waitHolder(vipA, "n2", 5*time.Second)
	l.stable(vipA, "n2", time.Second)
	if _, err := l.Nodes[0].Exec(l.ctx, "ip", "link", "set", "uplink", "up"); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vipA, "n1", 5*time.Second)
	l.waitHolder(vipB, "n1", 5*time.Second)
}

func TestTrackFile(t *testing.T) {
	l := newLab(t, 2)
	file := filepath.Join(l.dir, "maintenance")
	track := fmt.Sprintf("track_file maint {\n    file %s\n    weight -60\n}\n", file)
	ref := "    track_file {\n        maint\n    }\n"
	l.start(0, track+inst{vrid: 62, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: ref}.conf())
	l.start(1, inst{vrid: 62, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	// Writing 1 puts n1 in maintenance: 150 + 1 x -60 = 90 < 100.
	if err := os.WriteFile(file+".tmp", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil { // an editor's atomic replace
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n2", 5*time.Second)
	if err := os.WriteFile(file, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n1", 5*time.Second)
}

func TestTrackScript(t *testing.T) {
	l := newLab(t, 2)
	flag := filepath.Join(l.dir, "db-ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// weight 0: while the check fails the instance is in FAULT and gives the address up.
	script := fmt.Sprintf("vrrp_script chk_db {\n    script \"/usr/bin/test -e %s\"\n    interval 0.1\n    fall 2\n    rise 2\n}\n", flag)
	ref := "    track_script {\n        chk_db\n    }\n"
	l.start(0, script+inst{vrid: 63, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: ref}.conf())
	l.start(1, inst{vrid: 63, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n2", 5*time.Second)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n1", 5*time.Second)
}

func TestVirtualRoutesAndExcludedAddresses(t *testing.T) {
	l := newLab(t, 2)
	extra := "    virtual_ipaddress_excluded {\n        2001:db8:1::1/64\n    }\n" +
		"    virtual_routes {\n        203.0.113.0/24 via 192.0.2.1\n        blackhole 198.51.100.0/24\n    }\n"
	l.start(0, inst{vrid: 64, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: extra}.conf())
	l.start(1, inst{vrid: 64, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: extra}.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	excluded := netip.MustParseAddr("2001:db8:1::1")
	l.waitHolder(excluded, "n1", 2*time.Second)
	routes := func(i int) string {
		out, err := l.Nodes[i].Exec(l.ctx, "ip", "route", "show")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, want := range []string{"203.0.113.0/24 via 192.0.2.1", "blackhole 198.51.100.0/24"} {
		if !strings.Contains(routes(0), want) {
			t.Errorf("master lacks route %q:\n%s", want, routes(0))
		}
		if strings.Contains(routes(1), want) {
			t.Errorf("backup has route %q:\n%s", want, routes(1))
		}
	}
	if err := l.Nodes[0].SetLink(l.ctx, false); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n2", 5*time.Second)
	l.waitHolder(excluded, "n2", 2*time.Second)
	if !strings.Contains(routes(1), "blackhole 198.51.100.0/24") {
		t.Errorf("new master lacks the blackhole route:\n%s", routes(1))
	}
	if strings.Contains(routes(0), "blackhole 198.51.100.0/24") {
		t.Errorf("old master kept the blackhole route:\n%s", routes(0))
	}
}
