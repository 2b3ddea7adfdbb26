package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// rxRing receives adverts with recvmmsg into buffers, message headers and control buffers
// set up once. A backup of hundreds of instances with 10 ms adverts spends most of its time
// here, and the general-purpose batch reader of x/net rebuilds every header and allocates
// the addresses and control messages on each call, which cost more than the system call.
type rxRing struct {
	v6    bool
	link  bool // a VMAC listener: whole IP packets, header checksum unchecked (see parseLink)
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6
	oobs  [][]byte
	used  int // headers the last call filled, to be reset before the next
	raw   syscall.RawConn
	prog  *rxProgress
	seq   uint64 // the number of the call that filled the headers (rxProgress.started)

	// recv is r.recvmmsg, made once: a callback made at each read, with the results it
	// sets, was two allocations per read (0.6 MB/s of garbage on a backup at 255
	// instances × 10 ms). n and errno are what the last call returned.
	recv  func(fd uintptr) bool
	n     int
	errno syscall.Errno
}

// rxBatch is how many adverts one system call can return.
const rxBatch = 128

func newRxRing(s *socket, prog *rxProgress) (*rxRing, error) {
	rc, err := s.rawConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	r := &rxRing{
		v6:    s.v6,
		link:  s.link != nil,
		hdrs:  make([]unix.Mmsghdr, rxBatch),
		iovs:  make([]unix.Iovec, rxBatch),
		bufs:  make([][]byte, rxBatch),
		names: make([]unix.RawSockaddrInet6, rxBatch),
		oobs:  make([][]byte, rxBatch),
		raw:   rc,
		prog:  prog,
	}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, 1500)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		h := &r.hdrs[i].Hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if s.v6 && s.link == nil {
			// IPv4 and the VMAC listener need neither: the IP header in front of the payload has it all.
			r.oobs[i] = make([]byte, 128)
			h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
			h.Control = &r.oobs[i][0]
		}
	}
	r.used = rxBatch
	r.recv = r.recvmmsg
	return r, nil
}

// read waits for adverts and returns those that arrived together. The payloads alias the
// ring's buffers: they are valid until the next call.
func (r *rxRing) read(out []datagram) ([]datagram, error) {
	out = out[:0]
	for i := range r.used {
		r.hdrs[i].Len = 0
		if r.v6 && !r.link {
			r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			r.hdrs[i].Hdr.SetControllen(len(r.oobs[i]))
		}
	}
	err := r.raw.Read(r.recv)
	if err != nil {
		return out, err
	}
	n, errno := r.n, r.errno
	if errno != 0 {
		r.used = 0
		return out, fmt.Errorf("recvmmsg: %w", errno)
	}
	r.used = n
	for i := range n {
		var oob []byte
		if r.v6 && !r.link {
			oob = r.oobs[i][:r.hdrs[i].Hdr.Controllen]
		}
		out = append(out, decodeRx(r.bufs[i][:r.hdrs[i].Len], r.v6, r.link, r.names[i].Addr, oob))
	}
	return out, nil
}

// recvmmsg is the read's callback (syscall.RawConn.Read): one recvmmsg, its results in r.n
// and r.errno. A raw system call: with MSG_DONTWAIT it never blocks (the poller does the
// waiting), and it keeps the runtime's monitor from taking the processor away from a read
// that copies a hundred adverts, which costs more than the read itself.
func (r *rxRing) recvmmsg(fd uintptr) bool {
	r.seq = r.prog.started.Add(1)
	r0, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	r.n, r.errno = int(r0), e
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		r.prog.handedOut(r.seq, true) // the socket is empty
		return false                  // wait for the poller
	}
	return true
}

// decodeRx turns one received message into the datagram that Engine.receive checks and
// dispatches: what a raw IPv4 socket or a VMAC listener delivers is a whole IP packet, what
// a raw IPv6 socket delivers a payload, with the sender's address (src) and control
// messages (oob) beside it. A packet whose IP header is unusable comes back marked badHeader,
// so that receive counts it like any other drop. The fuzz test (FuzzReceive) enters here.
func decodeRx(b []byte, v6, link bool, src [16]byte, oob []byte) datagram {
	var d datagram
	ok := true
	switch {
	case link:
		d, ok = parseLink(b, v6)
	case !v6:
		d, ok = parseIPv4(b)
	default:
		d = datagram{payload: b, ttl: -1, src: netip.AddrFrom16(src)}
		parseIPv6Control(oob, &d)
	}
	if !ok {
		return datagram{badHeader: true, ttl: -1}
	}
	return d
}

