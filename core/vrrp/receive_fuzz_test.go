package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// FuzzReceive drives the receive path with what arrives from the network: the bytes a
// socket's recvmmsg returns (a whole IPv4 packet from a raw IPv4 socket or a VMAC
// listener, an IPv6 packet from a VMAC listener, or an IPv6 payload with the sender's
// address and the hop limit and destination as control messages), through decodeRx and
// Engine.receive (what readLoop runs on each message), into the units and their state
// machines. The engine has five instances on two interfaces' sockets and their VMAC
// listeners: a VRRPv2 PASS instance and a VRRPv3 unicast one with peer TTL limits in one
// sync group, a v3 unicast one that accepts any source, a v3 address owner, and an IPv6 v3
// instance sharing the PASS instance's VRID. Nothing is sent: the instances have no
// destinations and no virtual addresses, so their actions touch neither sockets nor
// netlink. Time is virtual: each message advances it, and the units' timers fire as the
// unit loop would fire them.
//
// An input is a sequence of messages (see rxScript). What must hold:
//   - nothing panics, and nothing grows without bound: no goroutine is started, the inboxes
//     are empty once drained, the watchdog and the senders hold at most one entry per
//     instance, drop reasons come from a fixed set, the drop log is rate-limited;
//   - every message has exactly one outcome: counted once under a drop reason (and then
//     nothing reaches a state machine), or delivered to the one instance that has its VRID
//     on that socket (counted at most once more, under an advisory reason);
//   - what is delivered passed every receive check, which this test decides on its own for
//     TTL, source and destination (keepalived 2.2.7's rules) and through the codec for the
//     rest, with the instance's own expectations;
//   - an advert from an instance's own address never reaches its machine, and is counted as
//     own_address (a looped-back
//     advert must not refresh a backup's Master_Down_Timer, RFC 5798 6.4.2, nor make a
//     master compare itself with itself, 6.4.3);
//   - a backup that gets a priority 0 advert from the master it follows (or before it
//     follows one) sets its Master_Down_Timer to Skew_Time (RFC 5798 6.4.2); one from
//     another router leaves the timer alone.
func FuzzReceive(f *testing.F) {
	for _, s := range receiveSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		h := newRxHarness(t)
		g0 := runtime.NumGoroutine()
		started := time.Now()
		for len(script) > 0 {
			var m rxMessage
			m, script = nextMessage(script)
			h.step(t, m)
		}
		if g := runtime.NumGoroutine(); g > g0 {
			// The fuzzing worker has goroutines of its own: only one running vrrp code counts.
			if s := vrrpGoroutines(); s != "" {
				t.Fatalf("goroutines grew from %d to %d, in vrrp code:\n%s", g0, g, s)
			}
		}
		// One warning per reason per 10 s (Engine.drop).
		reasons := len(h.e.Drops())
		windows := int(time.Since(started)/(10*time.Second)) + 1
		if n := h.logs.count("advert dropped"); n > reasons*windows {
			t.Fatalf("%d drop warnings for %d reasons in %v: not rate-limited", n, reasons, time.Since(started))
		}
	})
}

