package packet

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

type checkCase struct {
	name string
	a    Advert
	e    Expect
	want Reason // "" for accepted
}

func checkCases() []checkCase {
	pw := [8]byte{'s', 'e', 'c', 'r', 'e', 't'}
	vips := addrs4(3)
	v2 := Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthPass, AuthData: pw, Addrs: vips}
	e2 := Expect{Version: 2, VRID: 51, AuthType: AuthPass, AuthData: pw, Interval: time.Second, Addrs: vips}
	v3 := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: vips}
	e3 := Expect{Version: 3, VRID: 51, Interval: 2 * time.Second, Addrs: vips}
	a := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	e := func(e Expect, f func(*Expect)) Expect { f(&e); return e }
	reversed := []netip.Addr{vips[2], vips[1], vips[0]}
	return []checkCase{
		{"v2 ok", v2, e2, ""},
		{"v3 ok, interval differs", v3, e3, ""},
		{"addresses in another order", a(v3, func(a *Advert) { a.Addrs = reversed }), e3, ""},
		{"zoned configured link-local", Advert{Version: 3, VRID: 1, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("fe80::1")}},
			Expect{Version: 3, VRID: 1, Addrs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}, ""},
		{"version", v3, e(e3, func(e *Expect) { e.Version = 2 }), ReasonVersionMismatch},
		{"vrid", v3, e(e3, func(e *Expect) { e.VRID = 52 }), ReasonVRIDMismatch},
		{"auth type none vs pass", a(v2, func(a *Advert) { a.AuthType, a.AuthData = AuthNone, [8]byte{} }), e2, ReasonAuthMismatch},
		{"auth type pass vs none", v2, e(e2, func(e *Expect) { e.AuthType, e.AuthData = AuthNone, [8]byte{} }), ReasonAuthMismatch},
		{"wrong password", a(v2, func(a *Advert) { a.AuthData[5] = 'T' }), e2, ReasonAuthMismatch},
		{"v2 interval", a(v2, func(a *Advert) { a.Interval = 2 * time.Second }), e2, ReasonIntervalMismatch},
		{"more addresses", a(v3, func(a *Advert) { a.Addrs = addrs4(4) }), e3, ReasonBadAddrCount},
		{"fewer addresses", a(v3, func(a *Advert) { a.Addrs = nil }), e3, ReasonBadAddrCount},
		{"other address", a(v3, func(a *Advert) { a.Addrs = []netip.Addr{vips[0], vips[1], netip.MustParseAddr("10.9.9.9")} }), e3, ReasonAddrMismatch},
		{"duplicate hides a missing one", a(v3, func(a *Advert) { a.Addrs = []netip.Addr{vips[0], vips[0], vips[1]} }), e3, ReasonAddrMismatch},
		{"skip address check", a(v3, func(a *Advert) { a.Addrs = addrs4(7) }), e(e3, func(e *Expect) { e.SkipAddrCheck = true }), ""},
		// None of our addresses: another virtual router with the same VRID, whatever its
		// priority (an owner of none of our addresses owns nothing of ours).
		{"no address in common", a(v3, func(a *Advert) { a.Addrs = []netip.Addr{netip.MustParseAddr("10.9.9.9")} }), e3, ReasonForeignAddrs},
		{"same count, none in common", a(v3, func(a *Advert) {
			a.Addrs = []netip.Addr{netip.MustParseAddr("10.9.9.7"), netip.MustParseAddr("10.9.9.8"), netip.MustParseAddr("10.9.9.9")}
		}), e3, ReasonForeignAddrs},
		{"owner with none in common", a(v3, func(a *Advert) { a.Priority = 255; a.Addrs = []netip.Addr{netip.MustParseAddr("10.9.9.9")} }), e3, ReasonForeignAddrs},
		{"skip address check, none in common", a(v3, func(a *Advert) { a.Addrs = []netip.Addr{netip.MustParseAddr("10.9.9.9")} }),
			e(e3, func(e *Expect) { e.SkipAddrCheck = true }), ""},
		// Hard checks come before the advisory address checks.
		{"wrong password and addresses", a(v2, func(a *Advert) { a.AuthData[0] = 'x'; a.Addrs = nil }), e2, ReasonAuthMismatch},
	}
}

func TestCheck(t *testing.T) {
	for _, c := range checkCases() {
		t.Run(c.name, func(t *testing.T) {
			err := c.a.Check(c.e)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
			var d *DropError
			if err != nil && !errors.As(err, &d) {
				t.Fatalf("%v is not a *DropError", err)
			}
		})
	}
}

var ttlCases = []struct {
	name     string
	ttl      int
	unicast  bool
	min, max int
	want     Reason
}{
	{"multicast 255", 255, false, 0, 0, ""},
	{"multicast 254 (routed)", 254, false, 0, 0, ReasonBadTTL},
	{"multicast 1", 1, false, 0, 0, ReasonBadTTL},
	{"multicast ignores unicast range", 64, false, 0, 255, ReasonBadTTL},
	{"unknown ttl", -1, false, 0, 0, ""},
	{"unicast, no range, keepalived ipv6 default hop limit", 64, true, 0, 0, ""},
	{"unicast, keepalived default range", 1, true, 0, 255, ""},
	{"unicast in range", 250, true, 250, 255, ""},
	{"unicast below range", 249, true, 250, 255, ReasonBadTTL},
	{"unicast above range", 65, true, 0, 64, ReasonBadTTL},
	{"unicast exact", 255, true, 255, 255, ""},
}

func TestCheckTTL(t *testing.T) {
	for _, c := range ttlCases {
		t.Run(c.name, func(t *testing.T) {
			if got := ReasonOf(CheckTTL(c.ttl, c.unicast, c.min, c.max)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
