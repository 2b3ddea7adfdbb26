package netif

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestRouteAddDel(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	for _, a := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		if err := l.n.AddAddr(Addr{Prefix: netip.MustParsePrefix(a), Dev: "v0", NoDAD: true}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		r       Route
		table   string // for ip route show
		typ     int
		ipShows string // ip route show line prefix
	}{
		{
			name:    "via in table",
			r:       Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.254"), Dev: "v0", Table: 100, Metric: 5},
			table:   "100",
			typ:     unix.RTN_UNICAST,
			ipShows: "198.51.100.0/24 via 192.0.2.254 dev v0 proto keepalived metric 5",
		},
		{
			name:    "dev route with src",
			r:       Route{Dst: netip.MustParsePrefix("203.0.113.0/25"), Src: netip.MustParseAddr("192.0.2.1"), Dev: "v0", Scope: "link"},
			table:   "main",
			typ:     unix.RTN_UNICAST,
			ipShows: "203.0.113.0/25 dev v0 proto keepalived scope link src 192.0.2.1",
		},
		{
			name:    "blackhole v4 in table",
			r:       Route{Type: "blackhole", Dst: netip.MustParsePrefix("203.0.113.128/25"), Table: 200},
			table:   "200",
			typ:     unix.RTN_BLACKHOLE,
			ipShows: "blackhole 203.0.113.128/25 proto keepalived",
		},
		{
			name:    "blackhole v6",
			r:       Route{Type: "blackhole", Dst: netip.MustParsePrefix("2001:db8:dead::/48"), Protocol: unix.RTPROT_STATIC},
			table:   "main",
			typ:     unix.RTN_BLACKHOLE,
			ipShows: "blackhole 2001:db8:dead::/48 dev lo proto static metric 1024",
		},
		{
			name:    "v6 default via",
			r:       Route{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8::fe"), Dev: "v0", Table: 300},
			table:   "300",
			typ:     unix.RTN_UNICAST,
			ipShows: "default via 2001:db8::fe dev v0 proto keepalived metric 1024",
		},
		{
			name:    "unreachable",
			r:       Route{Type: "unreachable", Dst: netip.MustParsePrefix("198.51.100.128/25")},
			table:   "main",
			typ:     unix.RTN_UNREACHABLE,
			ipShows: "unreachable 198.51.100.128/25 proto keepalived",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 2 {
				if err := l.n.AddRoute(c.r); err != nil {
					t.Fatalf("AddRoute #%d: %v", i+1, err)
				}
			}
			got := findRoute(t, l, c.r)
			if got == nil {
				t.Fatalf("netlink.RouteList does not show %s", c.r)
			}
			if got.Type != c.typ {
				t.Errorf("type = %d, want %d", got.Type, c.typ)
			}
			wantProto := c.r.Protocol
			if wantProto == 0 {
				wantProto = ProtoKeepalived
			}
			if int(got.Protocol) != wantProto {
				t.Errorf("protocol = %d, want %d", got.Protocol, wantProto)
			}
			fam := "-4"
			if c.r.Dst.Addr().Is6() {
				fam = "-6"
			}
			if out := l.ip(t, fam, "route", "show", "table", c.table); !hasLinePrefix(out, c.ipShows) {
				t.Errorf("ip route show table %s lacks %q:\n%s", c.table, c.ipShows, out)
			}
			for i := range 2 {
				if err := l.n.DelRoute(c.r); err != nil {
					t.Fatalf("DelRoute #%d: %v", i+1, err)
				}
			}
			if findRoute(t, l, c.r) != nil {
				t.Errorf("route %s still present after delete", c.r)
			}
			if out := l.ip(t, fam, "route", "show", "table", c.table); hasLinePrefix(out, c.ipShows) {
				t.Errorf("ip route still shows %q:\n%s", c.ipShows, out)
			}
		})
	}
}

func TestRouteConflictAndErrors(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	if err := l.n.AddAddr(Addr{Prefix: netip.MustParsePrefix("192.0.2.1/24"), Dev: "v0"}); err != nil {
		t.Fatal(err)
	}
	r := Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.254"), Dev: "v0"}
	if err := l.n.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	other := r
	other.Via = netip.MustParseAddr("192.0.2.253")
	err := l.n.AddRoute(other)
	if !errors.Is(err, ErrRouteConflict) || !strings.Contains(err.Error(), "198.51.100.0/24") {
		t.Errorf("AddRoute with same key, other gateway = %v; want ErrRouteConflict naming the route", err)
	}
	if err := l.n.DelRoute(Route{Dst: r.Dst, Dev: "nosuch0"}); err != nil {
		t.Errorf("DelRoute on missing interface = %v, want nil", err)
	}
	if err := l.n.AddRoute(Route{Dst: r.Dst, Dev: "nosuch0"}); !errors.Is(err, ErrNoLink) {
		t.Errorf("AddRoute on missing interface = %v, want ErrNoLink", err)
	}
	for _, bad := range []Route{
		{Dev: "v0"},
		{Dst: r.Dst, Type: "wormhole"},
		{Dst: r.Dst, Via: netip.MustParseAddr("2001:db8::1")},
		{Dst: r.Dst, Dev: "v0", Scope: "galaxy"},
	} {
		if err := l.n.AddRoute(bad); err == nil {
			t.Errorf("AddRoute(%+v) = nil, want error", bad)
		}
	}
}

func findRoute(t *testing.T, l *lab, r Route) *netlink.Route {
	t.Helper()
	family := netlink.FAMILY_V4
	if r.Dst.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	table := r.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	routes, err := l.h.RouteListFiltered(family, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range routes {
		if x.Dst == nil {
			continue
		}
		ones, _ := x.Dst.Mask.Size()
		ip, _ := netip.AddrFromSlice(x.Dst.IP)
		if netip.PrefixFrom(ip.Unmap(), ones) == r.Dst {
			return &routes[i]
		}
	}
	return nil
}

func hasLinePrefix(out, prefix string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), prefix) {
			return true
		}
	}
	return false
}
