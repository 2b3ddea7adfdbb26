package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestRxRingReadAllocatesNothing: a read costs the system call and nothing on the heap. A
// backup reads 25,500 adverts a second at 255 instances × 10 ms; each read allocated its
// callback and the two results the callback set (0.6 MB/s of garbage in a vrrp child's
// profile), which the collector then paid for. A UDP socket on loopback stands in for the
// raw socket: recvmmsg reads it the same way.
func TestRxRingReadAllocatesNothing(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("no loopback UDP socket: %v", err)
	}
	defer conn.Close()
	ring, err := newRxRing(&socket{conn: conn}, &rxProgress{})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddrPort(conn.LocalAddr().String())
	msg := make([]byte, 40)
	out := make([]datagram, 0, rxBatch)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := conn.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		if out, err = ring.read(out); err != nil || len(out) != 1 {
			t.Fatalf("read: %d datagrams, %v", len(out), err)
		}
	})
	if allocs > 0 {
		t.Errorf("a read with its send allocates %.1f times", allocs)
	}
}

// TestReceiveToInboxAllocatesOnce: an advert that a socket reader hands to its unit costs
// one heap allocation, the fsm.Event that carries it to the machine, and no box around
// that: at 255 instances × 10 ms every extra allocation on this path is 25,500 more a
// second for the collector.
func TestReceiveToInboxAllocatesOnce(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	peer := netip.MustParseAddr("192.0.2.12")
	self := netip.MustParseAddr("192.0.2.11")
	in := &instance{
		name:     "VI_1",
		cfg:      &config.VRRPInstance{Name: "VI_1", VRID: 51},
		src:      self,
		settings: settings{advAddrs: []netip.Addr{vip}},
	}
	in.rx.Store(&rxParams{expect: packet.Expect{Version: 2, VRID: 51, Interval: time.Second, Addrs: in.settings.advAddrs}, self: self})
	in.fresh.word.Store(-1) // not a steady backup: every advert goes to the inbox
	u := newUnit([]*instance{in}, false, time.Now(), nil)
	e := &Engine{log: hclog.NewNullLogger()}
	sg := &sockGroup{}
	sg.setVRID(51, in)
	a := packet.Advert{Version: 2, VRID: 51, Priority: 120, Interval: time.Second, Addrs: []netip.Addr{vip}}
	payload, err := a.Marshal(peer, packet.IPv4Group, packet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := datagram{payload: payload, src: peer, dst: packet.IPv4Group, ttl: 255}
	allocs := testing.AllocsPerRun(200, func() {
		e.receive(sg, d, 0)
		select {
		case ue := <-u.inbox:
			if ar, ok := advertOf(ue); !ok || ar.From != peer {
				t.Fatalf("delivered %+v", ue)
			}
		default:
			t.Fatalf("not delivered; drops %v", e.Drops())
		}
	})
	if allocs > 1 {
		t.Errorf("an advert handed to the inbox allocates %.1f times, want 1", allocs)
	}
}
