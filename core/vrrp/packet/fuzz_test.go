package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts re-encodes to bytes it accepts as the
// same advert; encoding that again gives the same bytes (Marshal is canonical). With fixSum the
// checksum is recomputed first, so mutations reach the checks behind it instead of all dying as
// bad_checksum.
func FuzzParse(f *testing.F) {
	for _, g := range goldens() {
		f.Add(mustHex(f, g.hex), g.src.Is6(), g.opt.V3ChecksumAsV2, false, false)
		f.Add(mustHex(f, g.hex), g.src.Is6(), g.opt.V3ChecksumAsV2, false, true)
	}
	f.Add(append(mustHex(f, v3v4Hex), 0, 0, 0, 0), false, false, false, false) // Ethernet padding
	f.Add(mustHex(f, v3v4Hex), false, false, true, false)                      // wrong pseudo-header dst

	f.Fuzz(func(t *testing.T, b []byte, v6, asV2, unicast, fixSum bool) {
		src, dst := src4, IPv4Group
		if unicast {
			dst = netip.MustParseAddr("192.168.1.2")
		}
		if v6 {
			src, dst = src6, IPv6Group
			if unicast {
				dst = netip.MustParseAddr("2001:db8::2")
			}
		}
		opt := Options{V3ChecksumAsV2: asV2}
		if fixSum && len(b) >= headerLen {
			n := msgLen(int(b[0]>>4), int(b[3]), addrLen(src))
			if n <= len(b) {
				b[6], b[7] = 0, 0
				binary.BigEndian.PutUint16(b[6:], checksum(b[:n], int(b[0]>>4), src, dst, opt))
			}
		}
		a, err := Parse(b, src, dst, opt)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a drop reason: %v", err)
			}
			return
		}
		re, err := a.Marshal(src, dst, opt)
		if err != nil {
			t.Fatalf("accepted %x as %+v but cannot marshal it: %v", b, *a, err)
		}
		a2, err := Parse(re, src, dst, opt)
		if err != nil {
			t.Fatalf("re-marshalled %x (from %x) rejected: %v", re, b, err)
		}
		if !advertEqual(*a, *a2) {
			t.Fatalf("round trip changed the advert:\n %+v\n %+v", *a, *a2)
		}
		if re2, _ := a2.Marshal(src, dst, opt); !bytes.Equal(re, re2) {
			t.Fatalf("Marshal not canonical: %x then %x", re, re2)
		}
	})
}