// vrrpGoroutines returns the stacks of the goroutines that run code of this package
// outside the testing framework's (which runs this test, and the fuzzing worker, whose
// stacks name the fuzz target).
func vrrpGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "vigil/core/vrrp.") && !strings.Contains(g, "testing.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// Message kinds: which socket the bytes came from.
const (
	rxRaw4  = iota // raw IPv4 socket: the whole IPv4 packet
	rxRaw6         // raw IPv6 socket: the payload; source, hop limit and destination beside it
	rxLink4        // IPv4 VMAC listener: the whole IPv4 packet, header unchecked by the kernel
	rxLink6        // IPv6 VMAC listener: the whole IPv6 packet
)

// rxMessage is one message of a fuzz script.
type rxMessage struct {
	kind   int
	fixSum bool          // recompute the checksums, so mutations get past them
	dt     time.Duration // virtual time before it arrives
	bytes  []byte        // what recvmmsg returned (at most the ring's 1500 bytes)
	// rxRaw6 only: the sockaddr and the control messages.
	src       netip.Addr
	hop       int // -1: no IPV6_HOPLIMIT message
	dst       netip.Addr
	noPktinfo bool
}

// The addresses a rxRaw6 message can come from and go to (a byte selects one).
var (
	rx6Srcs = []netip.Addr{
		netip.MustParseAddr("fe80::11"), // the IPv6 instance's own
		netip.MustParseAddr("fe80::12"),
		netip.MustParseAddr("fe80::13"),
		netip.MustParseAddr("2001:db8::12"),
		netip.MustParseAddr("::"),
		netip.MustParseAddr("::ffff:192.0.2.12"),
		netip.MustParseAddr("ff02::12"),
	}
	rx6Dsts = []netip.Addr{packet.IPv6Group, netip.MustParseAddr("fe80::11"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("ff02::1")}
)

// nextMessage decodes one message from the front of a script:
//
//	byte 0: kind (bits 0-1), fix checksums (bit 2), virtual time before it (bits 3-7: n*n*10 ms)
//	rxRaw6 only: source (byte 1, an index into rx6Srcs), hop limit (byte 2), flags (byte 3:
//	  bit 0 no hop limit, bit 1 no destination, bits 2-3 the destination, an index into rx6Dsts)
//	then a big-endian 16-bit length and that many bytes (fewer if the script ends first).
func nextMessage(b []byte) (rxMessage, []byte) {
	var m rxMessage
	h := b[0]
	b = b[1:]
	m.kind, m.fixSum = int(h&3), h&4 != 0
	n := time.Duration(h >> 3)
	m.dt = n * n * 10 * time.Millisecond
	if m.kind == rxRaw6 {
		var meta [3]byte
		b = b[copy(meta[:], b):]
		m.src = rx6Srcs[int(meta[0])%len(rx6Srcs)]
		m.hop = int(meta[1])
		if meta[2]&1 != 0 {
			m.hop = -1
		}
		m.noPktinfo = meta[2]&2 != 0
		m.dst = rx6Dsts[int(meta[2]>>2&3)]
	}
	var l [2]byte
	b = b[copy(l[:], b):]
	size := min(int(binary.BigEndian.Uint16(l[:])), len(b))
	m.bytes, b = b[:size], b[size:]
	// recvmmsg truncates to the ring's buffers.
	m.bytes = m.bytes[:min(len(m.bytes), 1500)]
	return m, b
}

// encode is the inverse of nextMessage, for the seeds.
func (m rxMessage) encode() []byte {
	n := 0
	for time.Duration(n*n)*10*time.Millisecond < m.dt && n < 31 {
		n++
	}
	h := byte(m.kind) | byte(n)<<3
	if m.fixSum {
		h |= 4
	}
	out := []byte{h}
	if m.kind == rxRaw6 {
		si, di := 0, 0
		for i, a := range rx6Srcs {
			if a == m.src {
				si = i
			}
		}
		for i, a := range rx6Dsts {
			if a == m.dst {
				di = i
			}
		}
		flags := byte(di) << 2
		if m.hop < 0 {
			flags |= 1
		}
		if m.noPktinfo {
			flags |= 2
		}
		out = append(out, byte(si), byte(m.hop), flags)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(m.bytes)))
	return append(out, m.bytes...)
}

// rxInstance is how the harness sees one instance: its configuration, independently of
// what the engine made of it.
type rxInstance struct {
	vc      *config.VRRPInstance
	src     netip.Addr
	socks   []int // the message kinds that reach it
	checkSr bool  // check_unicast_src, explicit or implied by a peer's TTL limits
}

type rxHarness struct {
	e     *Engine
	base  time.Time
	now   time.Time
	socks [4]*sockGroup
	units []*unit
	ins   []*instance
	want  []rxInstance
	logs  *lineCounter
}

var rxPass = "secret"

func rxConfigs() []rxInstance {
	v4 := func(s string) *config.Address { return &config.Address{Prefix: netip.MustParsePrefix(s)} }
	self4 := netip.MustParseAddr("192.0.2.11")
	return []rxInstance{
		{vc: &config.VRRPInstance{Name: "V2_PASS", Interface: "eth0", VRID: 51, Version: 2, Priority: 100, AdvertInt: time.Second,
			Auth: &config.Auth{Type: "PASS", Pass: rxPass}, VIPs: []*config.Address{v4("192.0.2.100/32")}},
			src: self4, socks: []int{rxRaw4, rxLink4}},
		{vc: &config.VRRPInstance{Name: "V3_UNICAST", Interface: "eth0", VRID: 52, Version: 3, Priority: 150, AdvertInt: 100 * time.Millisecond,
			UnicastPeers: []config.UnicastPeer{{Addr: netip.MustParseAddr("192.0.2.12"), MinTTL: 250, MaxTTL: 255}, {Addr: netip.MustParseAddr("192.0.2.13"), MaxTTL: 255}},
			VIPs:         []*config.Address{v4("192.0.2.101/32"), v4("192.0.2.102/32")}},
			src: self4, socks: []int{rxRaw4}, checkSr: true},
		{vc: &config.VRRPInstance{Name: "V3_UNICAST_OPEN", Interface: "eth0", VRID: 54, Version: 3, Priority: 100, AdvertInt: time.Second,
			UnicastPeers: []config.UnicastPeer{{Addr: netip.MustParseAddr("192.0.2.12"), MaxTTL: 255}},
			VIPs:         []*config.Address{v4("192.0.2.104/32")}},
			src: self4, socks: []int{rxRaw4}},
		{vc: &config.VRRPInstance{Name: "V3_OWNER", Interface: "eth0", VRID: 53, Version: 3, Priority: 255, AdvertInt: time.Second,
			InitialState: "MASTER", Places: map[string]config.Pos{"state": {}}, VIPs: []*config.Address{v4("192.0.2.103/32")}},
			src: self4, socks: []int{rxRaw4}},
		{vc: &config.VRRPInstance{Name: "V3_IPV6", Interface: "eth0", VRID: 51, Version: 3, Priority: 100, AdvertInt: time.Second, IPv6: true,
			PreemptDelay: 2 * time.Second, VIPs: []*config.Address{{Prefix: netip.MustParsePrefix("2001:db8::100/128")}}},
			src: netip.MustParseAddr("fe80::11"), socks: []int{rxRaw6, rxLink6}},
	}
}

func newRxHarness(t *testing.T) *rxHarness {
	logs := &lineCounter{}
	// Warnings only: the drop warnings are what is counted, and formatting the rest costs.
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})
	base := time.Unix(1_000_000, 0)
	h := &rxHarness{base: base, now: base, logs: logs, want: rxConfigs()}
	h.e = &Engine{log: log, base: base, watch: newWatchdog(base)}
	// The drop limiter's summary of this input would otherwise come from a timer 10 s later,
	// in the middle of another input, and count as a goroutine of vrrp code left running.
	t.Cleanup(func() {
		l := h.e.limits()
		l.drops.Flush()
		l.transitions.Flush()
	})
	for i := range h.socks {
		sg := &sockGroup{}
		sg.setVRID(0, nil)
		if i == rxRaw4 || i == rxRaw6 {
			sg.out = newSender(nil, log) // holds a steady master's timer; never runs
		}
		h.socks[i] = sg
	}
	var g config.Global
	for _, w := range h.want {
		vc := w.vc
		in := &instance{name: vc.Name, cfg: vc, log: log.With("instance", vc.Name), v6: vc.IPv6, src: w.src,
			unicast: len(vc.UnicastPeers) > 0, trackers: map[string]trackerState{}}
		in.settings = settingsOf(vc, g, w.src)
		// No addresses to add, no destinations to send to: the machines' actions stay here.
		in.settings.vips, in.settings.routes = nil, nil
		in.rx.Store(in.settings.rx(vc))
		fc := in.settings.fsm
		if vc.InitialState == "MASTER" {
			fc.InitialState = fsm.Master
		}
		in.m = fsm.New(fc)
		in.fresh.word.Store(-1)
		for _, k := range w.socks {
			if k == rxLink4 || k == rxLink6 {
				in.vsg = h.socks[k]
			} else {
				in.sg = h.socks[k]
				in.out = h.socks[k].out
			}
		}
		h.ins = append(h.ins, in)
	}
	for _, in := range h.ins {
		in.listen()
	}
	// The PASS instance and the unicast one with TTL limits are a sync group.
	h.units = []*unit{
		newUnit([]*instance{h.ins[0], h.ins[1]}, true, base, h.e.watch),
		newUnit([]*instance{h.ins[2]}, false, base, h.e.watch),
		newUnit([]*instance{h.ins[3]}, false, base, h.e.watch),
		newUnit([]*instance{h.ins[4]}, false, base, h.e.watch),
	}
	for _, u := range h.units {
		u.startWhenReady(base)
		u.handOver(base)
	}
	return h
}

