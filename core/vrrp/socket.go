package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// socket is the raw VRRP socket of one interface and address family, shared by every
// instance on that interface: adverts arrive once and are handed out by VRID.
type socket struct {
	fd   int // for poll(2) only; conn (or link) owns it
	ifi  *net.Interface
	v6   bool
	conn net.PacketConn
	p4   *ipv4.PacketConn
	p6   *ipv6.PacketConn
	// link is set instead of conn on a VMAC's listener (openVMACListener): a packet socket
	// that only receives, and delivers whole IP packets.
	link *os.File
}

// datagram is one received VRRP payload with what the IP layer told us about it.
type datagram struct {
	payload []byte
	src     netip.Addr
	dst     netip.Addr
	ttl     int
	// badHeader: the IP header in front of the payload was unusable (see decodeRx); the
	// rest is empty.
	badHeader bool
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
	rc, err := s.rawConn()
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

func (s *socket) close() error {
	if s.link != nil {
		return s.link.Close()
	}
	return s.conn.Close()
}

// rawConn is the socket's descriptor for system calls that go through the runtime poller.
func (s *socket) rawConn() (syscall.RawConn, error) {
	if s.link != nil {
		return s.link.SyscallConn()
	}
	return s.conn.(syscall.Conn).SyscallConn()
}

// openVMACListener opens the socket that hears, on a VMAC, the adverts of another master
// that sends from the same virtual MAC (FRR's vrrpd, keepalived and vigil with use_vmac, a
// split brain). While the VMAC is up the kernel hands a frame whose source is the VMAC's
// own MAC to that macvlan alone (macvlan's private mode, vigil's), never to the parent
// interface, whose socket would otherwise hear it: without this socket both stay master
// for good. A raw IP socket on the VMAC would need the VMAC to join the VRRP group, and
// then every other advert, which the parent's socket already hears, would arrive twice.
// So this is a packet socket that takes only VRRP packets sent from the VMAC's MAC
// (mac): those never reach the parent, and every advert is heard exactly once. It joins
// nothing and sends nothing.
func openVMACListener(ifi *net.Interface, v6 bool, mac net.HardwareAddr) (*socket, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("VMAC listener on %s: MAC %v is not an Ethernet address", ifi.Name, mac)
	}
	proto, protoOff := uint16(unix.ETH_P_IP), uint32(9) // IPv4: the protocol byte
	if v6 {
		proto, protoOff = unix.ETH_P_IPV6, 6 // IPv6: the next header byte
	}
	filter, err := vmacFilter(protoOff, !v6, mac)
	if err != nil {
		return nil, err
	}
	// Protocol 0 until bound: a packet socket with a protocol hears every interface from its
	// creation on, before the filter and the bind.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("VMAC listener on %s: %w", ifi.Name, err)
	}
	fail := func(what string, err error) (*socket, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("VMAC listener on %s: %s: %w", ifi.Name, what, err)
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
		return fail("attach filter", err)
	}
	// Our own adverts leave from the VMAC too (IPv4 without vmac_xmit_base). Kernels before
	// 4.20 lack the option; receive drops our own adverts by their source address anyway.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: netif.Htons(proto), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	s := &socket{fd: fd, ifi: ifi, v6: v6, link: os.NewFile(uintptr(fd), "vrrp-vmac-"+ifi.Name)}
	if err := s.setBuffer(); err != nil {
		s.close()
		return nil, fmt.Errorf("VMAC listener on %s: %w", ifi.Name, err)
	}
	return s, nil
}

// vmacFilter is the classic BPF program of a VMAC listener: VRRP (protocol 112 at protoOff
// of the IP header), unfragmented for IPv4, from the Ethernet source address mac.
func vmacFilter(protoOff uint32, v4 bool, mac net.HardwareAddr) ([]unix.SockFilter, error) {
	// The link-layer header lies before the IP header that a datagram packet socket's
	// filter starts at: the kernel's SKF_LL_OFF reaches it.
	const llOff = 0xffe00000 // SKF_LL_OFF, -0x200000
	const srcMAC = llOff + 6
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: protoOff, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 112, SkipFalse: 6},
		bpf.LoadAbsolute{Off: 6, Size: 2}, // IPv4 flags and fragment offset (IPv6: ignored below)
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: 4},
		bpf.LoadAbsolute{Off: srcMAC, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(mac[0:4]), SkipFalse: 2},
		bpf.LoadAbsolute{Off: srcMAC + 4, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(binary.BigEndian.Uint16(mac[4:6])), SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 0xffff},
	}
	if !v4 {
		prog[2] = bpf.LoadConstant{Dst: bpf.RegA, Val: 0}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("VMAC listener filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

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
