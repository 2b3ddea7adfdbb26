package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// bgpSpeakerConf is bgpd.conf for a node that announces 203.0.113.10/32 and
// 2001:db8:ffff::10/128 to the router at 192.0.2.11 / 2001:db8::11 with MED med and two
// communities.
func bgpSpeakerConf(as, id int, med int) string {
	return fmt.Sprintf(`log timestamp precision 6
router bgp %[1]d
 bgp router-id 192.0.2.%[2]d
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 neighbor 192.0.2.11 remote-as 64512
 neighbor 192.0.2.11 timers connect 1
 neighbor 192.0.2.11 bfd
 neighbor 2001:db8::11 remote-as 64512
 neighbor 2001:db8::11 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.10/32
  neighbor 192.0.2.11 activate
  neighbor 192.0.2.11 route-map OUT out
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:ffff::10/128
  neighbor 2001:db8::11 activate
  neighbor 2001:db8::11 route-map OUT out
 exit-address-family
route-map OUT permit 10
 set metric %[3]d
 set community %[1]d:100 %[1]d:200
`, as, id, med)
}

const bgpRouterConf = `log timestamp precision 6
router bgp 64512
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
 neighbor 192.0.2.12 remote-as 64513
 neighbor 192.0.2.12 timers connect 1
 neighbor 192.0.2.12 bfd
 neighbor 192.0.2.13 remote-as 64514
 neighbor 192.0.2.13 timers connect 1
 neighbor 2001:db8::12 remote-as 64513
 neighbor 2001:db8::12 timers connect 1
 neighbor 2001:db8::13 remote-as 64514
 neighbor 2001:db8::13 timers connect 1
 address-family ipv4 unicast
  neighbor 192.0.2.12 activate
  neighbor 192.0.2.13 activate
  maximum-paths 4
 exit-address-family
 address-family ipv6 unicast
  neighbor 2001:db8::12 activate
  neighbor 2001:db8::13 activate
  maximum-paths 4
 exit-address-family
`