// step advances virtual time, fires the timers that are due, then receives m and checks
// its outcome.
func (h *rxHarness) step(t *testing.T, m rxMessage) {
	h.now = h.now.Add(m.dt)
	h.fireTimers(t)

	b := m.bytes
	if m.fixSum {
		b = fixChecksums(m)
	}
	var src16 [16]byte
	var oob []byte
	if m.kind == rxRaw6 {
		src16 = m.src.As16()
		oob = ipv6Cmsgs(m.hop, m.dst, m.noPktinfo)
	}
	d := decodeRx(b, m.kind == rxRaw6 || m.kind == rxLink6, m.kind == rxLink4 || m.kind == rxLink6, src16, oob)
	if m.kind == rxRaw6 && d.src != m.src {
		t.Fatalf("decoded source %v, the socket said %v", d.src, m.src)
	}

	before := h.drops()
	words := make([]int64, len(h.ins))
	for i, in := range h.ins {
		words[i] = in.fresh.word.Load()
	}
	// receive never blocks here: every inbox was drained after the last message.
	h.e.receive(h.socks[m.kind], d, int64(h.now.Sub(h.base)))

	type delivery struct {
		in *instance
		ev fsm.AdvertReceived
		u  *unit
	}
	var got []delivery
	for _, u := range h.units {
		for {
			select {
			case ue := <-u.inbox:
				ar, ok := advertOf(ue)
				if !ok {
					t.Fatalf("the reader posted %#v", ue.msg)
				}
				got = append(got, delivery{u.members[ue.member], ar, u})
				continue
			default:
			}
			break
		}
	}
	for i, in := range h.ins {
		if w := in.fresh.word.Load(); w != words[i] {
			if !in.watching || w < words[i] {
				t.Fatalf("%s: refresh word went from %d to %d (watching %v)", in.name, words[i], w, in.watching)
			}
			got = append(got, delivery{in, *in.fresh.adv.Load(), nil})
		}
	}
	after := h.drops()
	counted, advisory := h.diff(t, before, after)

	verdict, target := h.judge(t, m.kind, d)
	switch {
	case verdict == "":
		// Accepted: delivered to its instance, or ignored (and counted) as its own.
		own := d.src == target.src
		if own && (len(got) > 0 || len(counted) != 1 || counted[0] != reasonOwnAddress) {
			t.Fatalf("%s: its own advert (from %v) counted as %v, delivered %+v", target.name, d.src, counted, got)
		}
		if !own && len(counted) > 0 {
			t.Fatalf("accepted advert %x (from %v, TTL %d) counted as %v", d.payload, d.src, d.ttl, counted)
		}
		if !own {
			if len(got) != 1 || got[0].in != target {
				t.Fatalf("accepted advert %x for %s delivered %d times (%+v)", d.payload, target.name, len(got), got)
			}
			ev := got[0].ev
			if ev.From != d.src || ev.Priority != d.payload[2] {
				t.Fatalf("%s got %+v for an advert from %v with priority %d", target.name, ev, d.src, d.payload[2])
			}
		}
	default:
		if len(got) > 0 {
			t.Fatalf("advert %x (from %v to %v, TTL %d, kind %d) must be dropped (%s), reached %s: %+v",
				d.payload, d.src, d.dst, d.ttl, m.kind, verdict, got[0].in.name, got[0].ev)
		}
		if len(counted) != 1 || advisory != "" {
			t.Fatalf("dropped advert %x (%s) counted as %v, advisory %q", d.payload, verdict, counted, advisory)
		}
		// Where the order of the checks is certain, the reason is too.
		if verdict != "invalid" && counted[0] != verdict {
			t.Fatalf("advert %x dropped as %s, want %s", d.payload, counted[0], verdict)
		}
	}

	// Hand what arrived to the machines, as the unit loop does.
	for _, dl := range got {
		u, member := dl.in.unit, dl.in.member
		if dl.u == nil {
			continue // recorded as a refresh: the unit sleeps on
		}
		u.takeBack()
		prev, followed := dl.in.m.State(), dl.in.m.MasterAddr()
		prevDl, _ := dl.in.m.NextDeadline()
		u.handle(h.now, member, dl.ev)
		if dl.ev.Priority == 0 && prev == fsm.Backup && dl.in.m.State() == fsm.Backup {
			d, _ := dl.in.m.NextDeadline()
			// RFC 5798 6.4.2; vigil heeds a resignation only from the master it follows,
			// once it follows one (fsm.Machine.backupRx).
			want := h.now.Add(dl.in.m.SkewTime())
			if followed.IsValid() && followed != dl.ev.From {
				want = prevDl
			}
			if !d.Equal(want) {
				t.Fatalf("%s: priority 0 advert from %v as backup following %v: Master_Down_Timer in %v, want %v",
					dl.in.name, dl.ev.From, followed, d.Sub(h.now), want.Sub(h.now))
			}
		}
		u.handOver(h.now)
	}
	h.checkBounds(t)
}

