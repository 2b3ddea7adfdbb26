package packet

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// Known-good adverts, derived by hand from the RFC field layouts (RFC 3768 5.1, RFC 5798 5.1)
// and the Internet checksum (RFC 1071: one's complement of the one's complement sum of 16-bit
// big-endian words, carries folded back in). They pin the wire format independently of the
// code under test.
//
// v2PassHex: v2, VRID 51, priority 100, 1 address 192.168.1.100, auth PASS "secret", 1 s.
//
//	21       version 2 << 4 | type 1
//	33       VRID 51
//	64       priority 100
//	01       count 1
//	01       auth type 1 (PASS)
//	01       adver int 1 s
//	7b71     checksum
//	c0a80164 192.168.1.100
//	73656372 65740000  "secret" zero padded to 8 bytes
//
//	checksum: 2133+6401+0101+0000+c0a8+0164+7365+6372+6574+0000 = 0x2848c
//	          fold 0x848c+0x2 = 0x848e, complement 0x7b71 (no pseudo-header in v2)
//
// v2NoneHex: keepalived's default instance: v2, VRID 1, priority 100, 10.0.0.1, no auth, 1 s.
// The 8 authentication bytes are present and zero (keepalived's send buffer is zeroed).
//
//	21 01 64 01 | 00 01 70fb | 0a000001 | 0000000000000000
//	checksum: 2101+6401+0001+0a00+0001 = 0x8f04, complement 0x70fb
//
// v3v4Hex: v3 from 192.168.1.1 to 224.0.0.18, VRID 51, priority 100, 192.168.1.100, 100 cs.
//
//	31 33 64 01 | 0064 (rsvd 0, max adver int 100 cs) 0622 | c0a80164
//	message:       3133+6401+0064+c0a8+0164           = 0x157a4
//	pseudo-header: c0a8+0101 (src) + e000+0012 (dst) + 0070 (zero, protocol 112)
//	               + 000c (VRRP length 12)             = 0x1a237
//	total 0x2f9db, fold 0xf9db+0x2 = 0xf9dd, complement 0x0622
//
// v3v4AsV2Hex: the same advert with V3ChecksumAsV2 (message only):
//
//	0x157a4, fold 0x57a4+0x1 = 0x57a5, complement 0xa85a
//
// v3v6Hex: v3 from fe80::1 to ff02::12, VRID 1, priority 200, fe80::100, 100 cs.
//
//	31 01 c8 01 | 0064 08f9 | fe80 0000 0000 0000 0000 0000 0000 0100
//	message:       3101+c801+0064+fe80+0100            = 0x1f8e6
//	pseudo-header (RFC 2460 8.1): fe80+0001 (src) + ff02+0012 (dst)
//	               + 0000 0018 (upper-layer length 24) + 0070 (zeros, next header 112) = 0x1fe1d
//	total 0x3f703, fold 0xf703+0x3 = 0xf706, complement 0x08f9
const (
	v2PassHex   = "21336401" + "01017b71" + "c0a80164" + "7365637265740000"
	v2NoneHex   = "21016401" + "000170fb" + "0a000001" + "0000000000000000"
	v3v4Hex     = "31336401" + "00640622" + "c0a80164"
	v3v4AsV2Hex = "31336401" + "0064a85a" + "c0a80164"
	v3v6Hex     = "3101c801" + "006408f9" + "fe800000000000000000000000000100"
)

var (
	src4 = netip.MustParseAddr("192.168.1.1")
	src6 = netip.MustParseAddr("fe80::1")
)

type golden struct {
	name     string
	hex      string
	src, dst netip.Addr
	opt      Options
	advert   Advert
}

func goldens() []golden {
	return []golden{
		{"v2_pass", v2PassHex, src4, IPv4Group, Options{}, Advert{
			Version: 2, VRID: 51, Priority: 100, Interval: time.Second,
			AuthType: AuthPass, AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't'},
			Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")},
		}},
		{"v2_none", v2NoneHex, src4, IPv4Group, Options{}, Advert{
			Version: 2, VRID: 1, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		}},
		{"v3_ipv4", v3v4Hex, src4, IPv4Group, Options{}, Advert{
			Version: 3, VRID: 51, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")},
		}},
		{"v3_ipv4_as_v2", v3v4AsV2Hex, src4, IPv4Group, Options{V3ChecksumAsV2: true}, Advert{
			Version: 3, VRID: 51, Priority: 100, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")},
		}},
		{"v3_ipv6", v3v6Hex, src6, IPv6Group, Options{}, Advert{
			Version: 3, VRID: 1, Priority: 200, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("fe80::100")},
		}},
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenMarshal(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			got, err := g.advert.Marshal(g.src, g.dst, g.opt)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, g.hex); !bytes.Equal(got, want) {
				t.Errorf("Marshal\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestGoldenParse(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			a, err := Parse(mustHex(t, g.hex), g.src, g.dst, g.opt)
			if err != nil {
				t.Fatal(err)
			}
			if !advertEqual(*a, g.advert) {
				t.Errorf("Parse\n got %+v\nwant %+v", *a, g.advert)
			}
		})
	}
}

