package netif

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

func TestSendGARP(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	vip := netip.MustParseAddr("192.0.2.100")
	if err := l.n.AddAddr(Addr{Prefix: netip.PrefixFrom(vip, 24), Dev: "v0"}); err != nil {
		t.Fatal(err)
	}
	c := l.capture(t, "v1")
	if err := l.n.SendGARP("v0", vip); err != nil {
		t.Fatal(err)
	}
	f := c.next(t, func(b []byte) bool {
		return len(b) >= 42 && binary.BigEndian.Uint16(b[12:]) == 0x0806 && bytes.Equal(b[28:32], vip.AsSlice())
	})
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
		0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, // Ethernet source: v0's MAC
		0x08, 0x06, // ethertype ARP
		0x00, 0x01, // hardware type Ethernet
		0x08, 0x00, // protocol type IPv4
		6, 4, // hardware and protocol address lengths
		0x00, 0x01, // opcode: request (as keepalived)
		0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, // sender hardware address
		192, 0, 2, 100, // sender protocol address: the VIP
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // target hardware address: broadcast (as keepalived)
		192, 0, 2, 100, // target protocol address: the VIP
	}
	if !bytes.Equal(f, want) {
		t.Errorf("GARP frame\n got % x\nwant % x", f, want)
	}

	// Errors name interface and address.
	if err := l.n.SendGARP("nosuch0", vip); !errors.Is(err, ErrNoLink) {
		t.Errorf("SendGARP(nosuch0) = %v, want ErrNoLink", err)
	}
	if err := l.n.SendGARP("v0", netip.MustParseAddr("2001:db8::1")); err == nil {
		t.Error("SendGARP with IPv6 address = nil, want error")
	}
	v0, _ := l.h.LinkByName("v0")
	if err := l.h.LinkSetARPOff(v0); err != nil {
		t.Fatal(err)
	}
	if err := l.n.SendGARP("v0", vip); !errors.Is(err, ErrNoARP) {
		t.Errorf("SendGARP on NOARP interface = %v, want ErrNoARP", err)
	}
}

func TestSendUnsolicitedNA(t *testing.T) {
	l := newLab(t)
	l.veth(t)
	vip := netip.MustParseAddr("2001:db8::100")
	if err := l.n.AddAddr(Addr{Prefix: netip.PrefixFrom(vip, 64), Dev: "v0", NoDAD: true}); err != nil {
		t.Fatal(err)
	}
	c := l.capture(t, "v1")
	isOurNA := func(b []byte) bool {
		return len(b) >= 86 && binary.BigEndian.Uint16(b[12:]) == 0x86dd && b[20] == 58 &&
			b[54] == 136 && bytes.Equal(b[62:78], vip.AsSlice())
	}

	for _, forwarding := range []bool{false, true} {
		l.sysctl(t, "ipv6/conf/v0/forwarding", map[bool]string{false: "0", true: "1"}[forwarding])
		if err := l.n.SendUnsolicitedNA("v0", vip); err != nil {
			t.Fatal(err)
		}
		f := c.next(t, isOurNA)
		flags := byte(0x20) // Override; Solicited clear
		if forwarding {
			flags |= 0x80 // Router, as keepalived when the interface forwards
		}
		want := []byte{
			0x33, 0x33, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: all-nodes multicast
			0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, // Ethernet source: v0's MAC
			0x86, 0xdd, // ethertype IPv6
			0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
			0x00, 0x20, // payload length 32
			58,                                                               // next header ICMPv6
			255,                                                              // hop limit 255
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // source: the VIP
			0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // destination ff02::1
			136, 0, // ICMPv6 type NA, code 0
			f[56], f[57], // checksum, verified below
			flags, 0, 0, 0, // flags, reserved
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // target: the VIP
			2, 1, // option: target link-layer address, 8 octets
			0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, // v0's MAC
		}
		if !bytes.Equal(f, want) {
			t.Errorf("NA frame (forwarding=%v)\n got % x\nwant % x", forwarding, f, want)
		}
		if !icmpv6ChecksumOK(f[22:38], f[38:54], f[54:]) {
			t.Errorf("NA checksum %#04x does not verify", binary.BigEndian.Uint16(f[56:]))
		}
	}

	if err := l.n.SendUnsolicitedNA("v0", netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("SendUnsolicitedNA with IPv4 address = nil, want error")
	}
	if err := l.n.SendUnsolicitedNA("nosuch0", vip); !errors.Is(err, ErrNoLink) {
		t.Errorf("SendUnsolicitedNA(nosuch0) = %v, want ErrNoLink", err)
	}
}

// icmpv6ChecksumOK sums pseudo-header and message including the checksum
// field, independently of icmpv6Checksum: a correct message sums to 0xffff.
func icmpv6ChecksumOK(src, dst, msg []byte) bool {
	var buf []byte
	buf = append(buf, src...)
	buf = append(buf, dst...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, 0, 0, 0, 58)
	buf = append(buf, msg...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var sum uint32
	for i := 0; i < len(buf); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(buf[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

// TestFrames checks the frame builders without root.
func TestFrames(t *testing.T) {
	g := garpFrame(mac0, netip.MustParseAddr("198.51.100.1"))
	if len(g) != 42 || binary.BigEndian.Uint16(g[20:]) != 1 {
		t.Errorf("garpFrame = % x", g)
	}
	ip := netip.MustParseAddr("2001:db8::1")
	na := naFrame(mac0, ip, false)
	if len(na) != 86 || na[21] != 255 || na[54] != 136 || na[58] != 0x20 {
		t.Errorf("naFrame = % x", na)
	}
	if !icmpv6ChecksumOK(na[22:38], na[38:54], na[54:]) {
		t.Error("naFrame checksum does not verify")
	}
	if na := naFrame(mac0, ip, true); na[58] != 0xa0 || !icmpv6ChecksumOK(na[22:38], na[38:54], na[54:]) {
		t.Errorf("naFrame with router flag = % x", na)
	}
}
