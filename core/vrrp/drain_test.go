package vrrp

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/ipv4"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// An expired Master_Down_Timer must not win over an advert that has already arrived: RFC
// 5798 6.4.2 takes events in the order they happen, and an advert sitting in the socket (or
// in the unit's inbox) when the timer is looked at came before the expiry was acted on.
// Under overload (a start of hundreds of instances, a flap storm) the unit often wakes long
// after its deadline with the master's advert waiting unread; taking over then costs the
// VIPs, the announcements and a notify, which delays the next adverts further and feeds the
// storm. These tests put the advert in place before the timer is handled, with a deadline
// long past, so they depend on no timing: the old unit went MASTER in every run.

// drainBench is one backup instance behind the real socket reader, with its Master_Down_Timer
// long expired. The socket is a UDP socket on loopback whose datagrams carry an IPv4 header
// in front of the advert, as a raw socket delivers them, so no privilege is needed.
type drainBench struct {
	t      *testing.T
	e      *Engine
	in     *instance
	u      *unit
	sg     *sockGroup
	conn   *net.UDPConn
	master netip.Addr
	dl     time.Time

	mu          sync.Mutex
	transitions []fsm.Transition
}

func newDrainBench(t *testing.T) *drainBench {
	t.Helper()
	self := netip.MustParseAddr("192.0.2.11")
	master := netip.MustParseAddr("192.0.2.12")
	vip := netip.MustParseAddr("192.0.2.100")
	iv := 10 * time.Millisecond
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &socket{fd: -1, ifi: &net.Interface{Name: "lo"}, conn: conn}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { s.fd = int(fd) })

	b := &drainBench{t: t, conn: conn, master: master}
	cfg := &config.VRRPInstance{Name: "VI_1", VRID: 51, Version: 3, Priority: 100, AdvertInt: iv}
	in := &instance{name: "VI_1", cfg: cfg, log: hclog.NewNullLogger(), src: self, settings: settings{advAddrs: []netip.Addr{vip}},
		notify: func(_ string, tr fsm.Transition) {
			b.mu.Lock()
			b.transitions = append(b.transitions, tr)
			b.mu.Unlock()
		}}
	in.rx.Store(&rxParams{expect: packet.Expect{Version: 3, VRID: 51, Interval: iv, Addrs: in.settings.advAddrs}})
	in.m = fsm.New(fsm.Config{VRID: 51, Version: 3, Priority: 100, AdvertInterval: iv, Preempt: true, PrimaryAddr: self})
	in.fresh.word.Store(-1)
	sg := &sockGroup{sock: s}
	sg.setVRID(51, in)
	in.sg, in.sock = sg, s
	base := time.Now().Add(-time.Second)
	w := newWatchdog(base)
	b.u = newUnit([]*instance{in}, false, base, w)
	// The tests assert that settle waits for the reader; its own 1 s bound would make them
	// fail for the wrong reason when the reader is not scheduled within it on a loaded
	// machine. This is a failure bound only.
	b.u.settleBound = time.Minute
	b.e = &Engine{log: hclog.NewNullLogger(), base: base, watch: w}
	b.in, b.sg = in, sg

	// Started a second ago: the Master_Down_Timer (36 ms) ran out long since.
	b.u.handle(base, 0, fsm.Startup{})
	b.dl, _ = in.m.NextDeadline()
	if in.m.State() != fsm.Backup || !b.dl.Before(time.Now()) {
		t.Fatalf("set-up: state %v, deadline %v from now", in.m.State(), time.Until(b.dl))
	}
	b.transitions = nil

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.e.readLoop(ctx, sg)
	}()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-done
	})
	return b
}

// advert is the master's advert as a raw IPv4 socket would deliver it.
func (b *drainBench) advert() []byte {
	a := packet.Advert{Version: 3, VRID: 51, Priority: 150, Interval: 10 * time.Millisecond, Addrs: b.in.settings.advAddrs}
	body, err := a.Marshal(b.master, packet.IPv4Group, packet.Options{})
	if err != nil {
		b.t.Fatal(err)
	}
	n := 20 + len(body)
	h := []byte{0x45, 0, byte(n >> 8), byte(n), 0, 0, 0, 0, 255, 112, 0, 0}
	h = append(h, b.master.AsSlice()...)
	h = append(h, packet.IPv4Group.AsSlice()...)
	return append(h, body...)
}

// queue puts the master's advert into the socket and returns once it is there, or once
// the reader has already taken it (it runs beside the test: on a busy machine it can read
// the datagram before this loop looks, and the socket then stays empty; the unit must
// yield to an advert in the reader's hand or its inbox just the same).
func (b *drainBench) queue() {
	if _, err := b.conn.WriteTo(b.advert(), b.conn.LocalAddr()); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // a failure bound only
	for !b.u.socketsReadable() && !b.sg.prog.inHand() && len(b.u.inbox) == 0 {
		if time.Now().After(deadline) {
			b.t.Fatal("the advert is neither in the socket nor with the reader")
		}
		runtime.Gosched()
	}
}

