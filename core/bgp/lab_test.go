package bgp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab"
)

// End to end: vigil nodes, each on a link of its own, announce their virtual addresses to a
// real router (FRR's bgpd in the router namespace of a routed lab), and a client reaches
// them through it. Nothing here shares L2 but a node and the router.

var vigilBin string

func TestMain(m *testing.M) { os.Exit(lab.TestMain(m, &vigilBin)) }

// buildSpeaker builds vigil-bgp beside vigil: the tests' plugin_dir.
var buildSpeaker = sync.OnceValue(func() error {
	_, err := lab.BuildCommand(filepath.Dir(vigilBin), "vigil-bgp")
	return err
})

const (
	routerAS = 64512
	nodeAS   = 64513
	// servicePort is where every node answers its name, on every address.
	servicePort = 7000
)

type bgpLab struct {
	*lab.Lab
	t   *testing.T
	ctx context.Context
	dir string
	frr *lab.FRR
}

// newBGPLab builds a routed lab of n nodes with bgpd on the router, peering with every node
// over IPv4 (and IPv6 when v6) with the extra lines of each neighbor, and a service on every
// node that answers its name.
func newBGPLab(t *testing.T, n int, neighborExtra func(i int, v6 bool) string, v6 bool) *bgpLab {
	t.Helper()
	if err := lab.Available(); err != nil {
		t.Skipf("skipping namespace test: %v", err)
	}
	if vigilBin == "" {
		t.Skip("skipping namespace test: vigil was not built (the test binary is fuzzing or listing)")
	}
	if err := lab.FRRDaemonsAvailable("bgpd"); err != nil {
		t.Skipf("skipping BGP test: %v", err)
	}
	if err := buildSpeaker(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "TestBGP"))
	if len(name) > 8 {
		name = name[:8]
	}
	dir := t.TempDir()
	l, err := lab.NewRouted(ctx, name, n, dir)
	if err != nil {
		t.Fatal(err)
	}
	bl := &bgpLab{Lab: l, t: t, ctx: ctx, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			bl.dumpLogs()
		}
		if bl.frr != nil {
			bl.frr.Stop()
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	// bgpd: eBGP to every node, no policy needed (FRR 8 otherwise sends and takes nothing
	// over eBGP), ECMP across the nodes, fast timers and reconnects.
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname router\n!\nrouter bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n bgp bestpath as-path multipath-relax\n", routerAS, l.Router.Addr4.Addr())
	for i, nd := range l.Nodes {
		for _, a := range []netip.Addr{nd.Addr4.Addr(), nd.Addr6.Addr()} {
			if a.Is6() && !v6 {
				continue
			}
			fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers 1 3\n neighbor %s timers connect 1\n", a, nodeAS, a, a)
			if neighborExtra != nil {
				for _, line := range strings.Split(strings.TrimSpace(neighborExtra(i+1, a.Is6())), "\n") {
					if line != "" {
						fmt.Fprintf(&b, " neighbor %s %s\n", a, line)
					}
				}
			}
		}
	}
	b.WriteString(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n")
	if v6 {
		b.WriteString(" address-family ipv6 unicast\n  maximum-paths 8\n")
		for _, nd := range l.Nodes {
			fmt.Fprintf(&b, "  neighbor %s activate\n", nd.Addr6.Addr())
		}
		b.WriteString(" exit-address-family\n")
	}
	// ECMP by ports too, so that one client's connections spread over the paths (the
	// router's namespace only).
	if _, err := l.Router.Exec(ctx, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"); err != nil {
		t.Fatal(err)
	}
	bl.frr, err = l.Router.StartFRRDaemons(ctx, lab.FRRDaemon{Name: "bgpd", Conf: b.String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range l.Nodes {
		bl.serve(nd)
	}
	return bl
}

// serve answers every connection to servicePort on nd with nd's name.
func (l *bgpLab) serve(nd *lab.Node) {
	ln, err := lab.ListenIn(nd.NS, "tcp", fmt.Sprintf(":%d", servicePort))
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, nd.Name)
			c.Close()
		}
	}()
}

