package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// allReasons lists every Reason the package can produce; TestEveryReasonProduced keeps the
// tables below honest.
var allReasons = []Reason{
	ReasonFamilyMismatch, ReasonTooShort, ReasonBadVersion, ReasonBadType, ReasonV2OverIPv6,
	ReasonBadLength, ReasonBadChecksum, ReasonBadVRID, ReasonZeroInterval, ReasonBadAuthType,
	ReasonAuthUnsupported, ReasonBadTTL, ReasonVersionMismatch, ReasonVRIDMismatch,
	ReasonAuthMismatch, ReasonIntervalMismatch, ReasonBadAddrCount, ReasonAddrMismatch,
	ReasonForeignAddrs,
}

// mutate returns a copy of a golden packet changed by f, with the checksum recomputed (for the
// golden's version and addresses) so the mutation, not the checksum, is what Parse sees.
func mutate(t testing.TB, hexs string, src, dst netip.Addr, f func([]byte) []byte) []byte {
	b := f(mustHex(t, hexs))
	if len(b) >= headerLen {
		version := 3
		if hexs == v2PassHex || hexs == v2NoneHex {
			version = 2
		}
		b[6], b[7] = 0, 0
		binary.BigEndian.PutUint16(b[6:], checksum(b, version, src, dst, Options{}))
	}
	return b
}

type parseDrop struct {
	name     string
	b        []byte
	src, dst netip.Addr
	opt      Options
	want     Reason
}

func parseDrops(t testing.TB) []parseDrop {
	v2 := func(f func([]byte) []byte) []byte { return mutate(t, v2PassHex, src4, IPv4Group, f) }
	v3 := func(f func([]byte) []byte) []byte { return mutate(t, v3v4Hex, src4, IPv4Group, f) }
	v6 := func(f func([]byte) []byte) []byte { return mutate(t, v3v6Hex, src6, IPv6Group, f) }
	set := func(i int, v byte) func([]byte) []byte { return func(b []byte) []byte { b[i] = v; return b } }
	return []parseDrop{
		{"no source", mustHex(t, v3v4Hex), netip.Addr{}, IPv4Group, Options{}, ReasonFamilyMismatch},
		{"ipv4 src, ipv6 dst", mustHex(t, v3v4Hex), src4, IPv6Group, Options{}, ReasonFamilyMismatch},
		{"empty", nil, src4, IPv4Group, Options{}, ReasonTooShort},
		{"7 bytes", mustHex(t, v3v4Hex)[:7], src4, IPv4Group, Options{}, ReasonTooShort},
		{"version 1", v3(set(0, 0x11)), src4, IPv4Group, Options{}, ReasonBadVersion},
		{"version 4", v3(set(0, 0x41)), src4, IPv4Group, Options{}, ReasonBadVersion},
		{"version 0", v3(set(0, 0x01)), src4, IPv4Group, Options{}, ReasonBadVersion},
		{"type 0", v3(set(0, 0x30)), src4, IPv4Group, Options{}, ReasonBadType},
		{"type 2", v2(set(0, 0x22)), src4, IPv4Group, Options{}, ReasonBadType},
		{"v2 over ipv6", mustHex(t, "21016401000100000000000000000000000000000000000000000000000000000000"), src6, IPv6Group, Options{}, ReasonV2OverIPv6},
		{"v2 truncated auth", mustHex(t, v2PassHex)[:19], src4, IPv4Group, Options{}, ReasonBadLength},
		{"v2 no auth bytes at all", mustHex(t, v2NoneHex)[:12], src4, IPv4Group, Options{}, ReasonBadLength},
		{"v3 count 2, one address", v3(set(3, 2)), src4, IPv4Group, Options{}, ReasonBadLength},
		{"v3 count 0, one address, unpadded length", v6(set(3, 0)), src6, IPv6Group, Options{}, ReasonBadLength},
		{"v6 truncated address", mustHex(t, v3v6Hex)[:23], src6, IPv6Group, Options{}, ReasonBadLength},
		{"v6 trailing byte", append(mustHex(t, v3v6Hex), 0), src6, IPv6Group, Options{}, ReasonBadLength},
		{"v4 beyond Ethernet padding", append(mustHex(t, v3v4Hex), make([]byte, 15)...), src4, IPv4Group, Options{}, ReasonBadLength},
		{"keepalived auth_hmac trailer", append(mustHex(t, v3v4Hex), make([]byte, 28)...), src4, IPv4Group, Options{}, ReasonBadLength},
		{"v2 checksum", func() []byte { b := mustHex(t, v2PassHex); b[7] ^= 1; return b }(), src4, IPv4Group, Options{}, ReasonBadChecksum},
		{"v2 password changed", func() []byte { b := mustHex(t, v2PassHex); b[12] = 'S'; return b }(), src4, IPv4Group, Options{}, ReasonBadChecksum},
		{"v3 checksum", func() []byte { b := mustHex(t, v3v4Hex); b[6] ^= 0x80; return b }(), src4, IPv4Group, Options{}, ReasonBadChecksum},
		{"v3 zero checksum", func() []byte { b := mustHex(t, v3v4Hex); b[6], b[7] = 0, 0; return b }(), src4, IPv4Group, Options{}, ReasonBadChecksum},
		{"v3 as-v2 checksum wrong both ways", func() []byte { b := mustHex(t, v3v4AsV2Hex); b[7] ^= 1; return b }(), src4, IPv4Group, Options{V3ChecksumAsV2: true}, ReasonBadChecksum},
		{"v6 checksum", func() []byte { b := mustHex(t, v3v6Hex); b[10] = 1; return b }(), src6, IPv6Group, Options{}, ReasonBadChecksum},
		{"vrid 0", v3(set(1, 0)), src4, IPv4Group, Options{}, ReasonBadVRID},
		{"v2 vrid 0", v2(set(1, 0)), src4, IPv4Group, Options{}, ReasonBadVRID},
		{"v2 interval 0", v2(set(5, 0)), src4, IPv4Group, Options{}, ReasonZeroInterval},
		{"v3 interval 0", v3(set(5, 0)), src4, IPv4Group, Options{}, ReasonZeroInterval},
		{"v3 interval 0, rsvd set", v3(func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), src4, IPv4Group, Options{}, ReasonZeroInterval},
		{"v2 auth type 3", v2(set(4, 3)), src4, IPv4Group, Options{}, ReasonBadAuthType},
		{"v2 auth type 255", v2(set(4, 255)), src4, IPv4Group, Options{}, ReasonBadAuthType},
		{"v2 auth AH", v2(set(4, 2)), src4, IPv4Group, Options{}, ReasonAuthUnsupported},
	}
}