// fireTimers does what the unit loop does when time passes: the watchdog wakes the backups
// whose handed-over timers come near, and each unit runs the timers that are due.
func (h *rxHarness) fireTimers(t *testing.T) {
	h.e.watch.check(h.now)
	for _, u := range h.units {
		for {
			select {
			case ue := <-u.inbox:
				u.takeBack()
				u.receive(ue)
				continue
			default:
			}
			break
		}
		for n := 0; ; n++ {
			dl, ok, _ := u.nextDeadline()
			if !ok || dl.After(h.now) {
				break
			}
			if n == 10000 {
				t.Fatalf("unit of %s: its timer at %v never moves past %v", u.members[0].name, dl.Sub(h.base), h.now.Sub(h.base))
			}
			u.takeBack()
			u.tick(dl)
			u.handOver(dl)
		}
		u.handOver(h.now)
	}
}

// judge decides, from the configuration alone, whether d must be dropped: "" if it passes
// every receive check, else the drop reason when the order of the checks makes it certain,
// or "invalid" when only the codec knows which of its reasons applies. target is the
// instance the advert is for.
func (h *rxHarness) judge(t *testing.T, kind int, d datagram) (packet.Reason, *instance) {
	if d.badHeader {
		return reasonBadIPHeader, nil
	}
	if len(d.payload) < 2 {
		return packet.ReasonTooShort, nil
	}
	var in *instance
	var w rxInstance
	for i, c := range h.want {
		for _, k := range c.socks {
			if k == kind && uint8(c.vc.VRID) == d.payload[1] {
				in, w = h.ins[i], c
			}
		}
	}
	if in == nil {
		return reasonUnknownVRID, nil
	}
	unicast := len(w.vc.UnicastPeers) > 0
	var peer *config.UnicastPeer
	for i, p := range w.vc.UnicastPeers {
		if p.Addr == d.src {
			peer = &w.vc.UnicastPeers[i]
		}
	}
	switch {
	case unicast && w.checkSr && peer == nil:
		return reasonNotPeer, in
	case d.ttl < 0:
	case !unicast && d.ttl != 255:
		return packet.ReasonBadTTL, in
	case unicast && w.checkSr && (d.ttl < peer.MinTTL || d.ttl > peer.MaxTTL):
		return packet.ReasonBadTTL, in
	}
	if d.dst.IsValid() && d.dst.IsMulticast() == unicast {
		return reasonCastMismatch, in
	}
	// The codec decides the rest, with this instance's expectations.
	a, err := packet.Parse(d.payload, d.src, d.dst, packet.Options{})
	if err != nil {
		return "invalid", in
	}
	var pass [8]byte
	copy(pass[:], rxPass)
	e := packet.Expect{Version: w.vc.Version, VRID: uint8(w.vc.VRID), Interval: w.vc.AdvertInt}
	for _, v := range w.vc.VIPs {
		e.Addrs = append(e.Addrs, v.Prefix.Addr())
	}
	if w.vc.Auth != nil {
		e.AuthType, e.AuthData = packet.AuthPass, pass
	}
	if err := a.Check(e); err != nil {
		var de *packet.DropError
		if !errors.As(err, &de) || !de.Reason.Advisory() {
			return "invalid", in
		}
	}
	// Beside the codec: a v2 PASS advert that passed carries the password.
	if w.vc.Version == 2 {
		n := int(d.payload[3])
		if !bytes.Equal(d.payload[8+4*n:8+4*n+len(rxPass)], []byte(rxPass)) {
			t.Fatalf("VRRPv2 advert %x without the password passed the checks", d.payload)
		}
	}
	return "", in
}