func (b *drainBench) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tr := range b.transitions {
		b.t.Errorf("transition %v -> %v (%s) although the master's advert had arrived", tr.From, tr.To, tr.Reason)
	}
	if st := b.in.m.State(); st != fsm.Backup {
		b.t.Errorf("state %v, want BACKUP", st)
	}
	if got := b.in.m.MasterAddr(); got != b.master {
		b.t.Errorf("master %v, want %v: the waiting advert was not handled", got, b.master)
	}
	if dl, _ := b.in.m.NextDeadline(); !dl.After(b.dl) {
		b.t.Errorf("Master_Down_Timer not restarted by the waiting advert")
	}
}

// TestExpiredTimerYieldsToAdvertInSocket: the master's advert is in the socket, unread, when
// the unit handles its expired Master_Down_Timer. The unit must let the reader hand it over
// and stay BACKUP.
func TestExpiredTimerYieldsToAdvertInSocket(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // as the vrrp process runs
	b := newDrainBench(t)
	b.queue()
	b.u.timerFired(context.Background(), b.dl, true)
	b.check()
}

// TestExpiredTimerYieldsToAdvertInInbox: the reader has handed the advert to the unit's
// inbox already, and the timer's channel and the inbox are ready together. The advert
// comes first.
func TestExpiredTimerYieldsToAdvertInInbox(t *testing.T) {
	b := newDrainBench(t)
	b.u.inbox <- unitEvent{member: 0, ev: fsm.AdvertReceived{From: b.master, Priority: 150, Interval: 10 * time.Millisecond}}
	b.u.timerFired(context.Background(), b.dl, false)
	b.check()
}

// TestExpiredTimerYieldsToAdvertTheReaderHolds: the reader has read the master's advert
// together with one for another instance, whose unit is busy (its inbox full), so the
// socket is empty but the advert is not handed out yet. The unit must wait for it too.
func TestExpiredTimerYieldsToAdvertTheReaderHolds(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := newDrainBench(t)
	// A second instance on the same socket, whose unit does not run: its inbox is full.
	cfg := &config.VRRPInstance{Name: "VI_2", VRID: 52, Version: 3, Priority: 100, AdvertInt: 10 * time.Millisecond}
	other := &instance{name: "VI_2", cfg: cfg, log: hclog.NewNullLogger(), src: b.in.src, settings: b.in.settings}
	other.rx.Store(&rxParams{expect: packet.Expect{Version: 3, VRID: 52, Interval: cfg.AdvertInt, Addrs: other.settings.advAddrs}})
	other.fresh.word.Store(-1)
	busy := newUnit([]*instance{other}, false, b.e.base, b.e.watch)
	defer close(busy.exited) // releases the reader if it still waits for the busy unit
	for len(busy.inbox) < cap(busy.inbox) {
		busy.inbox <- unitEvent{msg: wakeUp{}}
	}
	b.sg.setVRID(52, other)

	// Both adverts in one system call, the other instance's first, so that the reader takes
	// them in one batch and stops at the full inbox with ours in hand.
	forOther := b.advert()
	a := packet.Advert{Version: 3, VRID: 52, Priority: 150, Interval: 10 * time.Millisecond, Addrs: other.settings.advAddrs}
	body, err := a.Marshal(b.master, packet.IPv4Group, packet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forOther = append(forOther[:20:20], body...)
	pc := ipv4.NewPacketConn(b.conn)
	to := b.conn.LocalAddr()
	if _, err := pc.WriteBatch([]ipv4.Message{{Buffers: [][]byte{forOther}, Addr: to}, {Buffers: [][]byte{b.advert()}, Addr: to}}, 0); err != nil {
		t.Fatal(err)
	}
	// Let the reader run until it is stuck at the busy unit (a failure bound, not a timing).
	for deadline := time.Now().Add(10 * time.Second); b.u.socketsReadable() || !b.sg.prog.inHand(); {
		if time.Now().After(deadline) {
			t.Fatalf("set-up: the reader did not take both adverts (readable %v, in hand %v)", b.u.socketsReadable(), b.sg.prog.inHand())
		}
		time.Sleep(time.Millisecond)
	}
	// Once our unit waits for the reader, the busy unit catches up with its inbox.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for !b.sg.prog.waiting.Load() {
			select {
			case <-stop:
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
		for {
			select {
			case <-busy.inbox:
			case <-stop:
				return
			}
		}
	}()
	b.u.timerFired(context.Background(), b.dl, true)
	b.check()
}
