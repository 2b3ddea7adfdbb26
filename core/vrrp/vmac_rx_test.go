package vrrp_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestVMACHearsEachAdvertOnce: a master with use_vmac (its VMAC up) hears every advert of
// another router exactly once, whether that router sends from its own MAC (the frame
// reaches the parent interface, and the VMAC too if it had joined the VRRP group) or from
// the virtual MAC (the frame reaches the VMAC alone). Lower-priority adverts are injected
// from n2 as whole Ethernet frames; the master answers each one it hears with an advert of
// its own (the log says so only once per split-brain episode), so the answers on the wire
// count what it heard. Both ways of sending the adverts, with and without vmac_xmit_base.
//
// The instances are address owners in state MASTER (master at once) with a 40 s advert
// interval, so that no periodic advert falls among the answers: each answer restarts the
// interval, and every instance is answered once before its rounds begin.
func TestVMACHearsEachAdvertOnce(t *testing.T) {
	l := newLab(t, 2)
	const n, prio = 5, 255
	insts := []inst{
		{name: "VI_XMIT_VMAC", vrid: 91, prio: prio, advert: "40", version: 3, vip: "192.0.2.191/24", extra: vmacLine, state: "MASTER"},
		{name: "VI_XMIT_BASE", vrid: 92, prio: prio, advert: "40", version: 3, vip: "192.0.2.192/24", extra: vmacXmitLine, state: "MASTER"},
		{name: "VI_V6", vrid: 93, prio: prio, advert: "40", version: 3, vip: "2001:db8::1:93/64", extra: vmacLine, state: "MASTER"},
	}
	var conf strings.Builder
	for _, in := range insts {
		conf.WriteString(in.conf())
	}
	p := l.start(0, conf.String())
	for _, in := range insts {
		addr := netip.MustParsePrefix(in.vip).Addr()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ok, _ := l.Nodes[0].HasAddr(l.ctx, addr); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("vigil alone on the bridge does not hold %s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	fd, ifi := packetSocketIn(t, l.Nodes[1].NS, "eth0", 0)
	defer unix.Close(fd)
	rx, _ := packetSocketIn(t, l.Nodes[1].NS, "eth0", unix.ETH_P_ALL)
	defer unix.Close(rx)
	for _, in := range insts {
		vip := netip.MustParsePrefix(in.vip).Addr()
		src, group, vmac := l.Nodes[1].Addr4.Addr(), packet.IPv4Group, net.HardwareAddr{0, 0, 0x5e, 0, 1, byte(in.vrid)}
		if vip.Is6() {
			// Any link-local address will do: vigil checks the advert, not the neighbour.
			src, group, vmac = netip.MustParseAddr("fe80::5e:1"), packet.IPv6Group, net.HardwareAddr{0, 0, 0x5e, 0, 2, byte(in.vrid)}
		}
		adv := packet.Advert{Version: 3, VRID: uint8(in.vrid), Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip}}
		payload, err := adv.Marshal(src, group, packet.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Prime: one advert from n2's own MAC, which every version hears, restarts the
		// instance's advert interval; its answers (one, or two where heard twice) are read away.
		sendFrame(t, fd, ifi.Index, ifi.HardwareAddr, src, group, payload)
		if got := answers(t, rx, in.vrid, prio, 1); got == 0 {
			t.Fatalf("%s: no answer to a lower-priority advert from n2's own MAC", in.name)
		}
		for _, from := range []net.HardwareAddr{ifi.HardwareAddr, vmac} {
			for range n {
				sendFrame(t, fd, ifi.Index, from, src, group, payload)
			}
			if got := answers(t, rx, in.vrid, prio, n); got != n {
				t.Errorf("%s: %d adverts from %s, the master answered %d", in.name, n, from, got)
			} else {
				t.Logf("%s: %d adverts from %s answered %d times", in.name, n, from, got)
			}
		}
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		// A VMAC is down until its instance is master, and its listener's socket reports
		// that (ENETDOWN) once: routine, not a failed read.
		if strings.Contains(line, "advert dropped") || strings.Contains(line, "[ERROR]") || strings.Contains(line, "socket read failed") {
			t.Errorf("vigil: %s", line)
		}
	}
}

// answers reads the VRRP adverts for vrid at priority prio that arrive on the packet socket
// fd, until want of them have come (or 10 s have passed), and then for another 500 ms, in
// which a second copy would show; it returns how many came.
func answers(t *testing.T, fd, vrid, prio, want int) int {
	t.Helper()
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	got, buf := 0, make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	var settle time.Time
	for {
		now := time.Now()
		if settle.IsZero() && (got >= want || now.After(deadline)) {
			settle = now.Add(500 * time.Millisecond)
		}
		if !settle.IsZero() && now.After(settle) {
			return got
		}
		m, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // the receive timeout: look at the clock again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // what n2 injects itself
		}
		if v, p, ok := vrrpOf(buf[:m]); ok && v == vrid && p == prio {
			got++
		}
	}
}

// vrrpOf returns the VRID and priority of a VRRP advert in an Ethernet frame.
func vrrpOf(f []byte) (vrid, prio int, ok bool) {
	if len(f) < 14 {
		return 0, 0, false
	}
	var adv []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		ip := f[14:]
		if len(ip) < 20 || ip[9] != 112 {
			return 0, 0, false
		}
		adv = ip[int(ip[0]&0x0f)*4:]
	case 0x86dd:
		ip := f[14:]
		if len(ip) < 40 || ip[6] != 112 {
			return 0, 0, false
		}
		adv = ip[40:]
	default:
		return 0, 0, false
	}
	if len(adv) < 3 {
		return 0, 0, false
	}
	return int(adv[1]), int(adv[2]), true
}