// rxProgress tells how far a socket's reader has got, so that a unit about to act on an
// expired Master_Down_Timer can first wait for the adverts that are already in the socket
// (see unit.settle). Calls are numbered as the reader makes them; a call's adverts count as
// handed out once each is in its unit's inbox or refresh word.
type rxProgress struct {
	started atomic.Uint64 // the last recvmmsg call begun
	emptied atomic.Uint64 // the last call that left the socket empty, once its adverts were handed out
	handed  atomic.Uint64 // the last call whose adverts were handed out
	gone    atomic.Bool   // the reader stopped: nobody waits for it any more

	waiting atomic.Bool // a unit waits on ch
	mu      sync.Mutex
	ch      chan struct{} // closed at the reader's next progress
}

// handedOut records that the adverts of call seq have been handed out, and whether that
// call left the socket empty.
func (p *rxProgress) handedOut(seq uint64, empty bool) {
	p.handed.Store(seq)
	if empty {
		p.emptied.Store(seq)
	}
	p.wake()
}

// inHand reports whether the reader is in a call, or holds adverts of its last call that
// it has not handed out yet.
func (p *rxProgress) inHand() bool {
	return !p.gone.Load() && p.started.Load() > p.handed.Load()
}

// stop records that the reader has returned.
func (p *rxProgress) stop() {
	p.gone.Store(true)
	p.wake()
}

func (p *rxProgress) wake() {
	if !p.waiting.Load() {
		return // the usual case: one atomic load per batch
	}
	p.mu.Lock()
	p.waiting.Store(false)
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
	p.mu.Unlock()
}

// next returns a channel that is closed when the reader makes progress. The caller checks
// its condition again after next returns: progress made in between is not lost, since the
// reader stores it before it looks for waiters.
func (p *rxProgress) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	p.waiting.Store(true)
	return p.ch
}

// drainBatches bounds how many full batches past the call in progress a unit waits for when
// the socket never runs empty (a flood): by then the reader has read far more than a raw
// socket's receive buffer held when the unit looked.
const drainBatches = 16

// caughtUp reports whether every datagram that was in the socket when call since was the
// last one begun has been handed out: a later call found the socket empty (or emptied it),
// drainBatches calls went by, or the reader is gone.
func (p *rxProgress) caughtUp(since uint64) bool {
	return p.emptied.Load() > since || p.handed.Load() > since+drainBatches || p.gone.Load()
}

// parseIPv4 takes the header that a raw IPv4 socket delivers in front of the payload.
func parseIPv4(b []byte) (datagram, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return datagram{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || ihl > len(b) {
		return datagram{}, false
	}
	// The total length bounds the payload: a frame from a packet socket carries the
	// Ethernet padding of a short packet after it.
	if n := int(binary.BigEndian.Uint16(b[2:4])); n >= ihl && n < len(b) {
		b = b[:n]
	}
	return datagram{
		payload: b[ihl:],
		ttl:     int(b[8]),
		src:     netip.AddrFrom4([4]byte(b[12:16])),
		dst:     netip.AddrFrom4([4]byte(b[16:20])),
	}, true
}

// parseIPv6Control reads the hop limit and the destination address out of the control
// messages of one received IPv6 datagram.
func parseIPv6Control(oob []byte, d *datagram) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.IPPROTO_IPV6 {
			switch h.Type {
			case unix.IPV6_HOPLIMIT:
				if len(data) >= 4 {
					d.ttl = int(int32(binary.NativeEndian.Uint32(data)))
				}
			case unix.IPV6_PKTINFO:
				if len(data) >= 16 {
					d.dst = netip.AddrFrom16([16]byte(data[:16]))
				}
			}
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}

// parseLink takes a whole IP packet from a VMAC listener. The kernel's IP layer has not
// seen it (a packet socket hears frames before it): what it would have checked and a raw
// socket relies on, this checks: the version, lengths, the IPv4 header checksum. The
// socket's filter has let through only unfragmented VRRP.
func parseLink(b []byte, v6 bool) (datagram, bool) {
	if !v6 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return datagram{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || n < ihl || n > len(b) || packet.Checksum(b[:ihl]) != 0 {
			return datagram{}, false
		}
		return parseIPv4(b[:n])
	}
	if len(b) < 40 || b[0]>>4 != 6 || b[6] != 112 {
		return datagram{}, false
	}
	n := 40 + int(binary.BigEndian.Uint16(b[4:6]))
	if n > len(b) {
		return datagram{}, false
	}
	return datagram{
		payload: b[40:n],
		ttl:     int(b[7]),
		src:     netip.AddrFrom16([16]byte(b[8:24])),
		dst:     netip.AddrFrom16([16]byte(b[24:40])),
	}, true
}
