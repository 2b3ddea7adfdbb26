package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/internal/lab"
)

// frrConf is bgpd's configuration on a router of AS 64512 peering with the speaker on n1
// (192.0.2.11, 2001:db8::11) over iBGP, so that LOCAL_PREF is kept as sent.
const frrConf = `frr defaults traditional
hostname %s
router bgp 64512
 bgp router-id %s
 no bgp default ipv4-unicast
 neighbor 192.0.2.11 remote-as 64512
 neighbor 192.0.2.11 timers connect 1
 neighbor 2001:db8::11 remote-as 64512
 neighbor 2001:db8::11 timers connect 1
 address-family ipv4 unicast
  neighbor 192.0.2.11 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 2001:db8::11 activate
 exit-address-family
`

// Bounds of the waits: BGP sessions come up in a few seconds here (connect retry 1 s); the
// bounds are generous so that a loaded machine does not fail the test.
const (
	sessionBound = 60 * time.Second
	routeBound   = 30 * time.Second
)

// The speaker in n1 announces to FRR in n2 over IPv4 and IPv6, beside neighbors that cannot
// come up: n3's FRR, first with the wrong AS and then the wrong password, and an address
// nobody has a route to. FRR in n2 sees what is announced, changed and withdrawn, next hop
// n1's address; Status and the log name the bad peers and why.
func TestSpeakerWithFRR(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip("needs network namespaces: ", err)
	}
	if err := lab.FRRDaemonsAvailable("bgpd"); err != nil {
		t.Skip("needs FRR's bgpd: ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := buildSpeaker(t)
	l, err := lab.New(ctx, "spk", 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n1, n2, n3 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	good := startFRR(ctx, t, n2, fmt.Sprintf(frrConf, "n2", "192.0.2.12"), false)
	bad := startFRR(ctx, t, n3, fmt.Sprintf(frrConf, "n3", "192.0.2.13"), false)

	var logs syncBuffer
	spk := startSpeaker(t, n1, bin, &logs)
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("speaker log:\n%s", logs.String())
		}
	}()

	const unreachable = "198.51.100.1" // no route in n1: connect fails at once
	neighbors := func(n3AS uint32, n3Password string) *bgppb.Config {
		return &bgppb.Config{LocalAs: 64512, RouterId: "192.0.2.11", Neighbors: []*bgppb.Neighbor{
			{Address: "192.0.2.12", RemoteAs: 64512, HoldTimeSec: 9, ConnectRetrySec: 1},
			{Address: "2001:db8::12", RemoteAs: 64512, HoldTimeSec: 9, ConnectRetrySec: 1},
			{Address: "192.0.2.13", RemoteAs: n3AS, Password: n3Password, HoldTimeSec: 9, ConnectRetrySec: 2},
			{Address: unreachable, RemoteAs: 64513, ConnectRetrySec: 1},
		}}
	}
	if _, err := spk.Configure(ctx, neighbors(64999, "")); err != nil {
		t.Fatal(err)
	}

	v4 := &bgppb.Route{Prefix: "192.0.2.100/32", Owner: "VI_1", HasMed: true, Med: 10, HasLocalPref: true, LocalPref: 200, Communities: []string{"64512:100"}}
	v6 := &bgppb.Route{Prefix: "2001:db8::100/128", Owner: "VI_1", HasMed: true, Med: 5}
	set := func(t *testing.T, rs ...*bgppb.Route) {
		t.Helper()
		if _, err := spk.SetRoutes(ctx, &bgppb.Routes{Routes: rs}); err != nil {
			t.Fatal(err)
		}
	}
	// waitRoute waits until FRR in n2 has prefix with a path ok accepts.
	waitRoute := func(t *testing.T, what, prefix string, ok func(lab.BGPPath) bool) {
		t.Helper()
		waitFor(t, what, routeBound, func() (bool, string) {
			r, _, err := good.BGPRoute(ctx, netip.MustParsePrefix(prefix))
			if err != nil {
				return false, err.Error()
			}
			return slices.ContainsFunc(r.Paths, ok), fmt.Sprintf("%+v", r.Paths)
		})
	}
	waitLocalPref := func(t *testing.T, want uint32) {
		t.Helper()
		waitFor(t, fmt.Sprint("LOCAL_PREF ", want), routeBound, func() (bool, string) {
			r, _, err := good.BGPRoute(ctx, netip.MustParsePrefix("192.0.2.100/32"))
			var lps []uint32
			for _, p := range r.Paths {
				if p.HasLocalPref {
					lps = append(lps, p.LocalPref)
				}
			}
			return err == nil && slices.Equal(lps, []uint32{want}), fmt.Sprint(lps, err)
		})
	}
	nextHop := func(p lab.BGPPath, ip string) bool {
		return slices.Contains(p.NextHops, netip.MustParseAddr(ip))
	}
	community := func(p lab.BGPPath) string { return strings.Join(p.Communities, " ") }

	set(t, v4, v6)
	waitRoute(t, "IPv4 route announced", "192.0.2.100/32", func(p lab.BGPPath) bool {
		return nextHop(p, "192.0.2.11") && p.HasMED && p.MED == 10 && community(p) == "64512:100"
	})
	waitLocalPref(t, 200)
	waitRoute(t, "IPv6 route announced", "2001:db8::100/128", func(p lab.BGPPath) bool {
		return nextHop(p, "2001:db8::11") && p.HasMED && p.MED == 5
	})

	t.Run("change", func(t *testing.T) {
		v4.Med, v4.LocalPref, v4.Communities = 20, 150, []string{"64512:200", "64512:300"}
		set(t, v4, v6)
		waitRoute(t, "IPv4 route changed", "192.0.2.100/32", func(p lab.BGPPath) bool {
			return p.MED == 20 && community(p) == "64512:200 64512:300"
		})
		waitLocalPref(t, 150)
	})

	t.Run("graceful shutdown", func(t *testing.T) {
		// 65535:0 as bgpd's community list names it (its community string says
		// "graceful-shutdown").
		const gshut = "gracefulShutdown"
		v4.GracefulShutdown, v6.GracefulShutdown = true, true
		set(t, v4, v6)
		waitRoute(t, "IPv4 route with GRACEFUL_SHUTDOWN", "192.0.2.100/32", func(p lab.BGPPath) bool {
			return slices.Contains(p.Communities, gshut)
		})
		waitRoute(t, "IPv6 route with GRACEFUL_SHUTDOWN", "2001:db8::100/128", func(p lab.BGPPath) bool {
			return slices.Contains(p.Communities, gshut)
		})
	})

	t.Run("bad peers", func(t *testing.T) {
		wantErr := func(addr, want string) {
			t.Helper()
			waitFor(t, addr+"'s last error", sessionBound, func() (bool, string) {
				p, err := peerStatus(ctx, spk, addr)
				if err != nil {
					return false, err.Error()
				}
				return p.State != "established" && strings.Contains(p.LastError, want), fmt.Sprint(p)
			})
			waitFor(t, "a log line naming "+addr, routeBound, func() (bool, string) {
				for _, ln := range strings.Split(logs.String(), "\n") {
					if strings.Contains(ln, addr) && strings.Contains(ln, want) {
						return true, ""
					}
				}
				return false, "no line with " + addr + " and " + want
			})
		}
		wantErr("192.0.2.13", "sent NOTIFICATION: code 2(open) subcode 2(bad peer as)")
		wantErr(unreachable, "network is unreachable")

		// With the right AS but a TCP MD5 password n3 does not share, n3 drops the
		// speaker's SYNs: the connection times out.
		if _, err := vtysh(ctx, bad, "configure terminal", "router bgp 64512", "neighbor 192.0.2.11 password right"); err != nil {
			t.Fatal(err)
		}
		if _, err := spk.Configure(ctx, neighbors(64512, "wrong")); err != nil {
			t.Fatal(err)
		}
		wantErr("192.0.2.13", "timeout (or a TCP MD5 password the neighbor does not share)")

		// The good peers kept their sessions and routes throughout.
		for _, a := range []string{"192.0.2.12", "2001:db8::12"} {
			p, err := peerStatus(ctx, spk, a)
			if err != nil {
				t.Fatal(err)
			}
			if p.State != "established" || p.RoutesSent != 1 || p.Flaps != 0 {
				t.Errorf("good peer %s: %v; want established, 1 route sent, no flaps", a, p)
			}
		}
	})

	t.Run("password", func(t *testing.T) {
		if _, err := spk.Configure(ctx, neighbors(64512, "right")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "session with n3 (TCP MD5)", sessionBound, func() (bool, string) {
			p, err := peerStatus(ctx, spk, "192.0.2.13")
			if err != nil {
				return false, err.Error()
			}
			return p.State == "established", fmt.Sprint(p)
		})
		waitFor(t, "n3 has the IPv4 route", routeBound, func() (bool, string) {
			_, ok, err := bad.BGPRoute(ctx, netip.MustParsePrefix("192.0.2.100/32"))
			return ok, fmt.Sprint(err)
		})
	})

	t.Run("withdraw", func(t *testing.T) {
		set(t)
		for _, pfx := range []string{"192.0.2.100/32", "2001:db8::100/128"} {
			waitFor(t, pfx+" withdrawn", routeBound, func() (bool, string) {
				r, ok, err := good.BGPRoute(ctx, netip.MustParsePrefix(pfx))
				return err == nil && !ok, fmt.Sprintf("%+v %v", r, err)
			})
		}
		st, err := spk.Status(ctx, &bgppb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Announced) != 0 {
			t.Errorf("announced after withdrawing all: %v", st.Announced)
		}
	})
}