// ask connects from the client to addr's service and returns the name of the node that
// answered, or "" when none did within 200 ms.
func (l *bgpLab) ask(addr netip.Addr) string {
	ctx, cancel := context.WithTimeout(l.ctx, 200*time.Millisecond)
	defer cancel()
	c, err := lab.DialIn(ctx, l.Client.NS, "tcp", netip.AddrPortFrom(addr, servicePort).String())
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// answer is one of the prober's answers: who answered (or ""), and when.
type answer struct {
	who string
	at  time.Time
}

// prober asks an address every 10 ms and keeps the answers.
type prober struct {
	mu   sync.Mutex
	as   []answer
	done chan struct{}
	out  chan struct{}
}

// probe starts asking addr every 10 ms until stop.
func (l *bgpLab) probe(addr netip.Addr) *prober {
	p := &prober{done: make(chan struct{}), out: make(chan struct{})}
	go func() {
		defer close(p.out)
		for {
			select {
			case <-p.done:
				return
			default:
			}
			a := answer{l.ask(addr), time.Now()}
			p.mu.Lock()
			p.as = append(p.as, a)
			p.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return p
}

// heard waits until the prober's last answer came from who, failing the test after bound.
func (p *prober) heard(l *bgpLab, who string, bound time.Duration) {
	l.t.Helper()
	l.waitFor("the client reaches "+who, bound, func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := len(p.as)
		return n > 0 && p.as[n-1].who == who, fmt.Sprintf("%d answers", n)
	})
}

// stopAfter waits until the prober heard who, then stops it and returns the answers.
func (p *prober) stopAfter(l *bgpLab, who string, bound time.Duration) []answer {
	l.t.Helper()
	p.heard(l, who, bound)
	close(p.done)
	<-p.out
	return p.as
}

// outage is the client's view of a move from one node to another: the time from the last
// answer of from to the first answer of to after it.
func outage(as []answer, from, to string) (time.Duration, bool) {
	var last time.Time
	for _, a := range as {
		switch a.who {
		case from:
			last = a.at
		case to:
			if !last.IsZero() {
				return a.at.Sub(last), true
			}
		}
	}
	return 0, false
}

// waitFor polls cond every 50 ms until it holds, failing the test after bound.
func (l *bgpLab) waitFor(what string, bound time.Duration, cond func() (bool, string)) {
	l.t.Helper()
	deadline := time.Now().Add(bound)
	last := ""
	for {
		ok, now := cond()
		if ok {
			return
		}
		last = now
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: not after %v; last seen: %s", what, bound, last)
		}
		select {
		case <-l.ctx.Done():
			l.t.Fatalf("%s: %v; last seen: %s", what, l.ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// paths returns the peers bgpd has a path for prefix from.
func (l *bgpLab) paths(prefix netip.Prefix) ([]netip.Addr, lab.BGPRoute) {
	r, ok, err := l.frr.BGPRoute(l.ctx, prefix)
	if err != nil {
		l.t.Fatal(err)
	}
	if !ok {
		return nil, r
	}
	var peers []netip.Addr
	for _, p := range r.Paths {
		peers = append(peers, p.Peer)
	}
	slices.SortFunc(peers, netip.Addr.Compare)
	return peers, r
}

// nextHops returns the next hops zebra installed for prefix (two for ECMP).
func (l *bgpLab) nextHops(prefix netip.Prefix) []netip.Addr {
	rs, err := l.frr.ZebraRoutes(l.ctx, prefix.Addr().Is6())
	if err != nil {
		l.t.Fatal(err)
	}
	for _, r := range rs {
		if r.Prefix == prefix {
			hs := r.ActiveNextHops()
			slices.SortFunc(hs, netip.Addr.Compare)
			return hs
		}
	}
	return nil
}

// node is one vigil of the lab.
type node struct {
	l    *bgpLab
	i    int // from 1
	nd   *lab.Node
	proc *lab.Proc
	conf string
}

func (n *node) file(ext string) string { return filepath.Join(n.l.dir, n.nd.Name+ext) }

// setCheck writes the node's track file: 0 is healthy, 1 fails (weight 0: FAULT).
func (n *node) setCheck(ok bool) {
	v := "1\n"
	if ok {
		v = "0\n"
	}
	if err := os.WriteFile(n.file(".check"), []byte(v), 0o644); err != nil {
		n.l.t.Fatal(err)
	}
}

// start writes the node's configuration (global_defs bgp block from bgpExtra, the instance
// from instance) and runs vigil in the node.
func (l *bgpLab) start(i int, neighbors, instance string) *node {
	l.t.Helper()
	nd := l.Nodes[i-1]
	n := &node{l: l, i: i, nd: nd}
	n.setCheck(true)
	path := n.write(neighbors, instance)
	p, err := nd.Start(vigilBin, "-f", path, "-D", "-p", n.file(".pid"), "--control", n.file(".sock"))
	if err != nil {
		l.t.Fatal(err)
	}
	n.proc = p
	l.t.Cleanup(func() {
		if !p.Exited() {
			p.Signal(syscall.SIGTERM)
			if p.Wait(30*time.Second) != nil {
				p.Kill()
			}
		}
		if l.t.Failed() {
			l.t.Logf("--- vigil on %s\n%s", nd.Name, tail(p.Output(), 6000))
		}
	})
	return n
}

// write writes the node's configuration, checked with vigil -t, and returns its path: a
// bgp block with neighbors (none when neighbors is "-") and the instance.
func (n *node) write(neighbors, instance string) string {
	n.l.t.Helper()
	bgp := ""
	if neighbors != "-" {
		bgp = fmt.Sprintf("    bgp {\n        local_as %d\n        router_id %s\n        graceful_shutdown 2\n%s\n    }\n", nodeAS, n.nd.Addr4.Addr(), neighbors)
	}
	n.conf = fmt.Sprintf("global_defs {\n    router_id %s\n    plugin_dir %s\n%s}\nvrrp_track_file check {\n    file %s\n}\n%s\n",
		n.nd.Name, filepath.Dir(vigilBin), bgp, n.file(".check"), instance)
	path := n.file(".conf")
	if err := os.WriteFile(path, []byte(n.conf), 0o644); err != nil {
		n.l.t.Fatal(err)
	}
	if out, err := exec.Command(vigilBin, "-t", "-f", path).CombinedOutput(); err != nil {
		n.l.t.Fatalf("config for %s rejected: %v\n%s", n.nd.Name, err, out)
	}
	return path
}

// reload has the node's vigil reload its file (written with write), failing the test when
// the reload is refused.
func (n *node) reload() {
	n.l.t.Helper()
	if out, err := exec.Command(vigilBin, "reload", "--control", n.file(".sock")).CombinedOutput(); err != nil {
		n.l.t.Fatalf("vigil reload on %s: %v\n%s", n.nd.Name, err, out)
	}
}

// routerNeighbor is the bgp block's neighbor for nd's router, over IPv4 or IPv6.
func routerNeighbor(nd *lab.Node, v6 bool, extra string) string {
	gw := nd.Gateway4
	if v6 {
		gw = nd.Gateway6
	}
	return fmt.Sprintf("        neighbor %s {\n            remote_as %d\n            hold_time 3\n            connect_retry 1\n%s        }\n", gw, routerAS, extra)
}

func (n *node) status() supervisor.Status {
	n.l.t.Helper()
	out, err := exec.Command(vigilBin, "status", "--json", "--control", n.file(".sock")).Output()
	if err != nil {
		return supervisor.Status{}
	}
	var st supervisor.Status
	if err := json.Unmarshal(out, &st); err != nil {
		n.l.t.Fatalf("status of %s: %v\n%s", n.nd.Name, err, out)
	}
	return st
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (l *bgpLab) dumpLogs() {
	if l.frr != nil {
		l.t.Logf("--- FRR\n%s", tail(l.frr.Output(), 6000))
	}
}

// instance is a vrrp_instance on the node's link with the virtual address on VIPIface and the
// track file, announcing in mode, with more lines.
func instance(nd *lab.Node, prio int, vip netip.Prefix, mode, more string) string {
	return fmt.Sprintf(`vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id 51
    priority %d
    advert_int 1
%s
    virtual_ipaddress {
        %s dev %s
    }
    track_file {
        check weight 0
    }
    announce {
        mode %s
    }
}
`, nd.Iface, prio, more, vip, lab.VIPIface, mode)
}

// TestBGPActiveBackup: two nodes on links of their own run one virtual router over unicast
// VRRP through the router; the master alone announces the address. The master's check fails:
// the route moves to the other node, and the client follows. The first node's check passes
// again and it takes the address back (preempt); then its vigil is killed, and the route
// moves again, after a graceful shutdown FRR sees.
func TestBGPActiveBackup(t *testing.T) {
	l := newBGPLab(t, 2, nil, false)
	vip := lab.RoutedVIP(1, false)
	n1n, n2n := l.Nodes[0], l.Nodes[1]
	peers := func(src, peer *lab.Node) string {
		return fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }", src.Addr4.Addr(), peer.Addr4.Addr())
	}
	n1 := l.start(1, routerNeighbor(n1n, false, ""), instance(n1n, 150, vip, "master", peers(n1n, n2n)))
	l.start(2, routerNeighbor(n2n, false, ""), instance(n2n, 100, vip, "master", peers(n2n, n1n)))

	only := func(who *lab.Node) func() (bool, string) {
		return func() (bool, string) {
			ps, _ := l.paths(vip)
			return len(ps) == 1 && ps[0] == who.Addr4.Addr(), fmt.Sprintf("paths from %v", ps)
		}
	}
	l.waitFor("bgpd has the address from n1 alone", 60*time.Second, only(n1n))
	l.waitFor("the client reaches n1", 10*time.Second, func() (bool, string) { w := l.ask(vip.Addr()); return w == "n1", w })
	_, r := l.paths(vip)
	if p, _ := r.BestPath(); len(p.NextHops) == 0 || p.NextHops[0] != n1n.Addr4.Addr() {
		t.Errorf("next hop %v, want n1's address %s (next hop self)", p.NextHops, n1n.Addr4.Addr())
	}

	// The master's check fails: FAULT withdraws, the backup takes over and announces.
	pr := l.probe(vip.Addr())
	pr.heard(l, "n1", 10*time.Second)
	failed := time.Now()
	n1.setCheck(false)
	l.waitFor("bgpd has the address from n2 alone", 30*time.Second, only(n2n))
	withdrawn := time.Since(failed)
	as := pr.stopAfter(l, "n2", 10*time.Second)
	out, ok := outage(as, "n1", "n2")
	if !ok {
		t.Fatalf("the client never moved from n1 to n2: %v", as)
	}
	t.Logf("check failed on the master: route from n2 alone at bgpd after %v; client outage %v", withdrawn.Round(time.Millisecond), out.Round(time.Millisecond))

	// n1 healthy again takes the address back (priority 150 > 100, preempting).
	n1.setCheck(true)
	l.waitFor("bgpd has the address from n1 alone again", 30*time.Second, only(n1n))

	// Its vigil is killed: its vrrp process drains the route first (GRACEFUL_SHUTDOWN, which
	// bgpd must show on n1's path), then resigns; n2 takes over.
	var sawGshut sync.WaitGroup
	gshut := make(chan bool, 1)
	sawGshut.Add(1)
	watchCtx, stopWatch := context.WithCancel(l.ctx)
	go func() {
		defer sawGshut.Done()
		for watchCtx.Err() == nil {
			_, r := l.paths(vip)
			for _, p := range r.Paths {
				if p.Peer == n1n.Addr4.Addr() && gracefulShutdown(p.Communities) {
					gshut <- true
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		gshut <- false
	}()
	pr = l.probe(vip.Addr())
	pr.heard(l, "n1", 10*time.Second)
	if err := n1.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.waitFor("bgpd has the address from n2 alone after n1 was killed", 30*time.Second, only(n2n))
	as = pr.stopAfter(l, "n2", 10*time.Second)
	stopWatch()
	sawGshut.Wait()
	if !<-gshut {
		t.Error("bgpd never showed the graceful-shutdown community on n1's path before it went")
	}
	if out, ok := outage(as, "n1", "n2"); ok {
		t.Logf("master's vigil killed: client outage %v", out.Round(time.Millisecond))
	}
}

// TestBGPAnycast: two nodes announce the same address, each healthy; bgpd installs both
// paths (ECMP). One node's check (a vrrp_script of weight 0) fails: its path leaves; it
// passes again, three times (rise 3): the path is back. A demote drains the node's path
// with GRACEFUL_SHUTDOWN before it leaves; a promote brings it back.
func TestBGPAnycast(t *testing.T) {
	l := newBGPLab(t, 2, nil, true)
	vip := lab.RoutedVIP(2, false)
	vip6 := lab.RoutedVIP(2, true)
	var ns []*node
	for i, nd := range l.Nodes {
		nb := routerNeighbor(nd, false, "") + routerNeighbor(nd, true, "")
		in := strings.Replace(instance(nd, 100, vip, "anycast", ""), "mode anycast", "mode anycast\n        med priority", 1)
		// The check here is a vrrp_script run by the check process, with a rise of 3: the
		// path comes back only after three passing probes in a row.
		in = strings.Replace(in, "    track_file {\n        check weight 0\n    }\n", "    track_script {\n        chk\n    }\n", 1)
		in = fmt.Sprintf("vrrp_script chk {\n    script \"/bin/grep -qx 0 %s\"\n    interval 0.2\n    rise 3\n    fall 1\n}\n", filepath.Join(l.dir, nd.Name+".check")) + in
		// One instance carries one family in VRRP; the other goes in the excluded list,
		// which is announced all the same.
		in = strings.Replace(in, "    announce {", fmt.Sprintf("    virtual_ipaddress_excluded {\n        %s dev %s\n    }\n    announce {", vip6, lab.VIPIface), 1)
		for _, want := range []string{"med priority", "track_script", "virtual_ipaddress_excluded"} {
			if !strings.Contains(in, want) {
				t.Fatalf("the test's instance lacks %s:\n%s", want, in)
			}
		}
		// As docs/bgp.md asks of anycast nodes: the addresses on lo too, so that a node that
		// announces (MASTER or BACKUP) takes the traffic; VRRP adds its own copy on vip0.
		// Without them a node announces while still BACKUP, before VRRP added its copy, and
		// the kernel drops what reaches it (IpInAddrErrors: 8 of 200 connections).
		for _, a := range []netip.Prefix{vip, vip6} {
			if _, err := nd.Exec(l.ctx, "ip", "addr", "add", a.String(), "dev", "lo"); err != nil {
				t.Fatal(err)
			}
		}
		ns = append(ns, l.start(i+1, nb, in))
	}
	both := func(p netip.Prefix, want int) func() (bool, string) {
		return func() (bool, string) {
			hs := l.nextHops(p)
			return len(hs) == want, fmt.Sprintf("next hops %v", hs)
		}
	}
	l.waitFor("zebra has two next hops for the IPv4 address", 60*time.Second, both(vip, 2))
	l.waitFor("zebra has two next hops for the IPv6 address", 30*time.Second, both(vip6, 2))
	_, r := l.paths(vip)
	for _, p := range r.Paths {
		if !p.HasMED || p.MED != 155 {
			t.Errorf("path from %s: MED %d (set %v), want 255 - priority 100 = 155", p.Peer, p.MED, p.HasMED)
		}
	}
	// 50 connections hashed by ports over two paths: both nodes answer some.
	seen := map[string]int{}
	for range 50 {
		seen[l.ask(vip.Addr())]++
	}
	t.Logf("answers of 50 connections through ECMP (\"\": none in 200 ms): %v", seen)
	if seen["n1"] == 0 || seen["n2"] == 0 {
		t.Errorf("ECMP: answers %v, want both nodes", seen)
	}

	failed := time.Now()
	ns[0].setCheck(false)
	l.waitFor("n1's path leaves", 30*time.Second, func() (bool, string) {
		hs := l.nextHops(vip)
		return len(hs) == 1 && hs[0] == l.Nodes[1].Addr4.Addr(), fmt.Sprintf("next hops %v", hs)
	})
	t.Logf("check failed on n1: its path left zebra after %v", time.Since(failed).Round(time.Millisecond))
	l.waitFor("the IPv6 path of n1 leaves too", 30*time.Second, both(vip6, 1))
	for range 20 {
		if w := l.ask(vip.Addr()); w != "n2" {
			t.Fatalf("with n1 failed the client reached %q", w)
		}
	}
	ns[0].setCheck(true)
	l.waitFor("n1's path is back", 30*time.Second, both(vip, 2))

	// vigil demote drains: n1's path carries GRACEFUL_SHUTDOWN (while n1 still serves)
	// before it leaves; vigil promote brings it back.
	demoted := make(chan error, 1)
	go func() {
		out, err := exec.Command(vigilBin, "demote", "VI_1", "--control", ns[0].file(".sock")).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		demoted <- err
	}()
	l.waitFor("n1's path carries GRACEFUL_SHUTDOWN after vigil demote", 10*time.Second, func() (bool, string) {
		_, r := l.paths(vip)
		for _, p := range r.Paths {
			if p.Peer == l.Nodes[0].Addr4.Addr() && gracefulShutdown(p.Communities) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("paths %+v", r.Paths)
	})
	if err := <-demoted; err != nil {
		t.Fatalf("vigil demote: %v", err)
	}
	l.waitFor("n1's path leaves after vigil demote", 10*time.Second, both(vip, 1))
	if out, err := exec.Command(vigilBin, "promote", "VI_1", "--control", ns[0].file(".sock")).CombinedOutput(); err != nil {
		t.Fatalf("vigil promote: %v: %s", err, out)
	}
	l.waitFor("n1's path is back after vigil promote", 30*time.Second, both(vip, 2))

	st := ns[1].status()
	if st.BGP == nil || len(st.BGP.Routes) != 2 || len(st.BGP.Peers) != 2 {
		t.Fatalf("n2's status: BGP %+v, want 2 peers and 2 routes", st.BGP)
	}
	for _, p := range st.BGP.Peers {
		if p.State != "established" {
			t.Errorf("n2's status: peer %s %s, want established", p.Address, p.State)
		}
	}
}

// TestBGPBadPeers: beside a good router session, vigil is given a neighbor whose password is
// wrong (bgpd wants another) and one that does not exist. vigil runs, its instance becomes
// and stays MASTER, the good session carries the route, and status and the log name each bad
// neighbor with a reason.
func TestBGPBadPeers(t *testing.T) {
	l := newBGPLab(t, 1, func(i int, v6 bool) string {
		if v6 {
			return "password right-one"
		}
		return ""
	}, true)
	vip := lab.RoutedVIP(3, false)
	nd := l.Nodes[0]
	nowhere := nd.Addr4.Addr().Next().Next() // in the node's /29, no one there
	nb := routerNeighbor(nd, false, "") + routerNeighbor(nd, true, "            password wrong-one\n") +
		fmt.Sprintf("        neighbor %s {\n            remote_as %d\n            hold_time 3\n            connect_retry 1\n        }\n", nowhere, routerAS)
	n := l.start(1, nb, instance(nd, 100, vip, "master", ""))
	l.waitFor("bgpd has the route over the good session", 60*time.Second, func() (bool, string) {
		ps, _ := l.paths(vip)
		return len(ps) == 1, fmt.Sprintf("paths from %v", ps)
	})
	// Some time for the bad ones to fail more than once.
	time.Sleep(5 * time.Second)
	st := n.status()
	if len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
		t.Fatalf("instances %+v, want VI_1 MASTER", st.Instances)
	}
	if st.BGP == nil {
		t.Fatal("no BGP in status")
	}
	byAddr := map[string]supervisor.BGPPeer{}
	for _, p := range st.BGP.Peers {
		byAddr[p.Address] = p
	}
	if p := byAddr[nd.Gateway4.String()]; p.State != "established" {
		t.Errorf("good neighbor %s: %+v, want established", nd.Gateway4, p)
	}
	for _, a := range []netip.Addr{nd.Gateway6, nowhere} {
		p, ok := byAddr[a.String()]
		switch {
		case !ok:
			t.Errorf("bad neighbor %s not in status", a)
		case p.State == "established":
			t.Errorf("bad neighbor %s established", a)
		default:
			t.Logf("bad neighbor %s: %s, %q", a, p.State, p.LastError)
		}
	}
	log := n.proc.Output()
	for _, a := range []netip.Addr{nd.Gateway6, nowhere} {
		if !strings.Contains(log, a.String()) {
			t.Errorf("the log never names bad neighbor %s", a)
		}
	}
	// VRRP undisturbed: core logged one state change to MASTER, and none after it.
	var changes []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "state change") && strings.Contains(line, "role=core") {
			changes = append(changes, line)
		}
	}
	if len(changes) == 0 || !strings.Contains(changes[len(changes)-1], "to=MASTER") || strings.Count(strings.Join(changes, "\n"), "to=MASTER") != 1 {
		t.Errorf("VI_1's state changes: %q, want one to MASTER, last", changes)
	}
	if n.proc.Exited() {
		t.Fatal("vigil exited")
	}
}

// gracefulShutdown says whether bgpd's communities of a path hold GRACEFUL_SHUTDOWN, which
// its JSON lists as gracefulShutdown (and prints as graceful-shutdown).
func gracefulShutdown(cs []string) bool {
	for _, c := range cs {
		if c == "gracefulShutdown" || c == "graceful-shutdown" || c == "65535:0" {
			return true
		}
	}
	return false
}

// TestBGPReload: reloads change what is announced: an instance loses its announce block (its
// route goes), the bgp block goes (the speaker stops), and both come back (the speaker starts
// again and the route returns); VI_1 stays MASTER throughout.
func TestBGPReload(t *testing.T) {
	l := newBGPLab(t, 1, nil, false)
	vip := lab.RoutedVIP(4, false)
	nd := l.Nodes[0]
	nb := routerNeighbor(nd, false, "")
	withAnnounce := instance(nd, 100, vip, "master", "")
	noAnnounce := strings.Replace(withAnnounce, "    announce {\n        mode master\n    }\n", "", 1)
	if noAnnounce == withAnnounce {
		t.Fatal("the test's instance has no announce block to take out")
	}
	n := l.start(1, nb, withAnnounce)
	has := func(want int) func() (bool, string) {
		return func() (bool, string) {
			ps, _ := l.paths(vip)
			return len(ps) == want, fmt.Sprintf("paths from %v", ps)
		}
	}
	l.waitFor("bgpd has the route", 60*time.Second, has(1))

	n.write(nb, noAnnounce)
	n.reload()
	l.waitFor("the route goes with the announce block", 15*time.Second, has(0))

	n.write("-", noAnnounce)
	n.reload()
	l.waitFor("the speaker stops with the bgp block", 15*time.Second, func() (bool, string) {
		st := n.status()
		return st.BGP == nil && len(st.Instances) == 1, fmt.Sprintf("bgp %+v", st.BGP)
	})

	n.write(nb, withAnnounce)
	n.reload()
	l.waitFor("the route is back with both blocks", 60*time.Second, has(1))
	st := n.status()
	if len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
		t.Errorf("instances %+v, want VI_1 MASTER", st.Instances)
	}
	if k := strings.Count(n.proc.Output(), "to=MASTER"); k != 2 { // the vrrp process's line and core's
		t.Errorf("%d lines of a change to MASTER, want the first one's two: the reloads moved VI_1", k)
	}
}