// packetSocketIn opens a raw packet socket on dev in the network namespace ns (a lab
// node's), from a thread that enters it and goes back. With proto 0 it only sends; with
// an Ethernet protocol (ETH_P_ALL) it is bound to dev and receives that protocol's frames.
func packetSocketIn(t *testing.T, ns, dev string, proto uint16) (int, *net.Interface) {
	t.Helper()
	type result struct {
		fd  int
		ifi *net.Interface
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r := func() result {
			self, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return result{err: err}
			}
			defer self.Close()
			target, err := os.Open("/run/netns/" + ns)
			if err != nil {
				return result{err: err}
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				return result{err: fmt.Errorf("setns %s: %w", ns, err)}
			}
			ifi, ierr := net.InterfaceByName(dev)
			fd, serr := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(netif.Htons(proto)))
			if serr == nil && ierr == nil && proto != 0 {
				if serr = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: netif.Htons(proto), Ifindex: ifi.Index}); serr != nil {
					unix.Close(fd)
				}
			}
			if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
				// This thread stays in the lab's namespace: leave it locked, so that it
				// ends with this goroutine instead of running others.
				return result{err: fmt.Errorf("setns back: %w", err)}
			}
			defer runtime.UnlockOSThread()
			if ierr != nil || serr != nil {
				if serr == nil {
					unix.Close(fd)
				}
				return result{err: fmt.Errorf("in %s: %v %v", ns, ierr, serr)}
			}
			return result{fd: fd, ifi: ifi}
		}()
		ch <- r
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.fd, r.ifi
}

// sendFrame sends a VRRP payload as an Ethernet frame from the MAC from and the address src
// to the multicast group, TTL or hop limit 255.
func sendFrame(t *testing.T, fd, ifindex int, from net.HardwareAddr, src, group netip.Addr, payload []byte) {
	t.Helper()
	var dstMAC, hdr []byte
	ethType := []byte{0x08, 0x00}
	if group.Is6() {
		g := group.As16()
		dstMAC = []byte{0x33, 0x33, g[12], g[13], g[14], g[15]}
		ethType = []byte{0x86, 0xdd}
		hdr = make([]byte, 40)
		hdr[0] = 0x60
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(payload)))
		hdr[6], hdr[7] = 112, 255
		copy(hdr[8:24], src.AsSlice())
		copy(hdr[24:40], group.AsSlice())
	} else {
		g := group.As4()
		dstMAC = []byte{0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]}
		hdr = make([]byte, 20)
		hdr[0], hdr[1] = 0x45, 0xc0
		binary.BigEndian.PutUint16(hdr[2:], uint16(20+len(payload)))
		hdr[8], hdr[9] = 255, 112
		copy(hdr[12:16], src.AsSlice())
		copy(hdr[16:20], group.AsSlice())
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(hdr[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(hdr[10:], ^uint16(sum))
	}
	f := append(append(append(append([]byte{}, dstMAC...), from...), ethType...), hdr...)
	f = append(f, payload...)
	to := &unix.SockaddrLinklayer{Ifindex: ifindex, Halen: 6}
	copy(to.Addr[:], dstMAC)
	if err := unix.Sendto(fd, f, 0, to); err != nil {
		t.Fatalf("send frame from %s: %v", from, err)
	}
}