// A session FRR resets counts as a flap with FRR's NOTIFICATION as the last error, and comes
// back with its routes; BFD comes up with FRR's bfdd; a passive neighbor is reached by FRR
// connecting to the speaker.
func TestSpeakerSessionEvents(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip("needs network namespaces: ", err)
	}
	if err := lab.FRRDaemonsAvailable("bgpd", "bfdd"); err != nil {
		t.Skip("needs FRR's bgpd and bfdd: ", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := buildSpeaker(t)
	l, err := lab.New(ctx, "spkev", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n1, n2 := l.Nodes[0], l.Nodes[1]
	frr := startFRR(ctx, t, n2, fmt.Sprintf(frrConf, "n2", "192.0.2.12")+
		"router bgp 64512\n neighbor 192.0.2.11 bfd\n", true)

	var logs syncBuffer
	spk := startSpeaker(t, n1, bin, &logs)
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("speaker log:\n%s", logs.String())
		}
	}()
	cfg := func(passive bool) *bgppb.Config {
		return &bgppb.Config{LocalAs: 64512, RouterId: "192.0.2.11", Neighbors: []*bgppb.Neighbor{
			{Address: "192.0.2.12", RemoteAs: 64512, HoldTimeSec: 9, ConnectRetrySec: 1, Bfd: true, Passive: passive},
		}}
	}
	if _, err := spk.Configure(ctx, cfg(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := spk.SetRoutes(ctx, &bgppb.Routes{Routes: []*bgppb.Route{{Prefix: "192.0.2.100/32", Owner: "VI_1"}}}); err != nil {
		t.Fatal(err)
	}
	// waitPeer waits until the speaker's status of n2 satisfies ok.
	waitPeer := func(t *testing.T, what string, ok func(*bgppb.PeerStatus) bool) *bgppb.PeerStatus {
		t.Helper()
		var last *bgppb.PeerStatus
		waitFor(t, what, sessionBound, func() (bool, string) {
			p, err := peerStatus(ctx, spk, "192.0.2.12")
			if err != nil {
				return false, err.Error()
			}
			last = p
			return ok(p), fmt.Sprint(p)
		})
		return last
	}
	hasRoute := func(t *testing.T, what string) {
		t.Helper()
		waitFor(t, what, routeBound, func() (bool, string) {
			_, ok, err := frr.BGPRoute(ctx, netip.MustParsePrefix("192.0.2.100/32"))
			return ok, fmt.Sprint(err)
		})
	}
	waitPeer(t, "session up", func(p *bgppb.PeerStatus) bool { return p.State == "established" && p.RoutesSent == 1 })
	hasRoute(t, "route announced")

	t.Run("bfd", func(t *testing.T) {
		waitPeer(t, "BFD up in the speaker", func(p *bgppb.PeerStatus) bool { return p.BfdState == "up" })
		waitFor(t, "BFD up in FRR", sessionBound, func() (bool, string) {
			peers, err := frr.BFDPeers(ctx)
			if err != nil {
				return false, err.Error()
			}
			return slices.ContainsFunc(peers, func(p lab.BFDPeer) bool {
				return p.Peer == n1.Addr4.Addr() && p.Status == "up"
			}), fmt.Sprintf("%+v", peers)
		})
	})

	t.Run("flap", func(t *testing.T) {
		if _, err := vtysh(ctx, frr, "clear bgp ipv4 unicast 192.0.2.11"); err != nil {
			t.Fatal(err)
		}
		p := waitPeer(t, "session lost and back", func(p *bgppb.PeerStatus) bool { return p.Flaps >= 1 && p.State == "established" })
		if !strings.Contains(p.LastError, "received NOTIFICATION: code 6(cease)") {
			t.Errorf("last error after FRR reset the session: %q; want FRR's cease NOTIFICATION", p.LastError)
		}
		if !strings.Contains(logs.String(), "from=established") {
			t.Errorf("no log line for the session lost")
		}
		hasRoute(t, "route announced again")
	})

	t.Run("partition", func(t *testing.T) {
		// n2 cut off the bridge: BFD notices before the 9 s hold timer, and the session
		// goes with the reason; back on the bridge, the session and route come back.
		before, err := peerStatus(ctx, spk, "192.0.2.12")
		if err != nil {
			t.Fatal(err)
		}
		if err := n2.Cut(ctx, true); err != nil {
			t.Fatal(err)
		}
		p := waitPeer(t, "session lost in the partition", func(p *bgppb.PeerStatus) bool {
			return p.Flaps > before.Flaps && p.State != "established"
		})
		t.Logf("partition: state %s, BFD %s, last error %q", p.State, p.BfdState, p.LastError)
		if !strings.Contains(p.LastError, "BFD") {
			t.Errorf("last error after the partition: %q; want BFD named", p.LastError)
		}
		if err := n2.Cut(ctx, false); err != nil {
			t.Fatal(err)
		}
		waitPeer(t, "session back after the partition", func(p *bgppb.PeerStatus) bool { return p.State == "established" })
		hasRoute(t, "route announced after the partition")
	})

	t.Run("passive", func(t *testing.T) {
		if _, err := spk.Configure(ctx, cfg(true)); err != nil {
			t.Fatal(err)
		}
		waitPeer(t, "FRR connects to the passive speaker", func(p *bgppb.PeerStatus) bool { return p.State == "established" })
		hasRoute(t, "route announced over the passive session")
	})
}