// knownReasons are every drop reason the receive path may count.
var knownReasons = map[packet.Reason]bool{
	packet.ReasonFamilyMismatch: true, packet.ReasonTooShort: true, packet.ReasonBadVersion: true, packet.ReasonBadType: true,
	packet.ReasonV2OverIPv6: true, packet.ReasonBadLength: true, packet.ReasonBadChecksum: true, packet.ReasonBadVRID: true,
	packet.ReasonZeroInterval: true, packet.ReasonBadAuthType: true, packet.ReasonAuthUnsupported: true, packet.ReasonBadTTL: true,
	packet.ReasonVersionMismatch: true, packet.ReasonVRIDMismatch: true, packet.ReasonAuthMismatch: true,
	packet.ReasonIntervalMismatch: true, packet.ReasonBadAddrCount: true, packet.ReasonAddrMismatch: true, packet.ReasonForeignAddrs: true,
	reasonBadIPHeader: true, reasonUnknownVRID: true, reasonNotPeer: true, reasonCastMismatch: true, reasonOwnAddress: true,
}

func (h *rxHarness) drops() map[string]uint64 { return h.e.Drops() }

// diff returns the reasons whose counts went up (each must go up by one at most), the
// advisory one apart.
func (h *rxHarness) diff(t *testing.T, before, after map[string]uint64) (counted []packet.Reason, advisory packet.Reason) {
	for r, n := range after {
		reason := packet.Reason(r)
		if !knownReasons[reason] {
			t.Fatalf("drop counted under an unknown reason %q", r)
		}
		switch d := n - before[r]; {
		case d == 0:
		case d > 1:
			t.Fatalf("one message counted %d times as %s", d, r)
		case reason.Advisory():
			if advisory != "" {
				t.Fatalf("two advisory reasons: %s and %s", advisory, reason)
			}
			advisory = reason
		default:
			counted = append(counted, reason)
		}
	}
	return counted, advisory
}

