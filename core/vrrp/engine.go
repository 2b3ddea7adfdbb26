// Package vrrp runs the configured VRRP instances: it connects the state machine (fsm) to
// real sockets, timers, netlink and link state.
package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// Engine runs every vrrp_instance of a configuration.
type Engine struct {
	cfg       *config.Config
	log       hclog.Logger
	nl        *netif.Netif
	instances []*instance
	units     []*unit
	sockets   map[sockKey]*sockGroup

	// base is what the refresh words count from (see watch.go); watch is the watchdog of
	// the backups' handed-over timers.
	base  time.Time
	watch *watchdog

	drops       sync.Map // packet.Reason -> *atomic.Uint64
	lastDropLog sync.Map // packet.Reason -> time.Time (unix nanos in *atomic.Int64)

	mu          sync.Mutex
	transitions []func(name string, t fsm.Transition)
}

type sockKey struct {
	ifindex int
	v6      bool
}

// sockGroup is a socket and the instances that receive from it, by VRID.
type sockGroup struct {
	sock   *socket
	out    *sender
	byVRID map[uint8]*instance
	adv    packet.Advert // the reader's scratch advert
}

// New prepares the instances of cfg: interfaces resolved, sockets open, nothing sent yet.
func New(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Engine, error) {
	nl, err := netif.New()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	base := time.Now()
	e := &Engine{cfg: cfg, log: log, nl: nl, sockets: map[sockKey]*sockGroup{}, base: base, watch: newWatchdog(base)}
	for _, vc := range cfg.Instances {
		in, err := e.newInstance(ctx, vc)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("vrrp_instance %s: %w", vc.Name, err)
		}
		e.instances = append(e.instances, in)
	}
	e.makeUnits()
	return e, nil
}

// makeUnits puts each sync group's instances under one driver, and every other instance
// under its own.
func (e *Engine) makeUnits() {
	byName := map[string]*instance{}
	for _, in := range e.instances {
		byName[in.name] = in
	}
	grouped := map[string]bool{}
	for _, g := range e.cfg.SyncGroups {
		var members []*instance
		for _, m := range g.Members {
			if in := byName[m.Name]; in != nil && !grouped[m.Name] {
				members = append(members, in)
				grouped[m.Name] = true
			}
		}
		if len(members) > 0 {
			e.units = append(e.units, newUnit(members, true, e.base, e.watch))
		}
	}
	for _, in := range e.instances {
		if !grouped[in.name] {
			e.units = append(e.units, newUnit([]*instance{in}, false, e.base, e.watch))
		}
	}
}

// OnTransition registers f to be called (from instance goroutines) on every state change.
func (e *Engine) OnTransition(f func(name string, t fsm.Transition)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.transitions = append(e.transitions, f)
}

func (e *Engine) fireTransition(name string, t fsm.Transition) {
	e.mu.Lock()
	fs := append([]func(string, fsm.Transition){}, e.transitions...)
	e.mu.Unlock()
	for _, f := range fs {
		f(name, t)
	}
}

