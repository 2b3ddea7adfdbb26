package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// The forger is the third node of the forge scenarios: it sends VRRP that no daemon would
// send, from a raw IPv4 socket with IP_HDRINCL opened inside its namespace, so that the TTL,
// the VRRP checksum and the lengths are ours to break. The kernel still fills in the IP
// total length and header checksum of every packet (raw(7)): a packet the IP layer would drop
// tests nothing of the daemons; what reaches them is a VRRP message that is wrong.
// Over IPv6 the socket has IPV6_HDRINCL: the hop limit is ours, and the kernel computes no
// VRRP checksum (a raw socket of a protocol other than ICMPv6 has no IPV6_CHECKSUM unless
// asked), so a wrong one goes out as it was built.

// forger sends whole IP packets to the VRRP group of src's family from one node.
type forger struct {
	fd   int
	ifx  int        // the interface's index
	src  netip.Addr // IPv6: the interface's link-local address, as VRRPv3 sends from
	sent atomic.Uint64
	errs atomic.Uint64
}

// newForger opens the raw socket in namespace ns, bound to ifname, with src as the source
// of every packet it builds. The socket keeps its namespace once the thread has left it.
func newForger(ns, ifname string, src netip.Addr) (*forger, error) {
	var idx int
	fd, err := socketIn(ns, func() (int, error) {
		family, opts := unix.AF_INET, forgerOpts
		if src.Is6() {
			family, opts = unix.AF_INET6, forgerOpts6
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, packet.Protocol)
		if err != nil {
			return -1, fmt.Errorf("raw socket: %w", err)
		}
		if idx, err = opts(fd, ifname); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	})
	if err != nil {
		return nil, fmt.Errorf("forger in %s: %w", ns, err)
	}
	return &forger{fd: fd, ifx: idx, src: src}, nil
}

// forgerOpts sets up a raw socket in the calling thread's namespace: our own IP headers, out
// of ifname only, multicast out of ifname (the lab's nodes have no route to 224.0.0.0/4).
func forgerOpts(fd int, ifname string) (int, error) {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return 0, fmt.Errorf("IP_HDRINCL: %w", err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
		return 0, fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
	}
	idx, err := ifIndex(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(idx)}); err != nil {
		return 0, fmt.Errorf("IP_MULTICAST_IF %s: %w", ifname, err)
	}
	// A big send buffer: the flood sends in bursts.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	return idx, nil
}