// checkBounds: what the receive path feeds stays bounded.
func (h *rxHarness) checkBounds(t *testing.T) {
	for _, u := range h.units {
		if n := len(u.inbox); n != 0 {
			t.Fatalf("unit of %s: %d events left in its inbox", u.members[0].name, n)
		}
	}
	h.e.watch.mu.Lock()
	n := len(h.e.watch.entries)
	h.e.watch.mu.Unlock()
	if n > len(h.ins) {
		t.Fatalf("watchdog holds %d timers for %d instances", n, len(h.ins))
	}
	for _, sg := range h.socks {
		if sg.out != nil && len(sg.out.entries) > len(h.ins) {
			t.Fatalf("a sender holds %d adverts for %d instances", len(sg.out.entries), len(h.ins))
		}
	}
	if keys := h.e.limits().drops.Keys(); keys > len(knownReasons) {
		t.Fatalf("%d drop log limiters", keys)
	}
}

// fixChecksums returns a copy of m's bytes with the VRRP checksum (for the addresses the
// advert will be checked with) and, in front of it, the IPv4 header checksum recomputed,
// where the lengths allow.
func fixChecksums(m rxMessage) []byte {
	b := bytes.Clone(m.bytes)
	var vrrp []byte
	var src, dst netip.Addr
	switch m.kind {
	case rxRaw4, rxLink4:
		if len(b) < 20 || b[0]>>4 != 4 {
			return b
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return b
		}
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:], packet.Checksum(b[:ihl]))
		vrrp = b[ihl:]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	case rxLink6:
		if len(b) < 40 {
			return b
		}
		vrrp = b[40:]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	case rxRaw6:
		vrrp, src, dst = b, m.src, m.dst
	}
	if len(vrrp) < 8 {
		return b
	}
	alen := 4
	if src.Is6() {
		alen = 16
	}
	version := int(vrrp[0] >> 4)
	n := 8 + int(vrrp[3])*alen
	if version == 2 {
		n += 8
	}
	if n > len(vrrp) {
		return b
	}
	msg := vrrp[:n]
	msg[6], msg[7] = 0, 0
	sum := msg
	if version == 3 {
		var ph []byte
		ph = append(ph, src.AsSlice()...)
		ph = append(ph, dst.AsSlice()...)
		if alen == 4 {
			ph = append(ph, 0, 112)
			ph = binary.BigEndian.AppendUint16(ph, uint16(n))
		} else {
			ph = binary.BigEndian.AppendUint32(ph, uint32(n))
			ph = append(ph, 0, 0, 0, 112)
		}
		sum = append(ph, msg...)
	}
	binary.BigEndian.PutUint16(msg[6:], packet.Checksum(sum))
	return b
}

// ipv6Cmsgs builds the control messages a raw IPv6 socket delivers beside a datagram.
func ipv6Cmsgs(hop int, dst netip.Addr, noPktinfo bool) []byte {
	cmsg := func(typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		hd := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		hd.Level, hd.Type = unix.IPPROTO_IPV6, typ
		hd.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	var oob []byte
	if hop >= 0 {
		v := make([]byte, 4)
		binary.NativeEndian.PutUint32(v, uint32(hop))
		oob = append(oob, cmsg(unix.IPV6_HOPLIMIT, v)...)
	}
	if !noPktinfo {
		oob = append(oob, cmsg(unix.IPV6_PKTINFO, append(dst.AsSlice(), 2, 0, 0, 0))...)
	}
	return oob
}

// lineCounter counts log lines by content.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
	n     atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) < 10000 {
		c.lines = append(c.lines, string(p))
	}
	c.n.Add(1)
	return len(p), nil
}

func (c *lineCounter) count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// Seeds: the interesting cases, each a short script.

// ip4 wraps a VRRP payload in an IPv4 header.
func ip4(src, dst netip.Addr, ttl uint8, payload []byte) []byte {
	b := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 112, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	binary.BigEndian.PutUint16(b[10:], packet.Checksum(b))
	return append(b, payload...)
}

// ip6 wraps a VRRP payload in an IPv6 header.
func ip6(src, dst netip.Addr, hop uint8, payload []byte) []byte {
	b := []byte{0x60, 0, 0, 0, 0, 0, 112, hop}
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	return append(b, payload...)
}