func (e *Engine) newInstance(ctx context.Context, vc *config.VRRPInstance) (*instance, error) {
	ifi, err := net.InterfaceByName(vc.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", vc.Interface, err)
	}
	g := e.cfg.Global
	in := &instance{
		name:     vc.Name,
		cfg:      vc,
		log:      e.log.With("instance", vc.Name),
		nl:       e.nl,
		v6:       vc.IPv6,
		unicast:  len(vc.UnicastPeers) > 0,
		garp:     vc.Garp,
		trackers: map[string]trackerState{},
		buf:      make([]byte, 0, 1500),
		notify:   e.fireTransition,
		popts:    packet.Options{V3ChecksumAsV2: g.V3ChecksumAsV2},
	}
	in.src = vc.UnicastSrcIP
	if !in.src.IsValid() && vc.McastSrcIP.IsValid() {
		in.src = vc.McastSrcIP
	}
	if !in.src.IsValid() {
		if in.src, err = e.primaryAddr(ctx, vc.Interface, in.v6); err != nil {
			return nil, fmt.Errorf("no source address on %s: %w", vc.Interface, err)
		}
	}
	group := groupFor(in.v6, g.VRRPMcastGroup4, g.VRRPMcastGroup6)
	if vc.McastGroup.IsValid() {
		group = vc.McastGroup
	}
	var groups []netip.Addr
	if in.unicast {
		for _, p := range vc.UnicastPeers {
			in.dsts = append(in.dsts, p.Addr)
		}
	} else {
		in.dsts = []netip.Addr{group}
		groups = []netip.Addr{group}
	}
	for _, a := range vc.VIPs {
		in.advAddrs = append(in.advAddrs, a.Prefix.Addr())
		in.vips = append(in.vips, toNetifAddr(a, vc.Interface))
	}
	for _, a := range vc.ExcludedVIPs {
		in.vips = append(in.vips, toNetifAddr(a, vc.Interface))
	}
	for _, r := range vc.Routes {
		in.routes = append(in.routes, toNetifRoute(r))
	}
	if vc.Auth != nil && vc.Auth.Type == "PASS" && vc.Version == 2 {
		in.authType = 1
		copy(in.auth[:], vc.Auth.Pass)
	}
	in.expect = packet.Expect{
		Version:       vc.Version,
		VRID:          uint8(vc.VRID),
		AuthType:      in.authType,
		AuthData:      in.auth,
		Interval:      vc.AdvertInt,
		Addrs:         in.advAddrs,
		SkipAddrCheck: vc.SkipCheckAdvAddr || g.VRRPSkipCheckAdvAddr,
	}
	// Without a "state" line keepalived derives the start from the priority (255: MASTER).
	initial := fsm.Init
	if _, set := vc.Places["state"]; set {
		initial = fsm.Backup
		if vc.InitialState == "MASTER" {
			initial = fsm.Master
		}
	}
	in.m = fsm.New(fsm.Config{
		VRID:              uint8(vc.VRID),
		Version:           vc.Version,
		Priority:          vc.Priority,
		AdvertInterval:    vc.AdvertInt,
		Preempt:           !vc.NoPreempt,
		PreemptDelay:      vc.PreemptDelay,
		PrimaryAddr:       in.src,
		InitialState:      initial,
		LowerPrioNoAdvert: vc.LowerPrioNoAdv || g.VRRPLowerPrioNoAdvert,
	})
	// Say plainly what this build leaves out, rather than run as if it were there.
	if vc.UseVMAC {
		in.log.Warn("use_vmac is not implemented yet: the virtual addresses use the interface's own MAC address", "at", vc.Pos.String())
	}
	for _, t := range vc.TrackInterfaces {
		in.trackers["if:"+t.Name] = trackerState{up: true, weight: t.Weight, reverse: t.Reverse}
	}

	key := sockKey{ifindex: ifi.Index, v6: in.v6}
	sg := e.sockets[key]
	if sg == nil {
		s, err := openSocket(ctx, ifi, in.v6, groups)
		if err != nil {
			return nil, err
		}
		sg = &sockGroup{sock: s, out: newSender(s, e.log), byVRID: map[uint8]*instance{}}
		e.sockets[key] = sg
	} else if len(groups) > 0 {
		if err := sg.sock.join(groups); err != nil {
			return nil, err
		}
	}
	if other := sg.byVRID[uint8(vc.VRID)]; other != nil {
		return nil, fmt.Errorf("virtual_router_id %d on %s is used by %s too", vc.VRID, vc.Interface, other.name)
	}
	sg.byVRID[uint8(vc.VRID)] = in
	in.sock = sg.sock
	in.out = sg.out
	in.fresh.word.Store(-1)
	return in, nil
}