// The pseudo-header binds v3 checksums to the addresses: the same bytes from another source, or
// read with the other checksum convention, must not verify.
func TestGoldenChecksumBinding(t *testing.T) {
	other := netip.MustParseAddr("192.168.1.2")
	cases := []struct {
		name     string
		hex      string
		src, dst netip.Addr
		opt      Options
		ok       bool
	}{
		{"v3 other source", v3v4Hex, other, IPv4Group, Options{}, false},
		{"v3 unicast destination", v3v4Hex, src4, other, Options{}, false},
		{"v3 as-v2 bytes, RFC receiver", v3v4AsV2Hex, src4, IPv4Group, Options{}, false},
		// keepalived with v3_checksum_as_v2 verifies nothing; we accept either valid form.
		{"v3 RFC bytes, as-v2 receiver", v3v4Hex, src4, IPv4Group, Options{V3ChecksumAsV2: true}, true},
		{"v2 other source", v2PassHex, other, other, Options{}, true}, // v2 has no pseudo-header
		{"v6 other source", v3v6Hex, netip.MustParseAddr("fe80::2"), IPv6Group, Options{}, false},
		// Old keepalived unicast: the group address stands in for the unicast destination.
		{"v3 multicast bytes, sent unicast, old unicast receiver", v3v4Hex, src4, other, Options{OldUnicastChecksum: true}, true},
		{"v3 multicast bytes, old unicast receiver, multicast", v3v4Hex, src4, IPv4Group, Options{OldUnicastChecksum: true}, true},
		// IPv6 always uses the pseudo-header, whatever the option says.
		{"v6 as-v2 receiver", v3v6Hex, src6, IPv6Group, Options{V3ChecksumAsV2: true}, true},
		{"v6 old unicast receiver", v3v6Hex, src6, IPv6Group, Options{OldUnicastChecksum: true}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(mustHex(t, c.hex), c.src, c.dst, c.opt)
			if c.ok && err != nil {
				t.Fatalf("want accepted, got %v", err)
			}
			if !c.ok && ReasonOf(err) != ReasonBadChecksum {
				t.Fatalf("want bad_checksum, got %v", err)
			}
		})
	}
}

// advertEqual compares adverts treating nil and empty address lists alike.
func advertEqual(a, b Advert) bool {
	if a.Version != b.Version || a.VRID != b.VRID || a.Priority != b.Priority ||
		a.Interval != b.Interval || a.AuthType != b.AuthType || a.AuthData != b.AuthData ||
		len(a.Addrs) != len(b.Addrs) {
		return false
	}
	for i := range a.Addrs {
		if a.Addrs[i] != b.Addrs[i] {
			return false
		}
	}
	return true
}

// TestChecksumIPv4Header: Checksum over a real IPv4 header (from a capture: VRRP from
// 192.0.2.12 to 224.0.0.18) gives its checksum field, and 0 with the field in place.
func TestChecksumIPv4Header(t *testing.T) {
	h := []byte{0x45, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00,
		192, 0, 2, 12, 224, 0, 0, 18}
	want := checksumByHand(h)
	if got := Checksum(h); got != want {
		t.Fatalf("Checksum = %#04x, want %#04x", got, want)
	}
	h[10], h[11] = byte(want>>8), byte(want)
	if got := Checksum(h); got != 0 {
		t.Errorf("Checksum over a header with its checksum = %#04x, want 0", got)
	}
	if got := Checksum([]byte{0x12}); got != ^uint16(0x1200) {
		t.Errorf("odd length: Checksum = %#04x, want %#04x", got, ^uint16(0x1200))
	}
}

// checksumByHand is RFC 1071's sum written out plainly, as the reference.
func checksumByHand(b []byte) uint16 {
	var s uint64
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		s += w
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