// forgerOpts6 is forgerOpts for an IPv6 socket: our own IPv6 headers (Linux 4.5 on), out of
// ifname only, multicast out of ifname.
func forgerOpts6(fd int, ifname string) (int, error) {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1); err != nil {
		return 0, fmt.Errorf("IPV6_HDRINCL: %w", err)
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
		return 0, fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
	}
	idx, err := ifIndex(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, idx); err != nil {
		return 0, fmt.Errorf("IPV6_MULTICAST_IF %s: %w", ifname, err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	return idx, nil
}

// waitAdvert returns once an advert from from has arrived (the forger listens to the VRRP
// group as any host on the segment can), so that a forgery can be timed right after the
// master's advert: the longest the master stays silent. It gives up after bound.
func (f *forger) waitAdvert(ctx context.Context, from netip.Addr, bound time.Duration) error {
	if f.src.Is6() {
		return errors.New("forger: waitAdvert listens over IPv4 only")
	}
	mreq := &unix.IPMreqn{Multiaddr: packet.IPv4Group.As4(), Ifindex: int32(f.ifx)}
	if err := unix.SetsockoptIPMreqn(f.fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil && !errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("forger: join the VRRP group: %w", err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(f.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("forger: SO_RCVTIMEO: %w", err)
	}
	// Drop what queued before: the advert must be a fresh one.
	buf := make([]byte, 2048)
	for {
		if _, _, err := unix.Recvfrom(f.fd, buf, unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, _, err := unix.Recvfrom(f.fd, buf, 0)
		if err != nil || n < 20 {
			continue
		}
		if netip.AddrFrom4([4]byte(buf[12:16])) == from {
			return nil
		}
	}
	return fmt.Errorf("forger: no advert from %s within %s", from, bound)
}

// ifIndex looks ifname up in the calling thread's namespace.
func ifIndex(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return int(ifr.Uint32()), nil
}

// socketIn runs open on a locked thread moved into namespace ns, as internal/lab's DialIn does:
// a socket belongs to the namespace it was created in. A thread that cannot move back stays
// locked, so the runtime ends it with its goroutine.
func socketIn(ns string, open func() (int, error)) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{-1, fmt.Errorf("current namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{-1, fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{-1, fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		fd, oerr := open()
		if err := netns.Set(orig); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("leave namespace %s: %w", ns, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, oerr}
	}()
	r := <-ch
	return r.fd, r.err
}

func (f *forger) close() { unix.Close(f.fd) }

// send puts one IP packet (header included) on the wire to the VRRP group.
func (f *forger) send(pkt []byte) error {
	var to unix.Sockaddr = &unix.SockaddrInet4{Addr: packet.IPv4Group.As4()}
	if f.src.Is6() {
		to = &unix.SockaddrInet6{Addr: packet.IPv6Group.As16(), ZoneId: uint32(f.ifx)}
	}
	if err := unix.Sendto(f.fd, pkt, 0, to); err != nil {
		f.errs.Add(1)
		return fmt.Errorf("forger: send: %w", err)
	}
	f.sent.Add(1)
	return nil
}

// sendEvery sends pkts in turn, n a second, until ctx ends or d has passed, in bursts every
// millisecond so that a rate of 10,000 a second needs no finer timer than the machine has.
// It returns how many it sent. Send errors (a full queue under a flood) are counted, not fatal.
func (f *forger) sendEvery(ctx context.Context, pkts [][]byte, rate int, d time.Duration) uint64 {
	start := time.Now()
	before := f.sent.Load()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var due, i int
	for {
		select {
		case <-ctx.Done():
			return f.sent.Load() - before
		case now := <-tick.C:
			el := now.Sub(start)
			if el >= d {
				return f.sent.Load() - before
			}
			// Catch up on what the rate asks for by now: a late tick sends a bigger burst.
			want := int(el.Seconds() * float64(rate))
			for ; due < want; due++ {
				_ = f.send(pkts[i%len(pkts)])
				i++
			}
		}
	}
}

// ipv4 lays out an IPv4 header in front of payload: protocol VRRP, to the VRRP group, with
// the given TTL. The kernel fills in the total length, the identification and the header
// checksum (IP_HDRINCL).
func ipv4(src netip.Addr, ttl uint8, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	b[1] = 0xc0 // DSCP CS6, as keepalived and vigil send
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = ttl
	b[9] = packet.Protocol
	s, d := src.As4(), packet.IPv4Group.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	copy(b[20:], payload)
	return b
}

// ipv6 lays out an IPv6 header in front of payload: next header VRRP, to ff02::12, with the
// given hop limit. With IPV6_HDRINCL the kernel sends the header as it is, payload length
// included.
func ipv6(src netip.Addr, hops uint8, payload []byte) []byte {
	b := make([]byte, 40+len(payload))
	b[0], b[1] = 0x6c, 0x00 // version 6, traffic class 0xc0 (CS6, as both daemons send)
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = packet.Protocol
	b[7] = hops
	s, d := src.As16(), packet.IPv6Group.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	copy(b[40:], payload)
	return b
}

// group is the VRRP multicast group of src's family.
func group(src netip.Addr) netip.Addr {
	if src.Is6() {
		return packet.IPv6Group
	}
	return packet.IPv4Group
}

// vrrpTarget is what the forger knows of the virtual router it attacks, as anyone on the
// segment can learn it from one advert.
type vrrpTarget struct {
	Version  int // 2 or 3
	VRID     uint8
	Interval time.Duration
	Addrs    []netip.Addr // the VIPs
	AuthPass string       // v2 with auth_type PASS: the real password ("" for none)
}

// advert is the well-formed advert the target's own master would send, with priority prio
// and address list addrs, from src.
func (t vrrpTarget) advert(src netip.Addr, prio uint8, addrs []netip.Addr, pass string) ([]byte, error) {
	a := packet.Advert{Version: t.Version, VRID: t.VRID, Priority: prio, Interval: t.Interval, Addrs: addrs}
	if t.Version == 2 && (pass != "" || t.AuthPass != "") {
		a.AuthType = packet.AuthPass
		copy(a.AuthData[:], pass)
	}
	msg, err := a.Marshal(src, group(src), packet.Options{})
	if err != nil {
		return nil, fmt.Errorf("forge advert: %w", err)
	}
	return msg, nil
}

// forgery is one kind of bad VRRP the forger sends: payloads builds the VRRP messages (what
// follows the IP header) and ttl is the TTL they go out with. want is the drop reason vigil
// must count for them ("" where vigil accepts the advert as RFC 5798 and keepalived do, and
// the scenario checks what follows instead).
type forgery struct {
	name string
	ttl  uint8
	want packet.Reason
	// payloads returns the VRRP messages to send in turn.
	payloads func(t vrrpTarget, src netip.Addr) ([][]byte, error)
}

// otherAddrs is the address list of another virtual router: another cluster on the segment
// that happens to use the same VRID.
var otherAddrs = []netip.Addr{netip.MustParseAddr("203.0.113.200"), netip.MustParseAddr("203.0.113.201")}

// single wraps one advert as a payload list.
func single(b []byte, err error) ([][]byte, error) {
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// The forgeries of the malformed-VRRP scenario, each from a third node at a priority above
// the master's (200: a well-formed advert would make the master step down), so that the only
// thing that keeps the cluster still is the check that must reject it.
const forgedPrio = 200

func forgeries() []forgery {
	return []forgery{
		{name: "wrong TTL (64)", ttl: 64, want: packet.ReasonBadTTL,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, forgedPrio, t.Addrs, t.AuthPass))
			}},
		{name: "bad checksum", ttl: 255, want: packet.ReasonBadChecksum,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				b, err := t.advert(src, forgedPrio, t.Addrs, t.AuthPass)
				if err != nil {
					return nil, err
				}
				b[6] ^= 0x5a // any other value is wrong
				return [][]byte{b}, nil
			}},
		{name: "wrong PASS password", ttl: 255, want: packet.ReasonAuthMismatch,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				if t.Version != 2 {
					return nil, errors.New("a PASS password needs a VRRPv2 instance")
				}
				return single(t.advert(src, forgedPrio, t.Addrs, "guessed"))
			}},
		{name: "VRID collision, other addresses", ttl: 255, want: packet.ReasonForeignAddrs,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, forgedPrio, otherAddrs, t.AuthPass))
			}},
		{name: "priority 0 storm", ttl: 255, want: "",
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, 0, t.Addrs, t.AuthPass))
			}},
		{name: "truncated", ttl: 255, want: packet.ReasonBadLength,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				// The header announces the VIPs, the packet ends in the middle of the first.
				b, err := t.advert(src, forgedPrio, t.Addrs, t.AuthPass)
				if err != nil {
					return nil, err
				}
				return [][]byte{b[:10]}, nil
			}},
		{name: "too short for a header", ttl: 255, want: packet.ReasonTooShort,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				b, err := t.advert(src, forgedPrio, t.Addrs, t.AuthPass)
				if err != nil {
					return nil, err
				}
				return [][]byte{b[:4]}, nil
			}},
		{name: "oversized (1480 bytes)", ttl: 255, want: packet.ReasonBadLength,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				// A valid advert followed by what fills the lab's 1500-byte MTU, the checksum
				// recomputed over all of it, so that only the length gives it away.
				b, err := t.advert(src, forgedPrio, t.Addrs, t.AuthPass)
				if err != nil {
					return nil, err
				}
				big := make([]byte, 1480)
				copy(big, b)
				for i := len(b); i < len(big); i++ {
					big[i] = byte(i)
				}
				big[6], big[7] = 0, 0
				binary.BigEndian.PutUint16(big[6:], vrrpChecksum(big, t.Version, src))
				return [][]byte{big}, nil
			}},
	}
}