func receiveSeeds(tb testing.TB) [][]byte {
	var pass [8]byte
	copy(pass[:], rxPass)
	self4, peer4, peer4b := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	stranger := netip.MustParseAddr("198.51.100.7")
	self6, peer6 := netip.MustParseAddr("fe80::11"), netip.MustParseAddr("fe80::12")
	vip := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	marshal := func(a packet.Advert, src, dst netip.Addr) []byte {
		b, err := a.Marshal(src, dst, packet.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	v2 := func(prio uint8, auth [8]byte, addrs []netip.Addr) []byte {
		return marshal(packet.Advert{Version: 2, VRID: 51, Priority: prio, Interval: time.Second, AuthType: packet.AuthPass, AuthData: auth, Addrs: addrs}, peer4, packet.IPv4Group)
	}
	v3 := func(vrid, prio uint8, iv time.Duration, src, dst netip.Addr, addrs []netip.Addr) []byte {
		return marshal(packet.Advert{Version: 3, VRID: vrid, Priority: prio, Interval: iv, Addrs: addrs}, src, dst)
	}
	raw4 := func(dt time.Duration, src, dst netip.Addr, ttl uint8, payload []byte) rxMessage {
		return rxMessage{kind: rxRaw4, dt: dt, bytes: ip4(src, dst, ttl, payload)}
	}
	raw6 := func(dt time.Duration, src netip.Addr, hop int, payload []byte) rxMessage {
		return rxMessage{kind: rxRaw6, dt: dt, src: src, hop: hop, dst: packet.IPv6Group, bytes: payload}
	}
	script := func(ms ...rxMessage) []byte {
		var out []byte
		for _, m := range ms {
			out = append(out, m.encode()...)
		}
		return out
	}
	good2 := v2(120, pass, vip("192.0.2.100"))
	uni := v3(52, 200, 100*time.Millisecond, peer4, self4, vip("192.0.2.101", "192.0.2.102"))
	good6 := v3(51, 120, time.Second, peer6, packet.IPv6Group, vip("2001:db8::100"))
	badSum := bytes.Clone(good2)
	badSum[6] ^= 0xff
	wrongPass := v2(120, [8]byte{'w', 'r', 'o', 'n', 'g'}, vip("192.0.2.100"))
	oversized := append(bytes.Clone(good2), make([]byte, 1400)...)
	return [][]byte{
		// A valid advert of each kind.
		script(raw4(0, peer4, packet.IPv4Group, 255, good2)),
		script(raw4(0, peer4, self4, 255, uni), raw4(0, peer4b, self4, 64, v3(52, 200, 100*time.Millisecond, peer4b, self4, vip("192.0.2.101", "192.0.2.102")))),
		script(raw4(0, stranger, self4, 255, v3(54, 200, time.Second, stranger, self4, vip("192.0.2.104")))),
		script(raw6(0, peer6, 255, good6), raw6(0, peer6, -1, good6)),
		script(rxMessage{kind: rxLink4, bytes: ip4(peer4, packet.IPv4Group, 255, good2)}),
		script(rxMessage{kind: rxLink6, bytes: ip6(peer6, packet.IPv6Group, 255, good6)}),
		// Truncated: in the VRRP header, in the addresses, in the IP header.
		script(raw4(0, peer4, packet.IPv4Group, 255, good2[:10])),
		script(raw4(0, peer4, packet.IPv4Group, 255, good2[:1])),
		script(rxMessage{kind: rxRaw4, bytes: ip4(peer4, packet.IPv4Group, 255, good2)[:15]}),
		script(raw6(0, peer6, 255, good6[:8])),
		// Oversized: padding after the advert, and more than the ring's buffer.
		script(raw4(0, peer4, packet.IPv4Group, 255, oversized)),
		script(rxMessage{kind: rxLink4, bytes: append(ip4(peer4, packet.IPv4Group, 255, good2), make([]byte, 2000)...)}),
		// Wrong TTL: multicast below 255, unicast outside the peer's range, from a stranger.
		script(raw4(0, peer4, packet.IPv4Group, 254, good2), raw6(0, peer6, 1, good6)),
		script(raw4(0, peer4, self4, 64, uni)),
		script(raw4(0, stranger, self4, 255, v3(52, 200, 100*time.Millisecond, stranger, self4, vip("192.0.2.101", "192.0.2.102")))),
		// Bad checksum, in the advert and in a VMAC listener's IP header.
		script(raw4(0, peer4, packet.IPv4Group, 255, badSum)),
		script(rxMessage{kind: rxLink4, bytes: func() []byte { b := ip4(peer4, packet.IPv4Group, 255, good2); b[10] ^= 1; return b }()}),
		// Wrong password.
		script(raw4(0, peer4, packet.IPv4Group, 255, wrongPass)),
		// A VRID collision with another cluster's address list, priority 255; a list that
		// shares one of ours (advisory: the advert still counts).
		script(raw4(0, peer4, packet.IPv4Group, 255, v2(255, pass, vip("198.51.100.1", "198.51.100.2"))),
			raw6(0, peer6, 255, v3(51, 255, time.Second, peer6, packet.IPv6Group, vip("2001:db8::999")))),
		script(raw4(0, peer4, packet.IPv4Group, 255, v2(200, pass, vip("192.0.2.100", "198.51.100.2"))),
			raw6(0, peer6, 255, v3(51, 200, time.Second, peer6, packet.IPv6Group, vip("2001:db8::100", "2001:db8::999")))),
		// Priority 0: to backups from the master they follow, from another router, then a storm
		// of them to a master.
		script(raw4(0, peer4, packet.IPv4Group, 255, good2), raw4(500*time.Millisecond, peer4, packet.IPv4Group, 255, v2(0, pass, vip("192.0.2.100"))),
			raw6(0, peer6, 255, good6), raw6(200*time.Millisecond, peer6, 255, v3(51, 0, time.Second, peer6, packet.IPv6Group, vip("2001:db8::100")))),
		script(raw4(0, peer4, packet.IPv4Group, 255, good2), raw4(500*time.Millisecond, peer4b, packet.IPv4Group, 255,
			marshal(packet.Advert{Version: 2, VRID: 51, Priority: 0, Interval: time.Second, AuthType: packet.AuthPass, AuthData: pass, Addrs: vip("192.0.2.100")}, peer4b, packet.IPv4Group))),
		script(raw4(5*time.Second, peer4, packet.IPv4Group, 255, v2(0, pass, vip("192.0.2.100"))),
			raw4(10*time.Millisecond, peer4, packet.IPv4Group, 255, v2(0, pass, vip("192.0.2.100"))),
			raw4(10*time.Millisecond, peer4, packet.IPv4Group, 255, v2(0, pass, vip("192.0.2.100")))),
		// Our own adverts, looped back: to a backup, and to the owner (a master).
		script(raw4(0, self4, packet.IPv4Group, 255, marshal(packet.Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: packet.AuthPass, AuthData: pass, Addrs: vip("192.0.2.100")}, self4, packet.IPv4Group)),
			raw4(0, self4, packet.IPv4Group, 255, v3(53, 255, time.Second, self4, packet.IPv4Group, vip("192.0.2.103"))),
			raw6(0, self6, 255, v3(51, 100, time.Second, self6, packet.IPv6Group, vip("2001:db8::100")))),
		// A steady backup: its master's adverts become refreshes, then the master goes quiet.
		script(raw4(0, peer4, packet.IPv4Group, 255, good2), raw4(time.Second, peer4, packet.IPv4Group, 255, good2),
			raw4(time.Second, peer4, packet.IPv4Group, 255, good2), raw4(time.Second, peer4, packet.IPv4Group, 255, good2),
			raw4(5*time.Second, peer4, packet.IPv4Group, 255, v2(90, pass, vip("192.0.2.100")))),
		// The owner hears another owner with a higher address, and a lower one.
		script(raw4(0, peer4, packet.IPv4Group, 255, v3(53, 255, time.Second, peer4, packet.IPv4Group, vip("192.0.2.103"))),
			raw4(0, netip.MustParseAddr("192.0.2.1"), packet.IPv4Group, 255, v3(53, 255, time.Second, netip.MustParseAddr("192.0.2.1"), packet.IPv4Group, vip("192.0.2.103")))),
		// Multicast to a unicast instance, and unicast to a multicast one.
		script(raw4(0, peer4, packet.IPv4Group, 255, v3(52, 200, 100*time.Millisecond, peer4, packet.IPv4Group, vip("192.0.2.101", "192.0.2.102"))),
			raw4(0, peer4, self4, 255, v2(120, pass, vip("192.0.2.100")))),
		// Another VRID, an unknown version, garbage.
		script(raw4(0, peer4, packet.IPv4Group, 255, v3(99, 100, time.Second, peer4, packet.IPv4Group, vip("192.0.2.100")))),
		script(rxMessage{kind: rxRaw4, fixSum: true, bytes: ip4(peer4, packet.IPv4Group, 255, append([]byte{0x51}, good2[1:]...))}),
		script(rxMessage{kind: rxRaw6, src: peer6, hop: 255, dst: packet.IPv6Group, bytes: []byte("\x00\x33garbage that is not VRRP at all")}),
	}
}
