package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/netif"
)

// The capture is an AF_PACKET socket on the lab's bridge, opened inside the switch namespace.
// The bridge is put in promiscuous mode so that it passes up every frame it forwards, unicast
// ones included, and every frame carries the kernel's receive timestamp (SO_TIMESTAMPNS,
// CLOCK_REALTIME: the clock ping -D prints too).

type evKind int

const (
	evAdvert    evKind = iota // VRRP advertisement (IPv4, protocol 112)
	evGARP                    // ARP with sender IP == target IP
	evEchoReply               // ICMP echo reply
)

type event struct {
	T    time.Time
	Kind evKind
	Src  netip.Addr // IP source (advert, echo reply) or ARP sender IP
	Mac  net.HardwareAddr
	VRID uint8
	Prio uint8
}

type capture struct {
	fd     int
	stop   atomic.Bool
	done   chan struct{}
	mu     sync.Mutex
	events []event
}

// openCapture opens the packet socket on ifname inside the named network namespace
// (/run/netns/ns). Only this OS thread changes namespace, and it changes back before the
// goroutine may move; a socket keeps the namespace it was created in.
func openCapture(ns, ifname string) (*capture, error) {
	fd, err := func() (fd int, err error) {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			return -1, err
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			return -1, err
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return -1, fmt.Errorf("setns %s: %w", ns, err)
		}
		defer func() {
			if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
				// Leave the thread locked: the runtime discards it when this goroutine ends.
				err = errors.Join(err, fmt.Errorf("restore namespace: %w", rerr))
				return
			}
			runtime.UnlockOSThread()
		}()
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return -1, err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(netif.Htons(unix.ETH_P_ALL)))
		if err != nil {
			return -1, fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: netif.Htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind %s: %w", ifname, err)
		}
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("promiscuous %s: %w", ifname, err)
		}
		for _, o := range []struct{ opt, val int }{{unix.SO_TIMESTAMPNS, 1}, {unix.SO_RCVBUF, 8 << 20}} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.opt, o.val); err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}()
	if err != nil {
		return nil, err
	}
	c := &capture{fd: fd, done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for !c.stop.Load() {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		ts := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
					ts = time.Unix(sec, nsec)
				}
			}
		}
		if ev, ok := parseFrame(buf[:n]); ok {
			ev.T = ts
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
		}
	}
}

func parseFrame(f []byte) (event, bool) {
	if len(f) < 14 {
		return event{}, false
	}
	src := net.HardwareAddr(append([]byte(nil), f[6:12]...))
	switch binary.BigEndian.Uint16(f[12:14]) {
	case 0x0806: // ARP
		a := f[14:]
		if len(a) < 28 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
			return event{}, false
		}
		spa, _ := netip.AddrFromSlice(a[14:18])
		tpa, _ := netip.AddrFromSlice(a[24:28])
		if spa != tpa {
			return event{}, false
		}
		return event{Kind: evGARP, Src: spa, Mac: src}, true
	case 0x0800: // IPv4
		ip := f[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return event{}, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+8 {
			return event{}, false
		}
		s, _ := netip.AddrFromSlice(ip[12:16])
		p := ip[ihl:]
		switch ip[9] {
		case 112:
			return event{Kind: evAdvert, Src: s, Mac: src, VRID: p[1], Prio: p[2]}, true
		case 1:
			if p[0] == 0 {
				return event{Kind: evEchoReply, Src: s, Mac: src}, true
			}
		}
	}
	return event{}, false
}

// since returns the events captured at or after t.
func (c *capture) since(t time.Time) []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, e := range c.events {
		if !e.T.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

// reset forgets what was captured so far.
func (c *capture) reset() {
	c.mu.Lock()
	c.events = nil
	c.mu.Unlock()
}

func (c *capture) close() {
	c.stop.Store(true)
	<-c.done
	unix.Close(c.fd)
}

// hasAdvertFrom reports whether an advert from src for vrid with a priority above 0 was
// captured after t.
func (c *capture) hasAdvertFrom(src netip.Addr, vrid uint8, t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		e := c.events[i]
		if e.T.Before(t) {
			return false
		}
		if e.Kind == evAdvert && e.Src == src && e.VRID == vrid && e.Prio > 0 {
			return true
		}
	}
	return false
}
