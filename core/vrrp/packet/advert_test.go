package packet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func addrs4(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
	}
	return out
}

func addrs6(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	uni4 := netip.MustParseAddr("192.168.1.2")
	pw := [8]byte{'p', 'a', 's', 's', 'w', 'o', 'r', 'd'}
	cases := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		opt      Options
	}{
		{"v2 none", Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}, src4, IPv4Group, Options{}},
		{"v2 pass", Advert{Version: 2, VRID: 7, Priority: 150, Interval: 3 * time.Second, AuthType: AuthPass, AuthData: pw, Addrs: addrs4(2)}, src4, IPv4Group, Options{}},
		{"v2 max interval, owner", Advert{Version: 2, VRID: 255, Priority: 255, Interval: 255 * time.Second, Addrs: addrs4(3)}, src4, IPv4Group, Options{}},
		{"v2 priority 0 (stepping down)", Advert{Version: 2, VRID: 9, Priority: 0, Interval: time.Second, Addrs: addrs4(1)}, src4, IPv4Group, Options{}},
		{"v2 no addresses", Advert{Version: 2, VRID: 9, Priority: 10, Interval: time.Second}, src4, IPv4Group, Options{}},
		{"v2 255 addresses", Advert{Version: 2, VRID: 9, Priority: 10, Interval: time.Second, AuthType: AuthPass, AuthData: pw, Addrs: addrs4(255)}, src4, IPv4Group, Options{}},
		{"v3 ipv4", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}, src4, IPv4Group, Options{}},
		{"v3 ipv4 10ms", Advert{Version: 3, VRID: 51, Priority: 100, Interval: 10 * time.Millisecond, Addrs: addrs4(4)}, src4, IPv4Group, Options{}},
		{"v3 ipv4 max interval", Advert{Version: 3, VRID: 51, Priority: 100, Interval: 40950 * time.Millisecond, Addrs: addrs4(4)}, src4, IPv4Group, Options{}},
		{"v3 ipv4 unicast", Advert{Version: 3, VRID: 51, Priority: 100, Interval: 250 * time.Millisecond, Addrs: addrs4(2)}, src4, uni4, Options{}},
		{"v3 ipv4 old unicast checksum", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: addrs4(2)}, src4, uni4, Options{OldUnicastChecksum: true}},
		{"v3 ipv4 as v2", Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: addrs4(2)}, src4, IPv4Group, Options{V3ChecksumAsV2: true}},
		{"v3 ipv4 255 addresses", Advert{Version: 3, VRID: 1, Priority: 1, Interval: time.Second, Addrs: addrs4(255)}, src4, IPv4Group, Options{}},
		{"v3 ipv6", Advert{Version: 3, VRID: 1, Priority: 200, Interval: time.Second, Addrs: append([]netip.Addr{netip.MustParseAddr("fe80::100")}, addrs6(3)...)}, src6, IPv6Group, Options{}},
		{"v3 ipv6 255 addresses", Advert{Version: 3, VRID: 1, Priority: 200, Interval: time.Second, Addrs: addrs6(255)}, src6, IPv6Group, Options{}},
		{"v3 ipv6 unicast", Advert{Version: 3, VRID: 1, Priority: 200, Interval: time.Second, Addrs: addrs6(1)}, src6, netip.MustParseAddr("2001:db8::2"), Options{}},
		// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are IPv4 all the same.
		{"v3 ipv4 mapped src", Advert{Version: 3, VRID: 3, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}, netip.MustParseAddr("::ffff:192.168.1.1"), netip.MustParseAddr("::ffff:224.0.0.18"), Options{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.a.Marshal(c.src, c.dst, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != c.a.Len() {
				t.Errorf("len %d, Len() %d", len(b), c.a.Len())
			}
			got, err := Parse(b, c.src, c.dst, c.opt)
			if err != nil {
				t.Fatalf("Parse(%x): %v", b, err)
			}
			if !advertEqual(*got, c.a) {
				t.Fatalf("round trip\n got %+v\nwant %+v", *got, c.a)
			}
		})
	}
}

