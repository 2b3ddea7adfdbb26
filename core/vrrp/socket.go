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
	fd   int // for poll(2) only; conn owns it
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
	s := &socket{fd: -1, ifi: ifi, v6: v6, conn: conn}
	if rc, err := conn.(syscall.Conn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { s.fd = int(fd) })
	}
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
		// IPv6 raw sockets deliver no header: the hop limit and the destination come as
		// control messages (see rx.go).
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
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
	for _, g := range groups {
		if err := p.JoinGroup(s.ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", g, err)
		}
	}
	return nil
}

// pktinfo is the ancillary data that send attaches to an advert, for the sender's batches:
// the source address and the interface (and, for IPv6, the hop limit).
func (s *socket) pktinfo(src netip.Addr) []byte {
	if s.v6 {
		return (&ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: s.ifi.Index, HopLimit: 255}).Marshal()
	}
	return (&ipv4.ControlMessage{Src: src.AsSlice(), IfIndex: s.ifi.Index}).Marshal()
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