// vrrpChecksum is the checksum a VRRP message of this version from src to the group of its
// family carries (v2: the message alone; v3: with the IPv4 or the IPv6 pseudo-header), for
// messages the codec would refuse to build. msg's checksum field must be zero.
func vrrpChecksum(msg []byte, version int, src netip.Addr) uint16 {
	if version == 2 && src.Is4() {
		return packet.Checksum(msg)
	}
	if src.Is6() {
		// RFC 8200 8.1: source, destination, upper-layer length (32 bits), 3 zero bytes, next
		// header.
		s, d := src.As16(), packet.IPv6Group.As16()
		ph := make([]byte, 0, 40+len(msg))
		ph = append(ph, s[:]...)
		ph = append(ph, d[:]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(msg)))
		ph = append(ph, 0, 0, 0, packet.Protocol)
		ph = append(ph, msg...)
		return packet.Checksum(ph)
	}
	s, d := src.As4(), packet.IPv4Group.As4()
	ph := make([]byte, 0, 12+len(msg))
	ph = append(ph, s[:]...)
	ph = append(ph, d[:]...)
	ph = append(ph, 0, packet.Protocol)
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(msg)))
	ph = append(ph, msg...)
	return packet.Checksum(ph)
}

// garbage returns n messages of random bytes aimed at the target's VRID (garbage for
// another VRID costs a daemon one lookup and is not counted as a drop by either daemon),
// 1 to 80 bytes long; half start like a VRRP advert of the target's version, so that they get
// past the version check into the length and checksum checks. seed makes a run repeatable.
func garbage(t vrrpTarget, n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 15))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 1+r.IntN(80))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		if i%2 == 0 {
			b[0] = byte(t.Version)<<4 | 1
		}
		if len(b) > 1 {
			b[1] = t.VRID
		}
		out[i] = b
	}
	return out
}

