package main

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// Each forgery must be the fault it claims to be: vigil's own receive checks (the codec, then
// the instance's expectations, then the TTL rule) name the reason the scenario then expects in
// the daemon's drop counters. A forgery that drifted (a checksum that happens to verify, a
// payload that parses) would make the scenario test nothing.
func TestForgeriesAreWhatTheySay(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.13")
	vips := []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	for _, target := range []vrrpTarget{
		{Version: 3, VRID: 51, Interval: time.Second, Addrs: vips},
		{Version: 2, VRID: 51, Interval: time.Second, Addrs: vips, AuthPass: "s3cret"},
	} {
		var auth [8]byte
		authType := uint8(packet.AuthNone)
		if target.AuthPass != "" {
			authType = packet.AuthPass
			copy(auth[:], target.AuthPass)
		}
		expect := packet.Expect{Version: target.Version, VRID: target.VRID, AuthType: authType,
			AuthData: auth, Interval: target.Interval, Addrs: vips}
		for _, f := range forgeries() {
			if f.name == "wrong PASS password" && target.Version != 2 {
				continue
			}
			payloads, err := f.payloads(target, src)
			if err != nil {
				t.Fatalf("v%d %s: %v", target.Version, f.name, err)
			}
			for _, p := range payloads {
				pkt := ipv4(src, f.ttl, p)
				if len(pkt) > 1500 {
					t.Errorf("v%d %s: %d bytes do not fit the lab's MTU", target.Version, f.name, len(pkt))
				}
				got := reasonOf(p, int(pkt[8]), src, expect)
				if got != f.want {
					t.Errorf("v%d %s: vigil's checks say %q, want %q", target.Version, f.name, got, f.want)
				}
			}
		}
		// Garbage: every message must be refused by the codec, none may be an advert.
		for i, g := range garbage(target, 5000, 1) {
			if len(g) > 1 && g[1] != target.VRID {
				t.Fatalf("garbage %d aims at VRID %d", i, g[1])
			}
			if r := reasonOf(g, 255, src, expect); r == "" || r.Advisory() {
				t.Fatalf("v%d garbage %d (% x) passes vigil's checks (%q)", target.Version, i, g, r)
			}
		}
	}
}

// The IPv6 forgeries likewise, from a link-local address to ff02::12; wrong VRID is told by
// the engine's demultiplexing (unknown_vrid) before Check would say vrid_mismatch.
func TestForgeries6AreWhatTheySay(t *testing.T) {
	src := netip.MustParseAddr("fe80::200:5eff:fe00:113")
	vips := []netip.Addr{VIP6(0)}
	target := vrrpTarget{Version: 3, VRID: 51, Interval: time.Second, Addrs: vips}
	expect := packet.Expect{Version: 3, VRID: 51, Interval: time.Second, Addrs: vips}
	for _, f := range forgeries6() {
		payloads, err := f.payloads(target, src)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		for _, pkt := range packets(src, f.ttl, payloads) {
			if len(pkt) > 1500 || pkt[0]>>4 != 6 || pkt[6] != packet.Protocol {
				t.Fatalf("%s: not an IPv6 VRRP packet that fits the MTU: % x", f.name, pkt[:8])
			}
			if int(binary.BigEndian.Uint16(pkt[4:])) != len(pkt)-40 {
				t.Errorf("%s: payload length %d, carries %d", f.name, binary.BigEndian.Uint16(pkt[4:]), len(pkt)-40)
			}
			if got := netip.AddrFrom16([16]byte(pkt[8:24])); got != src {
				t.Errorf("%s: from %s, want %s", f.name, got, src)
			}
			if got := netip.AddrFrom16([16]byte(pkt[24:40])); got != packet.IPv6Group {
				t.Errorf("%s: to %s, want %s", f.name, got, packet.IPv6Group)
			}
			got := reasonOf(pkt[40:], int(pkt[7]), src, expect)
			if got == packet.ReasonVRIDMismatch {
				got = reasonUnknownVRID
			}
			if got != f.want {
				t.Errorf("%s: vigil's checks say %q, want %q", f.name, got, f.want)
			}
		}
	}
	for i, g := range garbage(target, 5000, 1) {
		if r := reasonOf(g, 255, src, expect); r == "" || r.Advisory() {
			t.Fatalf("garbage %d (% x) passes vigil's checks over IPv6 (%q)", i, g, r)
		}
	}
}

// reasonOf runs vigil's receive checks in the engine's order and returns the drop reason,
// "" for an advert that is accepted as it is.
func reasonOf(msg []byte, ttl int, src netip.Addr, e packet.Expect) packet.Reason {
	if err := packet.CheckTTL(ttl, false, 0, 0); err != nil {
		return packet.ReasonOf(err)
	}
	a, err := packet.Parse(msg, src, group(src), packet.Options{})
	if err != nil {
		return packet.ReasonOf(err)
	}
	if err := a.Check(e); err != nil {
		return packet.ReasonOf(err)
	}
	return ""
}

// logRate reads both daemons' log formats: a line counts in the second its time says, and
// a continuation line without a time counts with the line before it.
func TestLogRate(t *testing.T) {
	from := time.Date(2026, 12, 6, 23, 9, 4, 0, time.Local)
	to := from.Add(2 * time.Second)
	for _, c := range []struct {
		impl, out  string
		n, busiest int
	}{
		{"keepalived", "Sun Dec  6 23:09:03 2026: before\n" +
			"Sun Dec  6 23:09:04 2026: (VI_1) invalid TTL/HL\n" +
			"Sun Dec  6 23:09:04 2026: (VI_1) invalid TTL/HL\n" +
			"                         continued\n" +
			"Sun Dec  6 23:09:05 2026: (VI_1) Invalid VRRPv2 checksum\n" +
			"Sun Dec  6 23:09:06 2026: after\n", 4, 3},
		{"vigil", from.Add(-time.Second).UTC().Format(time.RFC3339Nano) + " [WARN] before\n" +
			from.Add(10*time.Millisecond).UTC().Format(time.RFC3339Nano) + " [WARN]  vigil.vrrp.vigil: advert dropped\n" +
			from.Add(1500*time.Millisecond).UTC().Format(time.RFC3339Nano) + " [WARN]  vigil.vrrp.vigil: advert dropped\n" +
			to.UTC().Format(time.RFC3339Nano) + " [INFO] after\n", 2, 1},
	} {
		n, busiest := logRate(c.out, c.impl, from, to)
		if n != c.n || busiest != c.busiest {
			t.Errorf("%s: %d lines, busiest second %d; want %d, %d", c.impl, n, busiest, c.n, c.busiest)
		}
	}
}
