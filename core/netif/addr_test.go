package netif

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestAddrAddDel(t *testing.T) {
	l := newLab(t)
	l.veth(t)

	cases := []struct {
		name string
		a    Addr
		// what netlink must report
		brd   string
		label string
		scope netlink.Scope
		flags int
		// words `ip -o addr show` must and must not print on the line
		ipHas, ipHasNot []string
	}{
		{
			name:     "ipv4 plain has no brd",
			a:        Addr{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "v0"},
			label:    "v0",
			scope:    netlink.SCOPE_UNIVERSE,
			ipHas:    []string{"inet 192.0.2.10/24", "scope global v0"},
			ipHasNot: []string{"brd"},
		},
		{
			name:  "ipv4 brd label scope",
			a:     Addr{Prefix: netip.MustParsePrefix("198.51.100.7/24"), Dev: "v0", Broadcast: netip.MustParseAddr("198.51.100.255"), Label: "v0:vip", Scope: "link"},
			brd:   "198.51.100.255",
			label: "v0:vip",
			scope: netlink.SCOPE_LINK,
			ipHas: []string{"inet 198.51.100.7/24 brd 198.51.100.255 scope link v0:vip"},
		},
		{
			name:     "ipv4 host /32 noprefixroute",
			a:        Addr{Prefix: netip.MustParsePrefix("203.0.113.1/32"), Dev: "v0", Scope: "host", NoPrefixRoute: true},
			label:    "v0",
			scope:    netlink.SCOPE_HOST,
			flags:    unix.IFA_F_NOPREFIXROUTE,
			ipHas:    []string{"inet 203.0.113.1/32 scope host noprefixroute v0"},
			ipHasNot: []string{"brd"},
		},
		{
			name:     "ipv6 nodad",
			a:        Addr{Prefix: netip.MustParsePrefix("2001:db8::10/64"), Dev: "v0", NoDAD: true},
			scope:    netlink.SCOPE_UNIVERSE,
			flags:    unix.IFA_F_NODAD,
			ipHas:    []string{"inet6 2001:db8::10/64 scope global nodad"},
			ipHasNot: []string{"tentative"},
		},
		{
			// The kernel derives an IPv6 address's scope from the address
			// and ignores the requested one, as it does for keepalived.
			name:  "ipv6 nodad noprefixroute home, scope and label ignored",
			a:     Addr{Prefix: netip.MustParsePrefix("2001:db8:1::1/128"), Dev: "v0", Scope: "site", NoDAD: true, NoPrefixRoute: true, Home: true, Label: "v0:x"},
			scope: netlink.SCOPE_UNIVERSE,
			flags: unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_HOMEADDRESS,
			ipHas: []string{"inet6 2001:db8:1::1/128 scope global", "home", "nodad", "noprefixroute"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 2 { // the second add must be a no-op, not an error
				if err := l.n.AddAddr(c.a); err != nil {
					t.Fatalf("AddAddr #%d: %v", i+1, err)
				}
			}
			if ok, err := l.n.HasAddr(c.a); err != nil || !ok {
				t.Fatalf("HasAddr after add = %v, %v; want true", ok, err)
			}

			got := findAddr(t, l, c.a)
			if got == nil {
				t.Fatalf("netlink.AddrList does not show %s", c.a.Prefix)
			}
			if s := ipString(got.Broadcast); s != c.brd {
				t.Errorf("broadcast = %q, want %q", s, c.brd)
			}
			if c.a.Prefix.Addr().Is4() && got.Label != c.label {
				t.Errorf("label = %q, want %q", got.Label, c.label)
			}
			if got.Scope != int(c.scope) {
				t.Errorf("scope = %d, want %d", got.Scope, c.scope)
			}
			const checked = unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_HOMEADDRESS
			if got.Flags&checked != c.flags {
				t.Errorf("flags = %#x, want %#x", got.Flags&checked, c.flags)
			}

			line, ok := l.ipLine(t, "v0", c.a.Prefix.String())
			if !ok {
				t.Fatalf("ip -o addr show does not list %s", c.a.Prefix)
			}
			for _, w := range c.ipHas {
				if !strings.Contains(line, w) {
					t.Errorf("ip line %q lacks %q", line, w)
				}
			}
			for _, w := range c.ipHasNot {
				if strings.Contains(line, w) {
					t.Errorf("ip line %q has %q", line, w)
				}
			}

			for i := range 2 { // deleting an absent address is not an error
				if err := l.n.DelAddr(c.a); err != nil {
					t.Fatalf("DelAddr #%d: %v", i+1, err)
				}
			}
			if ok, err := l.n.HasAddr(c.a); err != nil || ok {
				t.Fatalf("HasAddr after delete = %v, %v; want false", ok, err)
			}
			if findAddr(t, l, c.a) != nil {
				t.Errorf("netlink.AddrList still shows %s", c.a.Prefix)
			}
			if _, ok := l.ipLine(t, "v0", c.a.Prefix.String()); ok {
				t.Errorf("ip -o addr show still lists %s", c.a.Prefix)
			}
		})
	}
}