func TestAppendMarshal(t *testing.T) {
	g := goldens()[0]
	prefix := []byte{0xde, 0xad}
	b, err := g.advert.AppendMarshal(prefix, g.src, g.dst, g.opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0xde, 0xad}, mustHex(t, g.hex)...); !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	// Reusing the buffer overwrites, and a stale checksum in it must not leak into the new one.
	buf := bytes.Repeat([]byte{0xff}, 64)[:0]
	for _, g := range goldens() {
		out, err := g.advert.AppendMarshal(buf, g.src, g.dst, g.opt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, mustHex(t, g.hex)) {
			t.Errorf("%s: reused buffer got %x", g.name, out)
		}
		if &out[0] != &buf[:1][0] {
			t.Errorf("%s: reallocated although capacity sufficed", g.name)
		}
	}
	// An error leaves the buffer as it was.
	bad := Advert{Version: 4}
	out, err := bad.AppendMarshal(prefix, src4, IPv4Group, Options{})
	if err == nil || !bytes.Equal(out, prefix) {
		t.Fatalf("got %x, %v", out, err)
	}
}

func TestMarshalInvalid(t *testing.T) {
	ok2 := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}
	ok3 := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}
	with := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	cases := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"version 1", with(ok2, func(a *Advert) { a.Version = 1 }), src4, IPv4Group},
		{"vrid 0", with(ok3, func(a *Advert) { a.VRID = 0 }), src4, IPv4Group},
		{"no source", ok3, netip.Addr{}, IPv4Group},
		{"mixed src/dst", ok3, src4, IPv6Group},
		{"ipv6 vip in ipv4 advert", with(ok3, func(a *Advert) { a.Addrs = addrs6(1) }), src4, IPv4Group},
		{"invalid vip", with(ok3, func(a *Advert) { a.Addrs = []netip.Addr{{}} }), src4, IPv4Group},
		{"256 addresses", with(ok3, func(a *Advert) { a.Addrs = addrs4(256) }), src4, IPv4Group},
		{"v2 over ipv6", with(ok2, func(a *Advert) { a.Addrs = addrs6(1) }), src6, IPv6Group},
		{"v2 fractional interval", with(ok2, func(a *Advert) { a.Interval = 1500 * time.Millisecond }), src4, IPv4Group},
		{"v2 zero interval", with(ok2, func(a *Advert) { a.Interval = 0 }), src4, IPv4Group},
		{"v2 interval 256s", with(ok2, func(a *Advert) { a.Interval = 256 * time.Second }), src4, IPv4Group},
		{"v2 auth AH", with(ok2, func(a *Advert) { a.AuthType = AuthAH }), src4, IPv4Group},
		{"v2 auth data without auth", with(ok2, func(a *Advert) { a.AuthData[0] = 'x' }), src4, IPv4Group},
		{"v3 interval 5ms", with(ok3, func(a *Advert) { a.Interval = 5 * time.Millisecond }), src4, IPv4Group},
		{"v3 interval 15ms", with(ok3, func(a *Advert) { a.Interval = 15 * time.Millisecond }), src4, IPv4Group},
		{"v3 interval 40.96s", with(ok3, func(a *Advert) { a.Interval = 40960 * time.Millisecond }), src4, IPv4Group},
		{"v3 auth", with(ok3, func(a *Advert) { a.AuthType = AuthPass }), src4, IPv4Group},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.a.Marshal(c.src, c.dst, Options{})
			if !errors.Is(err, ErrInvalidAdvert) {
				t.Fatalf("want ErrInvalidAdvert, got %x, %v", b, err)
			}
		})
	}
}

func ExampleParse() {
	a := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}}
	src := netip.MustParseAddr("192.168.1.1")
	b, _ := a.Marshal(src, IPv4Group, Options{})
	fmt.Printf("%x\n", b)

	b[2] = 200 // tamper with the priority: the checksum no longer verifies
	_, err := Parse(b, src, IPv4Group, Options{})
	fmt.Println(ReasonOf(err))
	// Output:
	// 3133640100640622c0a80164
	// bad_checksum
}
