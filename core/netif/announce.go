package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The announcers build whole Ethernet frames and send them on AF_PACKET
// sockets, as keepalived does (vrrp_arp.c, vrrp_ndisc.c): the frames do not
// depend on routing, on the address having finished DAD, or on the neighbour
// cache, and they carry exactly the fields peers and switches expect.

const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	arpHrdEther   = 1
	arpOpRequest  = 1
	garpFrameLen  = 14 + 28
	naPayloadLen  = 24 + 8 // NA header + target link-layer address option
	naFrameLen    = 14 + 40 + naPayloadLen
	icmpv6TypeNA  = 136
	ndOptTargetLL = 2
	ndHopLimit    = 255

	naFlagRouter   = 0x80
	naFlagOverride = 0x20
)

var (
	macBroadcast  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macAllNodes   = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01} // RFC 2464 mapping of ff02::1
	ipv6AllNodes  = netip.MustParseAddr("ff02::1")
	errNotEthLike = errors.New("not an Ethernet address")
)

// garpFrame builds the gratuitous ARP keepalived sends: an ARP *request*
// broadcast to ff:ff:ff:ff:ff:ff, sender = target = ip, sender hardware
// address = the interface MAC and target hardware address = broadcast
// (not zero as RFC 5227 would have it; keepalived fills it with the
// broadcast address and peers accept both).
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 0, garpFrameLen)
	b = append(b, macBroadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, arpHrdEther)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, arpOpRequest)
	ip4 := ip.As4()
	b = append(b, mac...)
	b = append(b, ip4[:]...)
	b = append(b, macBroadcast...)
	b = append(b, ip4[:]...)
	return b
}

// naFrame builds the unsolicited neighbour advertisement keepalived sends:
// to 33:33:00:00:00:01 / ff02::1 from the VIP itself, hop limit 255,
// Override set, Solicited clear, Router set when the interface forwards
// IPv6, target = ip, and a target link-layer address option with the MAC.
func naFrame(mac net.HardwareAddr, ip netip.Addr, router bool) []byte {
	b := make([]byte, 0, naFrameLen)
	b = append(b, macAllNodes...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)

	src, dst := ip.As16(), ipv6AllNodes.As16()
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class 0, flow label 0
	b = binary.BigEndian.AppendUint16(b, naPayloadLen)
	b = append(b, unix.IPPROTO_ICMPV6, ndHopLimit)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)

	icmp := len(b)
	flags := byte(naFlagOverride)
	if router {
		flags |= naFlagRouter
	}
	b = append(b, icmpv6TypeNA, 0, 0, 0) // type, code, checksum (below)
	b = append(b, flags, 0, 0, 0)
	b = append(b, src[:]...)        // target address
	b = append(b, ndOptTargetLL, 1) // option type, length in units of 8 octets
	b = append(b, mac...)
	binary.BigEndian.PutUint16(b[icmp+2:], icmpv6Checksum(src, dst, b[icmp:]))
	return b
}

// icmpv6Checksum is the RFC 4443 checksum over the IPv6 pseudo-header and
// the ICMPv6 message (whose checksum field must be zero).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[:4], uint32(len(msg)))
	tail[7] = unix.IPPROTO_ICMPV6
	add(tail[:])
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// announceLink resolves the interface and checks that it does ARP/ND on
// Ethernet-like hardware.
func (n *Netif) announceLink(ifname string) (Link, error) {
	l, flags, err := n.quickLink(ifname)
	if err != nil {
		return Link{}, err
	}
	if flags&unix.IFF_NOARP != 0 {
		return Link{}, fmt.Errorf("interface %s: %w", ifname, ErrNoARP)
	}
	if len(l.MAC) != 6 {
		return Link{}, fmt.Errorf("interface %s: %w (%w)", ifname, ErrNoARP, errNotEthLike)
	}
	return l, nil
}

// packetSocket returns the handle's send-only packet socket, opening it in
// the handle's namespace on first use. Protocol 0 means the socket receives
// nothing, which is what keepalived's no-receive filter achieves. n.mu
// must be held.
func (n *Netif) packetSocket(fd *int) (int, error) {
	if n.closed {
		return -1, net.ErrClosed
	}
	if *fd >= 0 {
		return *fd, nil
	}
	err := n.inNS(func() error {
		s, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open packet socket: %w", err)
		}
		*fd = s
		return nil
	})
	return *fd, err
}

func (n *Netif) send(fdp *int, l Link, proto uint16, frame []byte) error {
	// Held across sendto so Close cannot close the socket under us.
	n.mu.Lock()
	defer n.mu.Unlock()
	fd, err := n.packetSocket(fdp)
	if err != nil {
		return err
	}
	to := &unix.SockaddrLinklayer{
		Protocol: Htons(proto),
		Ifindex:  l.Index,
		Halen:    6,
	}
	copy(to.Addr[:], frame[:6])
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// SendGARP sends one gratuitous ARP for ip on ifname (see garpFrame for the
// format). ErrNoARP if the interface does not do ARP.
func (n *Netif) SendGARP(ifname string, ip netip.Addr) error {
	ip = ip.Unmap()
	if !ip.Is4() {
		return fmt.Errorf("gratuitous ARP on %s for %s: not an IPv4 address", ifname, ip)
	}
	l, err := n.announceLink(ifname)
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s for %s: %w", ifname, ip, err)
	}
	if err := n.send(&n.arpFD, l, etherTypeARP, garpFrame(l.MAC, ip)); err != nil {
		return fmt.Errorf("gratuitous ARP on %s for %s: %w", ifname, ip, err)
	}
	return nil
}

// SendUnsolicitedNA sends one unsolicited neighbour advertisement for ip on
// ifname (see naFrame for the format). ErrNoARP if the interface does not
// do neighbour discovery.
func (n *Netif) SendUnsolicitedNA(ifname string, ip netip.Addr) error {
	if !ip.Is6() || ip.Is4In6() {
		return fmt.Errorf("neighbour advertisement on %s for %s: not an IPv6 address", ifname, ip)
	}
	ip = ip.WithZone("")
	l, err := n.announceLink(ifname)
	if err != nil {
		return fmt.Errorf("neighbour advertisement on %s for %s: %w", ifname, ip, err)
	}
	frame := naFrame(l.MAC, ip, n.forwardsIPv6(ifname))
	if err := n.send(&n.ndiscFD, l, etherTypeIPv6, frame); err != nil {
		return fmt.Errorf("neighbour advertisement on %s for %s: %w", ifname, ip, err)
	}
	return nil
}

// forwardsIPv6 reports whether the interface forwards IPv6, in which case
// keepalived sets the Router flag so hosts keep using us as a router. The
// sysctl lives in the handle's namespace, so it is read from inside it; an
// unreadable value (IPv6 disabled) counts as not forwarding.
func (n *Netif) forwardsIPv6(ifname string) bool {
	if strings.ContainsAny(ifname, "/") {
		return false
	}
	var on bool
	_ = n.inNS(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
		on = err == nil && strings.TrimSpace(string(b)) != "0"
		return nil
	})
	return on
}