// TestAddrDelIgnoresLabel: keepalived deletes by address, whatever label the
// kernel holds.
func TestAddrDelIgnoresLabel(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	a := Addr{Prefix: netip.MustParsePrefix("192.0.2.20/24"), Dev: "v0", Label: "v0:a"}
	if err := l.n.AddAddr(a); err != nil {
		t.Fatal(err)
	}
	a.Label = "v0:other"
	if err := l.n.DelAddr(a); err != nil {
		t.Fatal(err)
	}
	if findAddr(t, l, a) != nil {
		t.Fatal("address still present")
	}
}

func TestAddrErrors(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	missing := Addr{Prefix: netip.MustParsePrefix("192.0.2.1/24"), Dev: "nosuch0"}
	if err := l.n.AddAddr(missing); !errors.Is(err, ErrNoLink) || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("AddAddr on missing interface = %v, want ErrNoLink naming it", err)
	}
	if err := l.n.DelAddr(missing); err != nil {
		t.Errorf("DelAddr on missing interface = %v, want nil", err)
	}
	if _, err := l.n.HasAddr(missing); !errors.Is(err, ErrNoLink) {
		t.Errorf("HasAddr on missing interface = %v, want ErrNoLink", err)
	}
	for _, a := range []Addr{
		{Dev: "v0"}, // no prefix
		{Prefix: netip.MustParsePrefix("192.0.2.1/24")},                                                             // no device
		{Prefix: netip.MustParsePrefix("192.0.2.1/24"), Dev: "v0", Scope: "galaxy"},                                 // bad scope
		{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Dev: "v0", Broadcast: netip.MustParseAddr("192.0.2.255")}, // brd on v6
	} {
		if err := l.n.AddAddr(a); err == nil {
			t.Errorf("AddAddr(%+v) = nil, want error", a)
		}
	}
}

func findAddr(t *testing.T, l *lab, a Addr) *netlink.Addr {
	t.Helper()
	link, err := l.h.LinkByName(a.Dev)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := l.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range addrs {
		if p, ok := addrPrefix(x); ok && p == a.Prefix {
			return &addrs[i]
		}
	}
	return nil
}

func ipString(ip []byte) string {
	if len(ip) == 0 {
		return ""
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap().String()
}

func TestPrimaryAddr(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	for _, p := range []string{"192.0.2.1/24", "192.0.2.2/24", "198.51.100.1/24"} {
		if err := l.n.AddAddr(Addr{Prefix: netip.MustParsePrefix(p), Dev: "v0"}); err != nil {
			t.Fatal(err)
		}
	}
	// 192.0.2.2 is secondary to 192.0.2.1; the first primary wins.
	got, err := l.n.PrimaryAddr("v0", false)
	if err != nil || got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("PrimaryAddr(v0, v4) = %v, %v; want 192.0.2.1", got, err)
	}

	// The kernel derives the link-local address from the MAC (EUI-64).
	wantLL := netip.AddrFrom16(func() [16]byte {
		b := [16]byte{0xfe, 0x80}
		copy(b[8:], []byte{mac0[0] ^ 2, mac0[1], mac0[2], 0xff, 0xfe, mac0[3], mac0[4], mac0[5]})
		return b
	}())
	if err := l.n.AddAddr(Addr{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Dev: "v0", NoDAD: true}); err != nil {
		t.Fatal(err)
	}
	var ll netip.Addr
	eventually(t, "link-local address of v0 to pass DAD", func() bool {
		ll, err = l.n.PrimaryAddr("v0", true)
		return err == nil
	})
	if ll != wantLL {
		t.Errorf("PrimaryAddr(v0, v6) = %v, want %v", ll, wantLL)
	}

	if _, err := l.n.PrimaryAddr("v1", false); !errors.Is(err, ErrNoAddr) {
		t.Errorf("PrimaryAddr(v1, v4) = %v, want ErrNoAddr", err)
	}
	if _, err := l.n.PrimaryAddr("nosuch0", false); !errors.Is(err, ErrNoLink) {
		t.Errorf("PrimaryAddr(nosuch0) = %v, want ErrNoLink", err)
	}
}

// TestNewCurrentNamespace: New binds to the calling thread's namespace,
// which here is the lab the test thread has joined.
func TestNewCurrentNamespace(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a := Addr{Prefix: netip.MustParsePrefix("203.0.113.9/24"), Dev: "v0"}
	if err := n.AddAddr(a); err != nil {
		t.Fatal(err)
	}
	if findAddr(t, l, a) == nil {
		t.Fatal("address added through New() is not in the lab namespace")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
