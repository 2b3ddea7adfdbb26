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

	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestVMACHearsEachAdvertOnce: a master with use_vmac (its VMAC up) hears every advert of
// another router exactly once, whether that router sends from its own MAC (the frame
// reaches the parent interface, and the VMAC too if it had joined the VRRP group) or from
// the virtual MAC (the frame reaches the VMAC alone). Lower-priority adverts are injected
// from n2 as whole Ethernet frames; each one heard makes the master log "master heard a
// lower priority" once. Both ways of sending the adverts, with and without vmac_xmit_base.
func TestVMACHearsEachAdvertOnce(t *testing.T) {
	l := newLab(t, 2)
	const n = 5
	insts := []inst{
		{name: "VI_XMIT_VMAC", vrid: 91, prio: 200, advert: "1", version: 3, vip: "192.0.2.191/24", extra: vmacLine},
		{name: "VI_XMIT_BASE", vrid: 92, prio: 200, advert: "1", version: 3, vip: "192.0.2.192/24", extra: vmacXmitLine},
		{name: "VI_V6", vrid: 93, prio: 200, advert: "1", version: 3, vip: "2001:db8::1:93/64", extra: vmacLine},
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

	fd, ifi := packetSocketIn(t, l.Nodes[1].NS, "eth0")
	defer unix.Close(fd)
	heard := func(name string) int {
		c := 0
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, "master heard a lower priority") && strings.Contains(line, "instance="+name) {
				c++
			}
		}
		return c
	}
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
		for round, from := range []net.HardwareAddr{ifi.HardwareAddr, vmac} {
			for range n {
				sendFrame(t, fd, ifi.Index, from, src, group, payload)
			}
			want := (round + 1) * n
			deadline := time.Now().Add(10 * time.Second)
			for heard(in.name) < want && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			// A second copy would come with the first: give it time to show, then count.
			time.Sleep(500 * time.Millisecond)
			if got := heard(in.name); got != want {
				t.Errorf("%s: after %d adverts from %s, %d so far in all, vigil heard %d", in.name, n, from, want, got)
			} else {
				t.Logf("%s: %d adverts from %s heard %d times", in.name, n, from, n)
			}
		}
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, "advert dropped") || strings.Contains(line, "[ERROR]") {
			t.Errorf("vigil: %s", line)
		}
	}
}

// packetSocketIn opens a raw packet socket on dev in the network namespace ns (a lab
// node's), from a thread that enters it and goes back.
func packetSocketIn(t *testing.T, ns, dev string) (int, *net.Interface) {
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
			fd, serr := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
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
