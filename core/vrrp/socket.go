package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// socket is the raw VRRP socket of one interface and address family, shared by every
// instance on that interface: adverts arrive once and are handed out by VRID.
type socket struct {
	ifi  *net.Interface
	v6   bool
	conn net.PacketConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
}

// datagram is one received VRRP payload with what the IP layer told us about it.
type datagram struct {
	payload []byte
	src     netip.Addr
	dst     netip.Addr
	ttl     int
}

// openSocket opens a raw protocol-112 socket bound to the interface, with TTL/hop limit 255
// for everything it sends (RFC 5798 5.1.1.3), and joins the given multicast groups.
func openSocket(ctx context.Context, ifi *net.Interface, v6 bool, groups []netip.Addr) (*socket, error) {
	network, laddr := "ip4:112", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:112", "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Binding to the device keeps adverts of other interfaces (same VRID, other
			// segment) out of this socket.
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
		})
		return errors.Join(err, serr)
	}}
	conn, err := lc.ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("open VRRP socket on %s: %w", ifi.Name, err)
	}
	s := &socket{ifi: ifi, v6: v6, conn: conn}
	if err := s.setBuffer(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set up VRRP socket on %s: %w", ifi.Name, err)
	}
	if err := s.setup(groups); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set up VRRP socket on %s: %w", ifi.Name, err)
	}
	return s, nil
}

// receiveBuffer holds a few hundred milliseconds of adverts at hundreds of instances with
// 10 ms intervals; the kernel's default (about 200 KiB) overflows in 10 ms there, and a
// backup that loses adverts takes over.
const receiveBuffer = 4 << 20

// setBuffer raises the receive buffer past net.core.rmem_max when allowed (CAP_NET_ADMIN:
// SO_RCVBUFFORCE), else as far as the limit goes.
func (s *socket) setBuffer() error {
	rc, err := s.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer); serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
		}
	})
	return errors.Join(err, serr)
}

func (s *socket) setup(groups []netip.Addr) error {
	if s.v6 {
		p := ipv6.NewPacketConn(s.conn)
		s.p6 = p
		if err := p.SetMulticastHopLimit(255); err != nil {
			return err
		}
		if err := p.SetHopLimit(255); err != nil {
			return err
		}
		if err := p.SetMulticastLoopback(false); err != nil {
			return err
		}
		if err := p.SetMulticastInterface(s.ifi); err != nil {
			return err
		}
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
			return err
		}
		for _, g := range groups {
			if err := p.JoinGroup(s.ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
				return fmt.Errorf("join %s: %w", g, err)
			}
		}
		return nil
	}
	p := ipv4.NewPacketConn(s.conn)
	s.p4 = p
	if err := p.SetMulticastTTL(255); err != nil {
		return err
	}
	if err := p.SetTTL(255); err != nil {
		return err
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := p.SetMulticastInterface(s.ifi); err != nil {
		return err
	}
	if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		return err
	}
	for _, g := range groups {
		if err := p.JoinGroup(s.ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", g, err)
		}
	}
	return nil
}

// batch is a set of receive buffers for readBatch: one system call (recvmmsg) can return
// many adverts, which matters at hundreds of instances.
type batch struct {
	m4 []ipv4.Message
	m6 []ipv6.Message
}

const batchSize = 64

func newBatch(v6 bool) *batch {
	b := &batch{}
	for range batchSize {
		buf, oob := make([]byte, 1500), make([]byte, 128)
		if v6 {
			b.m6 = append(b.m6, ipv6.Message{Buffers: [][]byte{buf}, OOB: oob})
		} else {
			b.m4 = append(b.m4, ipv4.Message{Buffers: [][]byte{buf}, OOB: oob})
		}
	}
	return b
}

// readBatch waits for adverts and returns those that arrived together. The payloads alias
// the batch's buffers: they are valid until the next call.
func (s *socket) readBatch(b *batch, out []datagram) ([]datagram, error) {
	out = out[:0]
	if s.v6 {
		n, err := s.p6.ReadBatch(b.m6, 0)
		if err != nil {
			return out, err
		}
		for _, m := range b.m6[:n] {
			d := datagram{payload: m.Buffers[0][:m.N], src: addrOf(m.Addr), ttl: -1}
			var cm ipv6.ControlMessage
			if cm.Parse(m.OOB[:m.NN]) == nil {
				d.ttl = cm.HopLimit
				d.dst, _ = netip.AddrFromSlice(cm.Dst)
			}
			out = append(out, d)
		}
		return out, nil
	}
	n, err := s.p4.ReadBatch(b.m4, 0)
	if err != nil {
		return out, err
	}
	for _, m := range b.m4[:n] {
		d := datagram{payload: stripIPv4Header(m.Buffers[0][:m.N]), src: addrOf(m.Addr), ttl: -1}
		var cm ipv4.ControlMessage
		if cm.Parse(m.OOB[:m.NN]) == nil {
			d.ttl = cm.TTL
			d.dst, _ = netip.AddrFromSlice(cm.Dst)
			d.dst = d.dst.Unmap()
		}
		out = append(out, d)
	}
	return out, nil
}

// stripIPv4Header removes the IP header that recvmmsg on a raw IPv4 socket leaves in front
// of the payload (IPv6 raw sockets never deliver theirs). A VRRP payload starts with 0x21 or
// 0x31, an IPv4 header with 0x4N, so the two cannot be confused.
func stripIPv4Header(b []byte) []byte {
	if len(b) < 20 || b[0]>>4 != 4 {
		return b
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return b
	}
	return b[ihl:]
}

func addrOf(a net.Addr) netip.Addr {
	if ia, ok := a.(*net.IPAddr); ok {
		ip, _ := netip.AddrFromSlice(ia.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// send writes one advert payload from src to dst out of this interface.
func (s *socket) send(payload []byte, src, dst netip.Addr) error {
	to := &net.IPAddr{IP: dst.AsSlice()}
	var err error
	if s.v6 {
		_, err = s.p6.WriteTo(payload, &ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: s.ifi.Index, HopLimit: 255}, to)
	} else {
		_, err = s.p4.WriteTo(payload, &ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: s.ifi.Index}, to)
	}
	if err != nil {
		return fmt.Errorf("send advert %s -> %s on %s: %w", src, dst, s.ifi.Name, err)
	}
	return nil
}

func (s *socket) close() error { return s.conn.Close() }

// groupFor is the multicast group an instance listens on and sends to.
func groupFor(v6 bool, g4, g6 netip.Addr) netip.Addr {
	if v6 {
		if g6.IsValid() {
			return g6
		}
		return packet.IPv6Group
	}
	if g4.IsValid() {
		return g4
	}
	return packet.IPv4Group
}

// join adds multicast groups for a further instance sharing the socket.
func (s *socket) join(groups []netip.Addr) error {
	for _, g := range groups {
		var err error
		if s.v6 {
			err = s.p6.JoinGroup(s.ifi, &net.IPAddr{IP: g.AsSlice()})
		} else {
			err = s.p4.JoinGroup(s.ifi, &net.IPAddr{IP: g.AsSlice()})
		}
		if err != nil && !errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("join %s on %s: %w", g, s.ifi.Name, err)
		}
	}
	return nil
}
