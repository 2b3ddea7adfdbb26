package vrrp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestParseLink: what a VMAC listener's packet socket delivers is the whole IP packet,
// unchecked by the kernel's IP layer, with Ethernet padding after a short one.
func TestParseLink(t *testing.T) {
	payload := []byte{0x31, 5, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100}
	v4 := func() []byte {
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 255, 112
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
		copy(h[12:], []byte{192, 0, 2, 12})
		copy(h[16:], []byte{224, 0, 0, 18})
		binary.BigEndian.PutUint16(h[10:], packet.Checksum(h))
		return append(h, payload...)
	}
	padded := append(v4(), make([]byte, 14)...) // a 46-byte Ethernet payload at least
	d, ok := parseLink(padded, false)
	if !ok || string(d.payload) != string(payload) || d.ttl != 255 ||
		d.src != netip.MustParseAddr("192.0.2.12") || d.dst != netip.MustParseAddr("224.0.0.18") {
		t.Fatalf("padded IPv4: ok %v, %+v", ok, d)
	}
	bad := v4()
	bad[8] = 254 // TTL changed, checksum not
	if _, ok := parseLink(bad, false); ok {
		t.Error("an IPv4 header with a wrong checksum was taken")
	}
	if _, ok := parseLink(v4()[:30], false); ok {
		t.Error("a packet shorter than its total length was taken")
	}

	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, 112, 255
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	src, dst := netip.MustParseAddr("fe80::200:5eff:fe00:205"), netip.MustParseAddr("ff02::12")
	copy(h[8:], src.AsSlice())
	copy(h[24:], dst.AsSlice())
	d, ok = parseLink(append(append(h, payload...), 0, 0, 0, 0), true)
	if !ok || string(d.payload) != string(payload) || d.ttl != 255 || d.src != src || d.dst != dst {
		t.Fatalf("IPv6: ok %v, %+v", ok, d)
	}
	h[6] = 0 // a hop-by-hop header first: not what the listener's filter lets through
	if _, ok := parseLink(append(h, payload...), true); ok {
		t.Error("an IPv6 packet whose next header is not VRRP was taken")
	}
}