// packets wraps payloads in IP headers of src's family from src with ttl (the hop limit).
func packets(src netip.Addr, ttl uint8, payloads [][]byte) [][]byte {
	wrap := ipv4
	if src.Is6() {
		wrap = ipv6
	}
	out := make([][]byte, len(payloads))
	for i, p := range payloads {
		out[i] = wrap(src, ttl, p)
	}
	return out
}

// ownerForgeries are the adverts of the forged-owner scenario: a third node claims to be the
// address owner (priority 255), once with the virtual router's own address list (anyone on
// the segment learns it from one advert) and once with another. Each is one advert: one is
// all it takes.
func ownerForgeries() []forgery {
	return []forgery{
		{name: "priority 255, right addresses", ttl: 255, want: "",
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, 255, t.Addrs, t.AuthPass))
			}},
		{name: "priority 255, other addresses", ttl: 255, want: packet.ReasonForeignAddrs,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, 255, otherAddrs, t.AuthPass))
			}},
	}
}

// otherAddrs6 is otherAddrs over IPv6.
var otherAddrs6 = []netip.Addr{netip.MustParseAddr("2001:db8::200"), netip.MustParseAddr("2001:db8::201")}

// reasonUnknownVRID is the drop reason vigil's engine counts (never logs) for an advert whose
// VRID no instance on the socket has: it demultiplexes by VRID before the codec's checks.
const reasonUnknownVRID packet.Reason = "unknown_vrid"

// withChecksum sets b's VRRP checksum to the right one for src, so that the fault a forgery
// claims is its only one.
func withChecksum(b []byte, version int, src netip.Addr) []byte {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], vrrpChecksum(b, version, src))
	return b
}

// forgeries6 are the forgeries of the malformed-VRRP scenario over IPv6: VRRPv3 from the
// forger's link-local address to ff02::12, each at forgedPrio and with a right checksum but
// for the one fault it is named after.
func forgeries6() []forgery {
	mod := func(f func(b []byte) []byte) func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
		return func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
			b, err := t.advert(src, forgedPrio, t.Addrs, "")
			if err != nil {
				return nil, err
			}
			return [][]byte{f(b)}, nil
		}
	}
	fix := func(src netip.Addr) func(b []byte) []byte {
		return func(b []byte) []byte { return withChecksum(b, 3, src) }
	}
	return []forgery{
		{name: "wrong hop limit (64)", ttl: 64, want: packet.ReasonBadTTL,
			payloads: mod(func(b []byte) []byte { return b })},
		{name: "hop limit 1", ttl: 1, want: packet.ReasonBadTTL,
			payloads: mod(func(b []byte) []byte { return b })},
		{name: "bad checksum", ttl: 255, want: packet.ReasonBadChecksum,
			payloads: mod(func(b []byte) []byte { b[6] ^= 0x5a; return b })},
		{name: "bad version (4)", ttl: 255, want: packet.ReasonBadVersion,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return mod(func(b []byte) []byte { b[0] = 4<<4 | 1; return fix(src)(b) })(t, src)
			}},
		{name: "VRRPv2 over IPv6", ttl: 255, want: packet.ReasonV2OverIPv6,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return mod(func(b []byte) []byte { b[0] = 2<<4 | 1; return fix(src)(b) })(t, src)
			}},
		{name: "bad type (2)", ttl: 255, want: packet.ReasonBadType,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return mod(func(b []byte) []byte { b[0] = 3<<4 | 2; return fix(src)(b) })(t, src)
			}},
		{name: "too short for a header", ttl: 255, want: packet.ReasonTooShort,
			payloads: mod(func(b []byte) []byte { return b[:4] })},
		{name: "truncated", ttl: 255, want: packet.ReasonBadLength,
			payloads: mod(func(b []byte) []byte { return b[:12] })},
		{name: "address count above the addresses", ttl: 255, want: packet.ReasonBadLength,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return mod(func(b []byte) []byte { b[3]++; return fix(src)(b) })(t, src)
			}},
		{name: "address count 0 with an address", ttl: 255, want: packet.ReasonBadLength,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return mod(func(b []byte) []byte { b[3] = 0; return fix(src)(b) })(t, src)
			}},
		{name: "wrong VRID", ttl: 255, want: reasonUnknownVRID,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				t.VRID++
				return single(t.advert(src, forgedPrio, t.Addrs, ""))
			}},
		{name: "VRID collision, other addresses", ttl: 255, want: packet.ReasonForeignAddrs,
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, forgedPrio, otherAddrs6, ""))
			}},
		{name: "priority 0 storm", ttl: 255, want: "",
			payloads: func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
				return single(t.advert(src, 0, t.Addrs, ""))
			}},
	}
}
