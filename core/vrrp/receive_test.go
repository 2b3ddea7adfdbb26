package vrrp

import (
	"encoding/binary"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// TestReceive checks the receive path: which adverts reach the state machine, and how drops
// are counted by reason.
func TestReceive(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	peer := netip.MustParseAddr("192.0.2.12")
	self := netip.MustParseAddr("192.0.2.11")
	var pass [8]byte
	copy(pass[:], "secret")
	in := &instance{
		name:     "VI_1",
		cfg:      &config.VRRPInstance{Name: "VI_1", VRID: 51},
		src:      self,
		settings: settings{advAddrs: []netip.Addr{vip}, authType: packet.AuthPass, auth: pass},
	}
	in.rx.Store(&rxParams{expect: packet.Expect{Version: 2, VRID: 51, AuthType: packet.AuthPass, AuthData: pass, Interval: time.Second, Addrs: in.settings.advAddrs},
		self: self})
	in.fresh.word.Store(-1)
	u := newUnit([]*instance{in}, false, time.Now(), nil)
	e := &Engine{log: hclog.NewNullLogger()}
	sg := &sockGroup{}
	sg.setVRID(51, in)

	advert := func(mod func(a *packet.Advert)) []byte {
		a := packet.Advert{Version: 2, VRID: 51, Priority: 120, Interval: time.Second, AuthType: packet.AuthPass, AuthData: pass, Addrs: []netip.Addr{vip}}
		if mod != nil {
			mod(&a)
		}
		b, err := a.Marshal(peer, packet.IPv4Group, packet.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		payload   []byte
		ttl       int
		src       netip.Addr
		delivered bool
		reason    string
	}{
		{"valid", advert(nil), 255, peer, true, ""},
		{"other virtual router", advert(func(a *packet.Advert) { a.VRID = 9 }), 255, peer, false, "unknown_vrid"},
		{"TTL not 255", advert(nil), 64, peer, false, "bad_ttl"},
		{"wrong password", advert(func(a *packet.Advert) { a.AuthData = [8]byte{'x'} }), 255, peer, false, "auth_mismatch"},
		{"interval differs (v2)", advert(func(a *packet.Advert) { a.Interval = 2 * time.Second }), 255, peer, false, "interval_mismatch"},
		{"other address list still counts", advert(func(a *packet.Advert) { a.Addrs = append(a.Addrs, netip.MustParseAddr("192.0.2.101")) }), 255, peer, true, "bad_addr_count"},
		{"another virtual router's addresses", advert(func(a *packet.Advert) { a.Addrs = []netip.Addr{netip.MustParseAddr("203.0.113.200")} }), 255, peer, false, "foreign_addrs"},
		{"corrupt", append(advert(nil)[:10], 0xff), 255, peer, false, "bad_length"},
		{"own advert looped back", advert(nil), 255, self, false, "own_address"},
		{"unicast to a multicast instance", advert(nil), 255, peer, false, "cast_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.Drops()[tt.reason]
			dst := packet.IPv4Group
			if tt.reason == "cast_mismatch" {
				dst = self
			}
			e.receive(sg, datagram{payload: tt.payload, src: tt.src, dst: dst, ttl: tt.ttl}, 0)
			select {
			case ue := <-u.inbox:
				if !tt.delivered {
					t.Errorf("delivered %+v", ue.msg)
				} else if ar, ok := advertOf(ue); !ok || ar.From != peer || ar.Priority != 120 {
					t.Errorf("delivered %+v", ue.msg)
				}
			default:
				if tt.delivered {
					t.Error("not delivered")
				}
			}
			if tt.reason != "" && e.Drops()[tt.reason] != before+1 {
				t.Errorf("drop count for %s = %d, want %d", tt.reason, e.Drops()[tt.reason], before+1)
			}
		})
	}
}

// TestCheckUnicastSrc: which configurations drop unicast adverts from addresses that are not
// unicast peers (keepalived 2.2.7: check_unicast_src, vrrp_check_unicast_src, or a peer's
// min_ttl or max_ttl).
func TestCheckUnicastSrc(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.12")
	for _, tt := range []struct {
		name   string
		vc     config.VRRPInstance
		global bool
		want   bool
	}{
		{"no option", config.VRRPInstance{UnicastPeers: []config.UnicastPeer{{Addr: peer, MaxTTL: 255}}}, false, false},
		{"check_unicast_src", config.VRRPInstance{CheckUnicastSrc: true, UnicastPeers: []config.UnicastPeer{{Addr: peer, MaxTTL: 255}}}, false, true},
		{"vrrp_check_unicast_src", config.VRRPInstance{UnicastPeers: []config.UnicastPeer{{Addr: peer, MaxTTL: 255}}}, true, true},
		{"min_ttl", config.VRRPInstance{UnicastPeers: []config.UnicastPeer{{Addr: peer, MinTTL: 1, MaxTTL: 255}}}, false, true},
		{"max_ttl", config.VRRPInstance{UnicastPeers: []config.UnicastPeer{{Addr: peer, MaxTTL: 64}}}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vc := tt.vc
			vc.Version, vc.VRID, vc.AdvertInt = 3, 52, time.Second
			g := config.Global{VRRPCheckUnicastSrc: tt.global}
			rx := settingsOf(&vc, g, netip.MustParseAddr("192.0.2.11")).rx(&vc)
			if rx.checkSrc != tt.want {
				t.Fatalf("checkSrc = %v, want %v", rx.checkSrc, tt.want)
			}
			in := &instance{name: "VI_1", cfg: &vc, src: netip.MustParseAddr("192.0.2.11")}
			in.rx.Store(rx)
			in.fresh.word.Store(-1)
			u := newUnit([]*instance{in}, false, time.Now(), nil)
			e := &Engine{log: hclog.NewNullLogger()}
			sg := &sockGroup{}
			sg.setVRID(52, in)
			stranger := netip.MustParseAddr("198.51.100.7")
			a := packet.Advert{Version: 3, VRID: 52, Priority: 200, Interval: time.Second}
			b, err := a.Marshal(stranger, in.src, packet.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e.receive(sg, datagram{payload: b, src: stranger, dst: in.src, ttl: 64}, 0)
			delivered := len(u.inbox) == 1
			if delivered == tt.want || (e.Drops()["not_a_peer"] == 1) != tt.want {
				t.Fatalf("advert from a stranger: delivered %v, drops %v", delivered, e.Drops())
			}
		})
	}
}

// TestSteadyBackupRefresh follows one backup through a handover of its Master_Down_Timer:
// the reader records matching adverts instead of waking the unit, anything else still wakes
// it, the watchdog wakes it when the timer comes near, and taking the timer back hands the
// machine the last advert at its arrival time.
func TestSteadyBackupRefresh(t *testing.T) {
	self := netip.MustParseAddr("192.0.2.11")
	master := netip.MustParseAddr("192.0.2.12")
	vip := netip.MustParseAddr("192.0.2.100")
	cfg := &config.VRRPInstance{Name: "VI_1", VRID: 51, Version: 3, Priority: 100, AdvertInt: 100 * time.Millisecond}
	in := &instance{name: "VI_1", cfg: cfg, log: hclog.NewNullLogger(), src: self, settings: settings{advAddrs: []netip.Addr{vip}}}
	in.rx.Store(&rxParams{expect: packet.Expect{Version: 3, VRID: 51, Interval: cfg.AdvertInt, Addrs: in.settings.advAddrs}})
	in.m = fsm.New(fsm.Config{VRID: 51, Version: 3, Priority: 100, AdvertInterval: cfg.AdvertInt, Preempt: true, PrimaryAddr: self})
	in.fresh.word.Store(-1)
	base := time.Now()
	w := newWatchdog(base)
	u := newUnit([]*instance{in}, false, base, w)
	e := &Engine{log: hclog.NewNullLogger(), base: base, watch: w}
	sg := &sockGroup{}
	sg.setVRID(51, in)
	advert := func(prio uint8) []byte {
		a := packet.Advert{Version: 3, VRID: 51, Priority: prio, Interval: cfg.AdvertInt, Addrs: []netip.Addr{vip}}
		b, err := a.Marshal(master, packet.IPv4Group, packet.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	receive := func(prio uint8, at time.Duration) (woke bool) {
		e.receive(sg, datagram{payload: advert(prio), src: master, dst: packet.IPv4Group, ttl: 255}, int64(at))
		select {
		case ue := <-u.inbox:
			u.takeBack()
			ar, ok := advertOf(ue)
			if !ok {
				t.Fatalf("the reader posted %#v", ue.msg)
			}
			u.handle(base.Add(at), ue.member, ar)
			return true
		default:
			return false
		}
	}

	u.handle(base, 0, fsm.Startup{})
	if !receive(200, 10*time.Millisecond) {
		t.Fatal("the first advert must reach the machine: it does not follow any master yet")
	}
	down := in.m.MasterDownInterval()
	u.handOver(base.Add(10 * time.Millisecond))
	if !in.watching {
		t.Fatal("a backup following a master did not hand its timer over")
	}
	if dl, _, _ := u.nextDeadline(); !dl.IsZero() {
		t.Fatalf("the unit still keeps a timer (%v) after handing it over", dl)
	}
	for i := 1; i <= 5; i++ {
		if receive(200, time.Duration(10+i*100)*time.Millisecond) {
			t.Fatalf("steady advert %d woke the unit", i)
		}
	}
	// The watchdog sees the fresh adverts and stays asleep until their timer is near.
	next, ok := w.check(base.Add(510 * time.Millisecond))
	if want := base.Add(510*time.Millisecond + down - handBack); !ok || !next.Equal(want) {
		t.Fatalf("watchdog looks again at %v, want %v", next.Sub(base), want.Sub(base))
	}
	if len(u.inbox) != 0 {
		t.Fatal("watchdog woke the unit early")
	}
	// A lower priority advert is not a refresh (we would preempt): it wakes the unit, and the
	// unit first takes the recorded adverts.
	if !receive(50, 520*time.Millisecond) {
		t.Fatal("a lower priority advert did not reach the machine")
	}
	if dl, _ := in.m.NextDeadline(); !dl.Equal(base.Add(510*time.Millisecond + down)) {
		t.Fatalf("Master_Down_Timer at %v after taking back, want the last recorded advert + %v", dl.Sub(base), down)
	}
	if in.watching || in.fresh.word.Load() != -1 {
		t.Fatal("timer not taken back")
	}
	// Handed over again: with no adverts, the watchdog wakes the unit handBack before the end.
	receive(200, 600*time.Millisecond)
	u.handOver(base.Add(600 * time.Millisecond))
	w.check(base.Add(600*time.Millisecond + down - handBack - time.Millisecond))
	if len(u.inbox) != 0 {
		t.Fatal("watchdog woke the unit before the timer came near")
	}
	w.check(base.Add(600*time.Millisecond + down - handBack))
	select {
	case ue := <-u.inbox:
		if _, ok := ue.msg.(wakeUp); !ok {
			t.Fatalf("unit got %T, want a wake-up", ue.msg)
		}
	default:
		t.Fatal("watchdog did not wake the unit as its timer came near")
	}
}

func TestParseIPv4(t *testing.T) {
	payload := []byte{0x31, 51, 100, 1, 0, 100, 0, 0}
	withHeader := append([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 254, 112, 0, 0, 192, 0, 2, 11, 224, 0, 0, 18}, payload...)
	d, ok := parseIPv4(withHeader)
	if !ok || string(d.payload) != string(payload) || d.ttl != 254 ||
		d.src != netip.MustParseAddr("192.0.2.11") || d.dst != netip.MustParseAddr("224.0.0.18") {
		t.Errorf("with header: %+v %v", d, ok)
	}
	opts := append([]byte{0x46, 0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0, 192, 0, 2, 11, 224, 0, 0, 18, 1, 1, 1, 1}, payload...)
	if d, ok := parseIPv4(opts); !ok || string(d.payload) != string(payload) {
		t.Errorf("with IP options: %+v %v", d, ok)
	}
	for name, b := range map[string][]byte{
		"no header":        payload,
		"short":            withHeader[:12],
		"IHL past the end": append([]byte{0x4f}, withHeader[1:24]...),
	} {
		if d, ok := parseIPv4(b); ok {
			t.Errorf("%s: parsed as %+v", name, d)
		}
	}
}

func TestParseIPv6Control(t *testing.T) {
	dst := netip.MustParseAddr("ff02::12")
	cmsg := func(typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IPV6, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	hop := make([]byte, 4)
	binary.NativeEndian.PutUint32(hop, 255)
	pktinfo := append(dst.AsSlice(), 3, 0, 0, 0)
	oob := append(cmsg(unix.IPV6_PKTINFO, pktinfo), cmsg(unix.IPV6_HOPLIMIT, hop)...)
	var d datagram
	parseIPv6Control(oob, &d)
	if d.ttl != 255 || d.dst != dst {
		t.Errorf("got hop limit %d, destination %v", d.ttl, d.dst)
	}
	// Truncated or garbage control data is ignored, never read past.
	for cut := range len(oob) {
		d := datagram{ttl: -1}
		parseIPv6Control(oob[:cut], &d)
	}
	bad := cmsg(unix.IPV6_HOPLIMIT, hop)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(1000)
	d = datagram{ttl: -1}
	parseIPv6Control(bad, &d)
	if d.ttl != -1 {
		t.Errorf("a control message longer than the buffer was read: hop limit %d", d.ttl)
	}
}

func TestAlignDown(t *testing.T) {
	phase := time.Unix(1000, 0)
	iv := 10 * time.Millisecond
	for _, tt := range []struct{ t, want time.Duration }{
		{0, 0},
		{3 * time.Millisecond, 0},
		{10 * time.Millisecond, 10 * time.Millisecond},
		{25 * time.Millisecond, 20 * time.Millisecond},
		{-1 * time.Millisecond, -10 * time.Millisecond},
		{-10 * time.Millisecond, -10 * time.Millisecond},
		{-15 * time.Millisecond, -20 * time.Millisecond},
	} {
		if got := alignDown(phase.Add(tt.t), phase, iv).Sub(phase); got != tt.want {
			t.Errorf("alignDown(phase%+v) = phase%+v, want phase%+v", tt.t, got, tt.want)
		}
	}
}

// TestWaitUntilLetsReaderRun: with one processor, as the vrrp process runs, a unit waiting
// out the end of its Master_Down_Timer must not starve the socket reader: an advert waiting
// in the socket is delivered before the timer ends. (Yielding with Gosched alone would keep
// the processor and leave the network unpolled until the runtime's monitor polls it, up to
// 10 ms later.)
func TestWaitUntilLetsReaderRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// Without the fix no attempt succeeds (nothing polls the network for 10 ms); with it, an
	// attempt fails only if the machine stalls this process for the whole 5 ms window, so a
	// few attempts keep a loaded CI machine from failing the test for that.
	for attempt := 1; ; attempt++ {
		ue, got := waitWithPendingAdvert(t)
		if got {
			if ar, ok := advertOf(ue); !ok || ar.Priority != 200 {
				t.Fatalf("got %+v", ue)
			}
			return
		}
		if attempt == 3 {
			t.Fatal("the advert waiting in the socket was not delivered before the deadline (3 attempts)")
		}
	}
}

// waitWithPendingAdvert runs waitUntil for 5 ms while a reader goroutine, parked in the
// poller on a pipe that stands for a VRRP socket, has an advert to deliver.
func waitWithPendingAdvert(t *testing.T) (unitEvent, bool) {
	// A non-blocking pipe whose read end the runtime polls, as it polls the VRRP sockets.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	rf, w := os.NewFile(uintptr(p[0]), "pipe-r"), os.NewFile(uintptr(p[1]), "pipe-w")
	defer rf.Close()
	defer w.Close()
	u := &unit{inbox: make(chan unitEvent, 1), pollfds: []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}}
	go func() {
		b := make([]byte, 1)
		if _, err := rf.Read(b); err == nil {
			u.inbox <- unitEvent{ev: fsm.AdvertReceived{Priority: 200}}
		}
	}()
	time.Sleep(2 * time.Millisecond) // the reader is parked in the poller; the network was just polled
	w.Write([]byte{1})
	return u.waitUntil(time.Now().Add(5 * time.Millisecond))
}

// advertOf returns the advert ue carries for a member's machine, if it carries one.
func advertOf(ue unitEvent) (fsm.AdvertReceived, bool) {
	if ue.msg != nil {
		return fsm.AdvertReceived{}, false
	}
	ar, ok := ue.ev.(fsm.AdvertReceived)
	return ar, ok
}