// waitFor polls cond until it holds, fails or ctx ends (the test's deadline: no timing
// is asserted).
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestFRRBGP runs bgpd (and bfdd) on three nodes: n1 the router, n2 and n3 announcing the
// same /32 and /128 with different MEDs and communities, so the router has two ECMP paths.
// It reads each query and checks what it knows the answer to be, then stops n2's FRR and
// sees its paths go.
func TestFRRBGP(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := FRRDaemonsAvailable("bgpd", "bfdd"); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l, err := New(ctx, "frrbgp", 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := l.Nodes[0].StartFRRDaemons(ctx, FRRDaemon{Name: "bfdd"}, FRRDaemon{Name: "bgpd", Conf: bgpRouterConf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("router's FRR:\n%s", r.Output())
		}
		if err := r.Stop(); err != nil {
			t.Errorf("stop router's FRR: %v", err)
		}
	}()
	var speakers []*FRR
	for i, nd := range l.Nodes[1:] {
		f, err := nd.StartFRRDaemons(ctx, FRRDaemon{Name: "bfdd"}, FRRDaemon{Name: "bgpd", Conf: bgpSpeakerConf(64513+i, 12+i, 10*(i+1))})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		speakers = append(speakers, f)
	}
	v4, v6 := netip.MustParsePrefix("203.0.113.10/32"), netip.MustParsePrefix("2001:db8:ffff::10/128")
	n2, n3 := netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	n2v6, n3v6 := netip.MustParseAddr("2001:db8::12"), netip.MustParseAddr("2001:db8::13")

	// Both paths in bgpd and both next hops in zebra, for each family.
	for _, fam := range []struct {
		v6   bool
		pfx  netip.Prefix
		nhs  [2]netip.Addr
		kind string
	}{{false, v4, [2]netip.Addr{n2, n3}, "IPv4"}, {true, v6, [2]netip.Addr{n2v6, n3v6}, "IPv6"}} {
		err := waitFor(ctx, fam.kind+" ECMP route at the router", func() (bool, error) {
			zrs, err := r.ZebraRoutes(ctx, fam.v6)
			for _, zr := range zrs {
				if zr.Prefix == fam.pfx && zr.Protocol == "bgp" && zr.Installed && len(zr.ActiveNextHops()) == 2 {
					return true, nil
				}
			}
			return false, err
		})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := r.BGPRoutes(ctx, fam.v6)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Prefix != fam.pfx || len(rs[0].Paths) != 2 {
			t.Fatalf("%s table = %+v, want %s with two paths", fam.kind, rs, fam.pfx)
		}
		best, ok := rs[0].BestPath()
		if !ok {
			t.Errorf("%s: no best path in %+v", fam.kind, rs[0].Paths)
		}
		meds := map[netip.Addr]uint32{}
		for _, p := range rs[0].Paths {
			if !p.Valid || p.Multipath == p.Best || !p.HasMED || p.HasLocalPref || len(p.NextHops) == 0 {
				t.Errorf("%s path %+v: want valid, best or multipath, a MED, no LOCAL_PREF (eBGP), next hops", fam.kind, p)
				continue
			}
			meds[p.NextHops[0]] = p.MED
		}
		if meds[fam.nhs[0]] != 10 || meds[fam.nhs[1]] != 20 {
			t.Errorf("%s MEDs by next hop = %v, want 10 from %s and 20 from %s", fam.kind, meds, fam.nhs[0], fam.nhs[1])
		}
		if best.Peer != fam.nhs[0] && best.Peer != fam.nhs[1] {
			t.Errorf("%s best path from %s, want one of the speakers", fam.kind, best.Peer)
		}

		one, ok, err := r.BGPRoute(ctx, fam.pfx)
		if err != nil || !ok {
			t.Fatalf("BGPRoute(%s) = %v, %v", fam.pfx, ok, err)
		}
		comms := map[netip.Addr]string{}
		for _, p := range one.Paths {
			comms[p.Peer] = strings.Join(p.Communities, " ")
			if p.ASPath == "" || !p.HasMED {
				t.Errorf("BGPRoute(%s) path %+v: want an AS path and a MED", fam.pfx, p)
			}
		}
		if comms[fam.nhs[0]] != "64513:100 64513:200" || comms[fam.nhs[1]] != "64514:100 64514:200" {
			t.Errorf("%s communities by peer = %v", fam.kind, comms)
		}
		if _, ok, err := r.BGPRoute(ctx, netip.PrefixFrom(fam.pfx.Addr().Next(), fam.pfx.Bits())); err != nil || ok {
			t.Errorf("BGPRoute(a prefix nobody announces) = %v, %v; want false, nil", ok, err)
		}
	}

	ns, err := r.BGPNeighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 4 {
		t.Fatalf("neighbors = %+v, want 4", ns)
	}
	for _, n := range ns {
		if n.State != "Established" || n.LocalAS != 64512 {
			t.Errorf("neighbor %+v: want Established, local AS 64512", n)
		}
		if want := map[netip.Addr]string{n2: "Up"}[n.Addr]; n.BFDStatus != want {
			t.Errorf("neighbor %s BFD status %q, want %q", n.Addr, n.BFDStatus, want)
		}
	}
	waitBFD := func(want string) error {
		return waitFor(ctx, "BFD session with n2 "+want, func() (bool, error) {
			ps, err := r.BFDPeers(ctx)
			return err == nil && len(ps) == 1 && ps[0].Peer == n2 && ps[0].Status == want, err
		})
	}
	if err := waitBFD("up"); err != nil {
		t.Fatal(err)
	}
	if _, err := speakers[0].BFDPeers(ctx); err != nil {
		t.Errorf("n2's BFD peers: %v", err)
	}

	// n2 stops: its session goes down with a reason, its paths go, n3's stays alone.
	if err := speakers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, "n2's session down", func() (bool, error) {
		ns, err := r.BGPNeighbors(ctx)
		for _, n := range ns {
			if n.Addr == n2 {
				return n.State != "Established" && n.ConnectionsDropped > 0, err
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatal(err)
	}
	ns, _ = r.BGPNeighbors(ctx)
	for _, n := range ns {
		if n.Addr == n2 && n.LastResetDueTo == "" {
			t.Errorf("n2 down without a reason: %+v", n)
		}
	}
	err = waitFor(ctx, "a single next hop", func() (bool, error) {
		zrs, err := r.ZebraRoutes(ctx, false)
		for _, zr := range zrs {
			if zr.Prefix == v4 && zr.Protocol == "bgp" {
				nhs := zr.ActiveNextHops()
				return len(nhs) == 1 && nhs[0] == n3, err
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitBFD("down"); err != nil {
		t.Fatal(err)
	}
}