// primaryAddr waits a little for the interface's address: right after boot or link-up an
// IPv6 link-local address is still "tentative" while duplicate address detection runs.
func (e *Engine) primaryAddr(ctx context.Context, ifname string, v6 bool) (netip.Addr, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := e.nl.PrimaryAddr(ifname, v6)
		if err == nil || !errors.Is(err, netif.ErrNoAddr) || time.Now().After(deadline) {
			return a, err
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func toNetifAddr(a *config.Address, defDev string) netif.Addr {
	dev := a.Dev
	if dev == "" {
		dev = defDev
	}
	return netif.Addr{Prefix: a.Prefix, Dev: dev, Broadcast: a.Broad, Scope: a.Scope, Label: a.Label,
		NoDAD: a.NoDAD, NoPrefixRoute: a.NoPrefix, Home: a.Home}
}

func toNetifRoute(r *config.Route) netif.Route {
	return netif.Route{Type: r.Type, Dst: r.Dst, Src: r.Src, Via: r.Via, Dev: r.Dev, Scope: r.Scope, Metric: r.Metric, Table: r.TableID}
}

// Run starts every instance and blocks until ctx ends; then every master resigns with
// priority 0 and removes its addresses before Run returns.
func (e *Engine) Run(ctx context.Context) error {
	defer e.close()
	var wg sync.WaitGroup
	readCtx, stopReaders := context.WithCancel(context.Background())
	defer stopReaders()
	for _, sg := range e.sockets {
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.readLoop(readCtx, sg)
		}()
		go func() {
			defer wg.Done()
			sg.out.run(readCtx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.watch.run(readCtx)
	}()
	links, err := e.nl.WatchLinks(readCtx)
	if err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	go e.linkLoop(readCtx, links)
	go e.watchTrackFiles(readCtx)

	var iwg sync.WaitGroup
	for _, u := range e.units {
		iwg.Add(1)
		go func() {
			defer iwg.Done()
			u.run(ctx, e.cfg.Global.VRRPStartupDelay)
		}()
	}
	iwg.Wait() // instances have resigned and released their addresses
	stopReaders()
	for _, sg := range e.sockets {
		sg.sock.close() // unblocks the readers
	}
	wg.Wait()
	return nil
}

func (e *Engine) close() {
	for _, sg := range e.sockets {
		sg.sock.close()
	}
	e.nl.Close()
}

// readLoop receives adverts on one socket, validates them and hands them to their instance.
func (e *Engine) readLoop(ctx context.Context, sg *sockGroup) {
	ring, err := newRxRing(sg.sock)
	if err != nil {
		e.log.Error("VRRP socket cannot receive", "interface", sg.sock.ifi.Name, "error", err)
		return
	}
	ds := make([]datagram, 0, rxBatch)
	for {
		var err error
		ds, err = ring.read(ds)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("VRRP socket read failed", "interface", sg.sock.ifi.Name, "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		at := int64(time.Since(e.base))
		for _, d := range ds {
			e.receive(sg, d, at)
		}
	}
}

// receive handles one datagram that arrived at (nanoseconds since e.base).
func (e *Engine) receive(sg *sockGroup, d datagram, at int64) {
	if len(d.payload) < 2 {
		e.drop(packet.ReasonTooShort, d.src, "")
		return
	}
	in := sg.byVRID[d.payload[1]]
	if in == nil {
		// Other virtual routers share the segment; their adverts are none of our business.
		e.count("unknown_vrid")
		return
	}
	// Multicast adverts must arrive with TTL 255; unicast ones only within a configured
	// min_ttl..max_ttl (keepalived: none configured accepts any).
	min, max := 0, 0
	if in.unicast {
		for _, p := range in.cfg.UnicastPeers {
			if p.Addr == d.src && (p.MinTTL != 0 || p.MaxTTL != 255) {
				min, max = p.MinTTL, p.MaxTTL
			}
		}
	}
	if err := packet.CheckTTL(d.ttl, in.unicast, min, max); err != nil {
		e.dropErr(err, d.src)
		return
	}
	// One advert per socket, reused: the reader owns it, and parsing then allocates nothing.
	adv := &sg.adv
	err := adv.Unmarshal(d.payload, d.src, d.dst, in.popts)
	if err != nil {
		e.dropErr(err, d.src)
		return
	}
	if err := adv.Check(in.expect); err != nil {
		var de *packet.DropError
		if !errors.As(err, &de) || !de.Reason.Advisory() {
			e.dropErr(err, d.src)
			return
		}
		// A different address list is logged and counted but the advert still counts, as
		// keepalived does: a peer that was just reloaded with one more VIP must not make this
		// node take over as well.
		e.drop(de.Reason, d.src, de.Detail)
	}
	if d.src == in.src {
		return // our own advert, looped back by a unicast peer list or a bridge
	}
	ev := fsm.AdvertReceived{From: d.src, Priority: adv.Priority, Interval: adv.Interval}
	if in.fresh.offer(ev, at) {
		return // a steady backup's refresh: recorded, its unit sleeps on
	}
	in.unit.inbox <- unitEvent{member: in.member, ev: ev}
}

func (e *Engine) dropErr(err error, src netip.Addr) {
	var de *packet.DropError
	if errors.As(err, &de) {
		e.drop(de.Reason, src, de.Detail)
		return
	}
	e.drop("other", src, err.Error())
}

func (e *Engine) count(reason packet.Reason) uint64 {
	c, _ := e.drops.LoadOrStore(reason, new(atomic.Uint64))
	return c.(*atomic.Uint64).Add(1)
}

// drop counts a discarded advert by reason and logs it at most every 10 s per reason.
func (e *Engine) drop(reason packet.Reason, src netip.Addr, detail string) {
	n := e.count(reason)
	l, _ := e.lastDropLog.LoadOrStore(reason, new(atomic.Int64))
	last := l.(*atomic.Int64)
	now := time.Now().UnixNano()
	if prev := last.Load(); now-prev >= int64(10*time.Second) && last.CompareAndSwap(prev, now) {
		e.log.Warn("advert dropped", "reason", string(reason), "peer", src.String(), "detail", detail, "total", n)
	}
}

// Drops returns how many adverts were dropped, by reason.
func (e *Engine) Drops() map[string]uint64 {
	out := map[string]uint64{}
	e.drops.Range(func(k, v any) bool {
		out[string(k.(packet.Reason))] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// linkLoop turns link changes into tracker updates for the instances that care.
func (e *Engine) linkLoop(ctx context.Context, links <-chan netif.Link) {
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-links:
			if !ok {
				return
			}
			for _, in := range e.instances {
				if in.cfg.Interface == l.Name && !in.cfg.DontTrackPrim {
					in.post(ctx, trackerEvent{key: "if:" + l.Name, state: trackerState{up: l.Up}})
				}
				for _, t := range in.cfg.TrackInterfaces {
					if t.Name == l.Name {
						in.post(ctx, trackerEvent{key: "if:" + l.Name, state: trackerState{up: l.Up, weight: t.Weight, reverse: t.Reverse}})
					}
				}
			}
		}
	}
}

func (in *instance) post(ctx context.Context, ev fsm.Event) {
	select {
	case in.unit.inbox <- unitEvent{member: in.member, ev: ev}:
	case <-ctx.Done():
	}
}