func TestParseDrops(t *testing.T) {
	for _, c := range parseDrops(t) {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse(c.b, c.src, c.dst, c.opt)
			if err == nil {
				t.Fatalf("accepted %+v, want %s", a, c.want)
			}
			var d *DropError
			if !errors.As(err, &d) {
				t.Fatalf("%v is not a *DropError", err)
			}
			if d.Reason != c.want {
				t.Fatalf("reason %s (%v), want %s", d.Reason, err, c.want)
			}
			if !errors.Is(err, &DropError{Reason: c.want}) {
				t.Errorf("errors.Is does not match reason %s", c.want)
			}
			if d.Detail == "" {
				t.Errorf("no detail for %s", d.Reason)
			}
		})
	}
}

// Accepted oddities: things keepalived sends or tolerates that a strict reading would reject.
func TestParseTolerates(t *testing.T) {
	set := func(i int, v byte) func([]byte) []byte { return func(b []byte) []byte { b[i] = v; return b } }
	cases := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		check    func(*Advert) bool
	}{
		// RFC 5798 5.2.6: Rsvd is ignored on reception.
		{"v3 rsvd bits set", mutate(t, v3v4Hex, src4, IPv4Group, set(4, 0xf0)), src4, IPv4Group,
			func(a *Advert) bool { return a.Interval == time.Second }},
		// RFC 3768 5.3.10: auth data is ignored on reception, and not reported, for type 0.
		{"v2 none with junk auth data", mutate(t, v2NoneHex, src4, IPv4Group, set(19, 'x')), src4, IPv4Group,
			func(a *Advert) bool { return a.AuthData == [8]byte{} }},
		// keepalived with no VIPs configured (allow_no_vips) sends a count of 0.
		{"v3 no addresses", mutate(t, v3v4Hex, src4, IPv4Group, func(b []byte) []byte { b[3] = 0; return b[:8] }), src4, IPv4Group,
			func(a *Advert) bool { return len(a.Addrs) == 0 }},
		// Minimum-size Ethernet frames pad short IPv4 packets; the padding is not covered by
		// the checksum (keepalived allows it too).
		{"v3 ipv4 Ethernet padding", append(mustHex(t, v3v4Hex), make([]byte, 14)...), src4, IPv4Group,
			func(a *Advert) bool { return len(a.Addrs) == 1 }},
		{"v2 Ethernet padding", append(mustHex(t, v2NoneHex), 0, 0, 0, 0, 0, 0), src4, IPv4Group,
			func(a *Advert) bool { return a.VRID == 1 }},
		// Priority 0 is a master stepping down, a valid advert.
		{"priority 0", mutate(t, v3v4Hex, src4, IPv4Group, set(2, 0)), src4, IPv4Group,
			func(a *Advert) bool { return a.Priority == 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse(c.b, c.src, c.dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(a) {
				t.Fatalf("unexpected %+v", a)
			}
		})
	}
}

// Every truncation and every single-byte corruption of the golden packets is rejected or
// parsed; nothing panics, and a corruption of the checksummed bytes is never accepted.
func TestParseCorruptions(t *testing.T) {
	for _, g := range goldens() {
		b := mustHex(t, g.hex)
		for n := 0; n < len(b); n++ {
			if _, err := Parse(b[:n], g.src, g.dst, g.opt); err == nil {
				t.Errorf("%s: accepted truncation to %d bytes", g.name, n)
			}
		}
		for i := range b {
			for _, x := range []byte{0x01, 0x10, 0x80, 0xff} {
				c := append([]byte(nil), b...)
				c[i] ^= x
				if _, err := Parse(c, g.src, g.dst, g.opt); err == nil {
					// With V3ChecksumAsV2 a corruption could in theory satisfy the other
					// convention; with one byte flipped it cannot, so any accept is a bug.
					t.Errorf("%s: accepted byte %d ^ %#x", g.name, i, x)
				}
			}
		}
	}
}

func TestReasonAdvisory(t *testing.T) {
	for _, r := range allReasons {
		want := r == ReasonBadAddrCount || r == ReasonAddrMismatch
		if r.Advisory() != want {
			t.Errorf("%s.Advisory() = %v", r, !want)
		}
	}
}

func TestEveryReasonProduced(t *testing.T) {
	seen := map[Reason]bool{}
	for _, c := range parseDrops(t) {
		_, err := Parse(c.b, c.src, c.dst, c.opt)
		seen[ReasonOf(err)] = true
	}
	for _, c := range checkCases() {
		seen[ReasonOf(c.a.Check(c.e))] = true
	}
	for _, c := range ttlCases {
		seen[ReasonOf(CheckTTL(c.ttl, c.unicast, c.min, c.max))] = true
	}
	for _, r := range allReasons {
		if !seen[r] {
			t.Errorf("no test case produces %s", r)
		}
	}
}
