// Package vrrp runs the configured VRRP instances: it connects the state machine (fsm) to
// real sockets, timers, netlink and link state.
package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/loglimit"
	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// Engine runs every vrrp_instance of a configuration.
type Engine struct {
	log hclog.Logger
	nl  *netif.Netif

	// rw guards what a reload replaces (cfg, instances, units, sockets, and an instance's
	// cfg, name and address lists) for the goroutines that read them: Status, SetCheck, the
	// link and track_file watchers. A unit reads its own instances' fields freely: only it
	// writes them, holding rw.
	rw        sync.RWMutex
	cfg       *config.Config
	instances []*instance
	units     []*unit
	checks    checkIndex // of cfg and instances (SetCheck)
	// sockets are guarded by sockMu, not rw: a reload opens sockets for new instances
	// without holding rw, which a unit may need meanwhile (to report a transition).
	sockMu  sync.Mutex
	sockets map[sockKey]*sockGroup
	// vmacs are the VMAC interfaces this engine created, deleted when it stops.
	vmacMu sync.Mutex
	vmacs  []string

	// What Run started, for Reload to start more of the same (see reload.go).
	reloadMu  sync.Mutex
	running   chan struct{} // closed once Run has started everything
	stopping  bool          // Run is waiting for the units: no new ones
	runCtx    context.Context
	readCtx   context.Context
	wg        sync.WaitGroup // readers, senders
	uwg       sync.WaitGroup // units
	stopFiles context.CancelFunc

	// base is what the refresh words count from (see watch.go); watch is the watchdog of
	// the backups' handed-over timers.
	base  time.Time
	watch *watchdog

	drops sync.Map // packet.Reason -> *atomic.Uint64

	// logLimits limit the lines that repeat: advert drops by reason, transitions by
	// instance (see limits).
	logLimitsOnce sync.Once
	logLimits     logLimits

	mu          sync.Mutex
	transitions []func(name string, t fsm.Transition)
	lowerHeard  []func(name string, h fsm.LowerPriorityHeard)

	// keep is --dont-release-vrrp (KeepOnStop).
	keep atomic.Bool

	// demoted is the operator's demotions (SetDemoted).
	demoted demotions
}

// KeepOnStop makes the engine's stop leave every instance as it is, as keepalived's
// --dont-release-vrrp does: a master sends no priority 0 advert and keeps its virtual
// addresses, routes and VMAC interfaces. An instance that a reload removes is still released.
func (e *Engine) KeepOnStop() { e.keep.Store(true) }

type sockKey struct {
	ifindex int
	v6      bool
	vmac    bool // a VMAC's listener (openVMACListener), beside the VMAC's sending socket
}

// sockGroup is a socket and the instances that receive from it, by VRID.
type sockGroup struct {
	sock *socket
	out  *sender // nil on a VMAC's listener, which only receives
	// byVRID is replaced, never changed, so that the reader looks up without a lock while a
	// reload adds or removes instances.
	byVRID atomic.Pointer[map[uint8]*instance]
	// vridMu orders the writers of byVRID (a reload, and units setting up an instance whose
	// interface came late, each on its own goroutine): each copies the map and stores the
	// copy, and two at once would lose one's change, leaving an instance deaf.
	vridMu  sync.Mutex
	adv     packet.Advert // the reader's scratch advert
	started bool          // its reader and sender run
	// stop ends its reader and sender (set when they start): a reload that drops a VMAC
	// closes its sockets long before Run's readers all stop.
	stop context.CancelFunc
	prog rxProgress // how far the reader has got (see unit.settle)
}

func (sg *sockGroup) lookup(vrid uint8) *instance { return (*sg.byVRID.Load())[vrid] }

// setVRID maps vrid to in, or removes its mapping when in is nil.
func (sg *sockGroup) setVRID(vrid uint8, in *instance) {
	sg.vridMu.Lock()
	defer sg.vridMu.Unlock()
	sg.storeVRID(vrid, in)
}

// clearVRID removes vrid's mapping if it is in's: an instance that never got its VRID here
// (another held it when it was set up) must not take that one's away.
func (sg *sockGroup) clearVRID(vrid uint8, in *instance) {
	sg.vridMu.Lock()
	defer sg.vridMu.Unlock()
	if old := sg.byVRID.Load(); old != nil && (*old)[vrid] == in {
		sg.storeVRID(vrid, nil)
	}
}

// storeVRID replaces byVRID by a copy with vrid mapped to in (removed when nil); vridMu held.
func (sg *sockGroup) storeVRID(vrid uint8, in *instance) {
	m := map[uint8]*instance{}
	if old := sg.byVRID.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	if in == nil {
		delete(m, vrid)
	} else {
		m[vrid] = in
	}
	sg.byVRID.Store(&m)
}

// New prepares the instances of cfg: interfaces resolved, sockets open, nothing sent yet.
func New(ctx context.Context, cfg *config.Config, log hclog.Logger) (*Engine, error) {
	nl, err := netif.New()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	base := time.Now()
	e := &Engine{cfg: cfg, log: log, nl: nl, sockets: map[sockKey]*sockGroup{}, base: base, watch: newWatchdog(base),
		running: make(chan struct{})}
	for _, vc := range cfg.Instances {
		in, err := e.newInstance(ctx, vc, cfg)
		if err != nil {
			e.close()
			return nil, fmt.Errorf("vrrp_instance %s: %w", vc.Name, err)
		}
		e.instances = append(e.instances, in)
	}
	e.units = makeUnits(cfg, e.instances, e.base, e.watch)
	e.checks = checkIndexOf(cfg, e.instances)
	return e, nil
}

// makeUnits puts each sync group's instances under one driver, and every other instance
// under its own.
func makeUnits(cfg *config.Config, instances []*instance, base time.Time, watch *watchdog) []*unit {
	var units []*unit
	byName := map[string]*instance{}
	for _, in := range instances {
		byName[in.name] = in
	}
	grouped := map[string]bool{}
	for _, g := range cfg.SyncGroups {
		var members []*instance
		for _, m := range g.Members {
			if in := byName[m.Name]; in != nil && !grouped[m.Name] {
				members = append(members, in)
				grouped[m.Name] = true
			}
		}
		if len(members) > 0 {
			units = append(units, newUnit(members, true, base, watch))
		}
	}
	for _, in := range instances {
		if !grouped[in.name] {
			units = append(units, newUnit([]*instance{in}, false, base, watch))
		}
	}
	return units
}

// OnTransition registers f to be called (from instance goroutines) on every state change.
func (e *Engine) OnTransition(f func(name string, t fsm.Transition)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.transitions = append(e.transitions, f)
}

// OnLowerPriority registers f to be called (from instance goroutines) when a master hears an
// advert of a lower priority (keepalived's notify_master_rx_lower_pri: after a split brain
// heals, the master that stays may need to take a floating address back).
func (e *Engine) OnLowerPriority(f func(name string, h fsm.LowerPriorityHeard)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lowerHeard = append(e.lowerHeard, f)
}

func (e *Engine) fireLowerHeard(name string, h fsm.LowerPriorityHeard) {
	e.mu.Lock()
	fs := append([]func(string, fsm.LowerPriorityHeard){}, e.lowerHeard...)
	e.mu.Unlock()
	for _, f := range fs {
		f(name, h)
	}
}

func (e *Engine) fireTransition(name string, t fsm.Transition) {
	e.mu.Lock()
	fs := append([]func(string, fsm.Transition){}, e.transitions...)
	e.mu.Unlock()
	for _, f := range fs {
		f(name, t)
	}
}

func (e *Engine) newInstance(ctx context.Context, vc *config.VRRPInstance, cfg *config.Config) (*instance, error) {
	g := cfg.Global
	in := &instance{
		name:     vc.Name,
		cfg:      vc,
		log:      e.log.With("instance", vc.Name),
		lines:    e.limits().transitions,
		nl:       e.nl,
		v6:       vc.IPv6,
		unicast:  len(vc.UnicastPeers) > 0,
		trackers: map[string]trackerState{},
		buf:      make([]byte, 0, 1500),
		notify:   e.fireTransition,
		heard:    e.fireLowerHeard,
	}
	in.stats.since.Store(time.Now().UnixNano())
	in.src = vc.UnicastSrcIP
	if !in.src.IsValid() && vc.McastSrcIP.IsValid() {
		in.src = vc.McastSrcIP
	}
	// An interface that is missing or has no address yet does not stop the instance, let
	// alone the others: it starts in FAULT and sets up when the link watch sees the
	// interface ready (unit.checkInterface), as keepalived 2.2.7 with dynamic_interfaces.
	// Right after boot or link-up an IPv6 link-local address is still "tentative" while
	// duplicate address detection runs, for a second or two: worth a wait at start rather
	// than a FAULT, and the notify that goes with it.
	wait := time.Duration(0)
	if vc.IPv6 {
		wait = 5 * time.Second
	}
	ifi, src, err := e.resolve(ctx, vc, in.src, wait)
	if err != nil {
		var nr notReady
		if !errors.As(err, &nr) {
			return nil, err
		}
		in.unready = nr.reason
		in.waiting.Store(true)
		in.log.Warn("interface not ready; the instance stays in FAULT until it is", "reason", nr.reason)
	}
	in.src = src
	group := groupFor(in.v6, g.VRRPMcastGroup4, g.VRRPMcastGroup6)
	if vc.McastGroup.IsValid() {
		group = vc.McastGroup
	}
	if in.unicast {
		for _, p := range vc.UnicastPeers {
			in.dsts = append(in.dsts, p.Addr)
		}
	} else {
		in.dsts = []netip.Addr{group}
	}
	in.settings = settingsOf(vc, g, in.src)
	in.rx.Store(in.settings.rx(vc))
	// Without a "state" line keepalived derives the start from the priority (255: MASTER).
	initial := fsm.Init
	if _, set := vc.Places["state"]; set {
		initial = fsm.Backup
		if vc.InitialState == "MASTER" {
			initial = fsm.Master
		}
	}
	fc := in.settings.fsm
	fc.InitialState = initial
	in.m = fsm.New(fc)
	for _, t := range vc.TrackInterfaces {
		in.trackers["if:"+t.Name] = upDown(true, t.Weight, t.Reverse, nil)
	}

	in.trackable = trackable(vc, cfg)
	in.startPending(vc, cfg)
	in.fresh.word.Store(-1)
	if in.unready == "" {
		if err := e.attach(ctx, in, ifi); err != nil {
			return nil, err
		}
		in.watchSource()
	}
	return in, nil
}

// notReady is why an instance cannot be set up yet: its interface is missing or has no
// usable address. Anything else that fails setting an instance up is an error.
type notReady struct{ reason string }

func (nr notReady) Error() string { return nr.reason }

// resolve finds the interface of vc and the source address of its adverts: src when the
// configuration sets one, else the interface's primary address. A notReady error says why
// they are not there yet. wait is how long to wait for an address.
func (e *Engine) resolve(ctx context.Context, vc *config.VRRPInstance, src netip.Addr, wait time.Duration) (*net.Interface, netip.Addr, error) {
	ifi, err := net.InterfaceByName(vc.Interface)
	if err != nil {
		if _, lerr := e.nl.Link(vc.Interface); errors.Is(lerr, netif.ErrNoLink) {
			return nil, src, notReady{fmt.Sprintf("interface %s does not exist", vc.Interface)}
		}
		return nil, src, fmt.Errorf("interface %q: %w", vc.Interface, err)
	}
	if src.IsValid() {
		return ifi, src, nil
	}
	a, err := e.primaryAddr(ctx, vc.Interface, vc.IPv6, wait)
	switch {
	case err == nil:
		return ifi, a, nil
	case errors.Is(err, netif.ErrNoAddr):
		family := "IPv4"
		if vc.IPv6 {
			family = "IPv6 link-local"
		}
		return ifi, src, notReady{fmt.Sprintf("no %s address on %s", family, vc.Interface)}
	case errors.Is(err, netif.ErrNoLink):
		return nil, src, notReady{fmt.Sprintf("interface %s does not exist", vc.Interface)}
	}
	return nil, src, fmt.Errorf("no source address on %s: %w", vc.Interface, err)
}

// attach opens (or joins) the sockets of in on ifi, and its VMAC with use_vmac.
func (e *Engine) attach(ctx context.Context, in *instance, ifi *net.Interface) error {
	vc := in.cfg
	var groups []netip.Addr
	if !in.unicast {
		groups = in.dsts
	}
	// Adverts arrive on the instance's interface, and with use_vmac on the VMAC too (those
	// sent from the virtual MAC while ours is up: see openVMACListener). They leave from the
	// interface, or from the VMAC, with the virtual MAC, so that the switches learn it on the
	// master's port. vmac_xmit_base keeps them on the instance's interface; so does IPv6,
	// whose adverts must come from a link-local address of the interface they leave. The
	// VMAC's sockets join no group: a backup's VMAC then sends nothing at all (no IGMP
	// report either) that would teach the switches the virtual MAC on the wrong port.
	sendIf := vc.Interface
	if name := vmacName(vc); name != "" {
		created, err := e.nl.EnsureVMAC(vc.Interface, name, netif.VMACAddr(vc.VRID, vc.IPv6), vc.IPv6)
		if created {
			e.vmacMu.Lock()
			e.vmacs = append(e.vmacs, name)
			e.vmacMu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
		if !vc.IPv6 {
			if err := e.nl.SetVMACParent(vc.Interface); err != nil {
				return fmt.Errorf("use_vmac: %w", err)
			}
		}
		if !vc.VMACXmitBase && !vc.IPv6 {
			sendIf = name
		}
	}
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	sg, err := e.sockGroup(ctx, ifi, in.v6, groups)
	if err != nil {
		return err
	}
	if other := sg.lookup(uint8(vc.VRID)); other != nil && other != in {
		return fmt.Errorf("virtual_router_id %d on %s is used by %s too", vc.VRID, vc.Interface, other.name)
	}
	in.sg, in.sock, in.out = sg, sg.sock, sg.out
	if name := vmacName(vc); name != "" {
		in.vmac = name
		vifi, err := net.InterfaceByName(name)
		if err != nil {
			return fmt.Errorf("interface %q: %w", name, err)
		}
		// While it is up (master), the adverts of another master that sends from the same
		// virtual MAC (a split brain, whatever the sending side's vmac_xmit_base or address
		// family) reach only the VMAC: it must listen, or both stay master for good.
		var fresh bool
		if in.vsg, fresh, err = e.vmacListener(vifi, in.v6, netif.VMACAddr(vc.VRID, vc.IPv6)); err != nil {
			return err
		}
		if sendIf == name {
			out, err := e.sockGroup(ctx, vifi, in.v6, nil) // sends only: see above
			if err != nil {
				if fresh {
					// Nobody else uses it: left listed, startSockets would give it a
					// reader that serves no instance.
					e.dropVMACListener(vifi, in.v6)
				}
				return err
			}
			in.sock, in.out = out.sock, out.out
		}
	}
	return nil
}

// sockGroup returns the socket of an interface and family, opened (and its groups joined)
// on first use. Callers hold sockMu.
func (e *Engine) sockGroup(ctx context.Context, ifi *net.Interface, v6 bool, groups []netip.Addr) (*sockGroup, error) {
	key := sockKey{ifindex: ifi.Index, v6: v6}
	sg := e.sockets[key]
	if sg == nil {
		s, err := openSocket(ctx, ifi, v6, groups)
		if err != nil {
			return nil, err
		}
		sg = &sockGroup{sock: s, out: newSender(s, e.log)}
		sg.setVRID(0, nil)
		e.sockets[key] = sg
	} else if len(groups) > 0 {
		if err := sg.sock.join(groups); err != nil {
			return nil, err
		}
	}
	return sg, nil
}

// vmacListener returns the listener of a VMAC (see openVMACListener), opened on first use,
// and whether this call opened it. Callers hold sockMu.
func (e *Engine) vmacListener(ifi *net.Interface, v6 bool, mac net.HardwareAddr) (*sockGroup, bool, error) {
	key := sockKey{ifindex: ifi.Index, v6: v6, vmac: true}
	if sg := e.sockets[key]; sg != nil {
		return sg, false, nil
	}
	s, err := openVMACListener(ifi, v6, mac)
	if err != nil {
		return nil, false, err
	}
	sg := &sockGroup{sock: s}
	sg.setVRID(0, nil)
	e.sockets[key] = sg
	return sg, true, nil
}

// dropVMACListener closes and forgets the listener of a VMAC. Callers hold sockMu.
func (e *Engine) dropVMACListener(ifi *net.Interface, v6 bool) {
	key := sockKey{ifindex: ifi.Index, v6: v6, vmac: true}
	if sg := e.sockets[key]; sg != nil {
		sg.shut()
		delete(e.sockets, key)
	}
}

// listen makes in reachable by its sockets' readers: the last step, once its unit exists.
func (in *instance) listen() {
	if in.sg == nil {
		return // not set up yet: its interface is not ready
	}
	in.sg.setVRID(uint8(in.cfg.VRID), in)
	if in.vsg != nil {
		in.vsg.setVRID(uint8(in.cfg.VRID), in)
	}
}

// unlisten undoes listen, for a reload that removes in.
func (in *instance) unlisten() {
	if in.sg == nil {
		return
	}
	in.sg.clearVRID(uint8(in.cfg.VRID), in)
	if in.vsg != nil {
		in.vsg.clearVRID(uint8(in.cfg.VRID), in)
	}
}

// primaryAddr waits up to wait for the interface's address.
func (e *Engine) primaryAddr(ctx context.Context, ifname string, v6 bool, wait time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(wait)
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
	defer e.flushLogs()
	readCtx, stopReaders := context.WithCancel(context.Background())
	defer stopReaders()
	links, err := e.nl.WatchLinks(readCtx)
	if err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	addrs, err := e.nl.WatchAddrs(readCtx)
	if err != nil {
		return fmt.Errorf("watch addresses: %w", err)
	}
	e.rw.Lock()
	e.runCtx, e.readCtx = ctx, readCtx
	e.startSockets()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.watch.run(readCtx)
	}()
	go e.linkLoop(readCtx, links, addrs)
	e.startTrackFiles()
	for _, u := range e.units {
		for _, in := range u.members {
			in.listen()
		}
		e.startUnit(u, e.cfg.Global.VRRPStartupDelay)
	}
	close(e.running)
	e.rw.Unlock()

	<-ctx.Done()
	e.rw.Lock()
	e.stopping = true // no reload starts a unit from here on
	e.rw.Unlock()
	e.uwg.Wait() // instances have resigned and released their addresses
	stopReaders()
	e.sockMu.Lock()
	for _, sg := range e.sockets {
		sg.sock.close() // unblocks the readers
	}
	e.sockMu.Unlock()
	e.wg.Wait()
	return nil
}

// startSockets starts the reader and the sender of each socket that has none yet.
func (e *Engine) startSockets() {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	for _, sg := range e.sockets {
		e.startSocket(sg)
	}
}

// startSocket starts the reader and the sender of a socket. Callers hold sockMu.
func (e *Engine) startSocket(sg *sockGroup) {
	if sg.started {
		return
	}
	sg.started = true
	ctx, cancel := context.WithCancel(e.readCtx)
	sg.stop = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.readLoop(ctx, sg)
	}()
	if sg.out != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			sg.out.run(ctx)
		}()
	}
}

// startUnit runs u until Run's context ends or the unit is stopped (a reload removed it).
// Callers hold rw.
func (e *Engine) startUnit(u *unit, delay time.Duration) {
	runCtx := e.runCtx
	ctx, cancel := context.WithCancel(runCtx)
	u.stop = cancel
	u.isDemoted = e.demoted.has
	// Only the engine's stop keeps the instances (KeepOnStop), not a reload removing the unit.
	u.keepAtStop = func() bool { return e.keep.Load() && runCtx.Err() != nil }
	e.uwg.Add(1)
	go func() {
		defer e.uwg.Done()
		defer close(u.exited)
		defer cancel()
		u.run(ctx, delay)
	}()
}

// startTrackFiles (re)starts the track_file watcher on the current instances. Callers
// hold rw.
func (e *Engine) startTrackFiles() {
	if e.stopFiles != nil {
		e.stopFiles()
	}
	ctx, cancel := context.WithCancel(e.readCtx)
	e.stopFiles = cancel
	go e.watchTrackFiles(ctx)
}

func (e *Engine) close() {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	for _, sg := range e.sockets {
		sg.sock.close()
	}
	e.vmacMu.Lock()
	if e.keep.Load() && len(e.vmacs) > 0 {
		e.log.Info("VMAC interfaces kept (--dont-release-vrrp)", "interfaces", strings.Join(e.vmacs, " "))
		e.vmacs = nil
	}
	for _, name := range e.vmacs {
		if err := e.nl.DeleteVMAC(name); err != nil {
			e.log.Warn("VMAC interface left behind", "interface", name, "error", err)
		}
	}
	e.vmacs = nil
	e.vmacMu.Unlock()
	e.nl.Close()
}

// dropVMAC deletes a VMAC this engine created and no instance uses any more, and closes
// the sockets on it (after vmacMu is released: close takes sockMu first).
func (e *Engine) dropVMAC(name string) {
	defer e.closeSocketsOn(name)
	e.vmacMu.Lock()
	defer e.vmacMu.Unlock()
	i := slices.Index(e.vmacs, name)
	if i < 0 {
		return // not ours: it was there before vigil
	}
	if err := e.nl.DeleteVMAC(name); err != nil {
		e.log.Warn("VMAC interface left behind", "interface", name, "error", err)
		return
	}
	e.vmacs = slices.Delete(e.vmacs, i, i+1)
}

// closeSocketsOn closes and forgets the sockets on interface name, whose instances are gone;
// their readers end.
func (e *Engine) closeSocketsOn(name string) {
	e.sockMu.Lock()
	defer e.sockMu.Unlock()
	for k, sg := range e.sockets {
		if sg.sock.ifi.Name == name {
			sg.shut()
			delete(e.sockets, k)
		}
	}
}

// shut stops the socket's reader and sender, if they run, and closes it. Callers hold
// sockMu.
func (sg *sockGroup) shut() {
	if sg.stop != nil {
		sg.stop() // the sender waits on nothing else
	}
	sg.sock.close() // unblocks the reader
}

// vmacName is the VMAC interface of vc, or "" without use_vmac.
func vmacName(vc *config.VRRPInstance) string {
	if !vc.UseVMAC {
		return ""
	}
	if vc.VMACName != "" {
		return vc.VMACName
	}
	return netif.VMACName(vc.VRID, vc.IPv6)
}

// readLoop receives adverts on one socket, validates them and hands them to their instance.
func (e *Engine) readLoop(ctx context.Context, sg *sockGroup) {
	defer sg.prog.stop()
	ring, err := newRxRing(sg.sock, &sg.prog)
	if err != nil {
		e.log.Error("VRRP socket cannot receive", "interface", sg.sock.ifi.Name, "error", err)
		return
	}
	ds := make([]datagram, 0, rxBatch)
	var downSeq uint64 // the call that last reported ENETDOWN
	for {
		var err error
		ds, err = ring.read(ds)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			// The call brought nothing to hand out: a unit that settles on this reader
			// (unit.settle) must not wait for it.
			sg.prog.handedOut(ring.seq, false)
			// A packet socket reports once that its interface is, or went, down: a VMAC at
			// every start and every step-down. The next read waits as usual; only if it
			// fails at once again (no call found the socket empty in between) is it news.
			netDown := sg.sock.link != nil && errors.Is(err, unix.ENETDOWN)
			if netDown && (downSeq == 0 || ring.seq != downSeq+1) {
				downSeq = ring.seq
				continue
			}
			e.log.Warn("VRRP socket read failed", "interface", sg.sock.ifi.Name, "error", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		at := int64(time.Since(e.base))
		for _, d := range ds {
			e.receive(sg, d, at)
		}
		sg.prog.handedOut(ring.seq, ring.used < rxBatch)
	}
}

// Drop reasons of the receive path beside those of the codec (packet.Reason).
const (
	// reasonBadIPHeader: the IP header in front of the advert was unusable (a VMAC
	// listener hears frames before the kernel's IP layer checks them).
	reasonBadIPHeader packet.Reason = "bad_ip_header"
	// reasonUnknownVRID: no instance on the socket has the advert's VRID. Counted, never
	// logged: other virtual routers share the segment.
	reasonUnknownVRID packet.Reason = "unknown_vrid"
	// reasonNotPeer: with check_unicast_src, a unicast advert from an address that is not
	// a unicast_peer (keepalived 2.2.7 drops it the same way).
	reasonNotPeer packet.Reason = "not_a_peer"
	// reasonCastMismatch: a multicast advert for an instance with unicast peers, or a
	// unicast one for an instance without (keepalived 2.2.7: "Expected unicast packet but
	// received multicast packet" and the reverse).
	reasonCastMismatch packet.Reason = "cast_mismatch"
	// reasonOwnAddress: an advert from the instance's own address, which passed every
	// other check.
	reasonOwnAddress packet.Reason = "own_address"
)

// receive handles one datagram that arrived at (nanoseconds since e.base).
func (e *Engine) receive(sg *sockGroup, d datagram, at int64) {
	if d.badHeader {
		e.drop(reasonBadIPHeader, d.src, "")
		return
	}
	if len(d.payload) < 2 {
		e.drop(packet.ReasonTooShort, d.src, "")
		return
	}
	in := sg.lookup(d.payload[1])
	if in == nil {
		// Other virtual routers share the segment; their adverts are none of our business.
		e.count(reasonUnknownVRID)
		return
	}
	// Multicast adverts must arrive with TTL 255; unicast ones only within a configured
	// min_ttl..max_ttl (keepalived: none configured accepts any), and with check_unicast_src
	// only from a unicast_peer.
	rx := in.rx.Load()
	min, max := 0, 0
	if rx.unicast {
		p := rx.peer(d.src)
		if p == nil && rx.checkSrc {
			e.drop(reasonNotPeer, d.src, "")
			return
		}
		if p != nil && (p.MinTTL != 0 || p.MaxTTL != 255) {
			min, max = p.MinTTL, p.MaxTTL
		}
	}
	if err := packet.CheckTTL(d.ttl, rx.unicast, min, max); err != nil {
		e.dropErr(err, d.src)
		return
	}
	// An IPv6 destination is unknown when the socket gave no IPV6_PKTINFO: not checked then.
	if d.dst.IsValid() && d.dst.IsMulticast() == rx.unicast {
		e.drop(reasonCastMismatch, d.src, "destination "+d.dst.String())
		return
	}
	// One advert per socket, reused: the reader owns it, and parsing then allocates nothing.
	adv := &sg.adv
	err := adv.Unmarshal(d.payload, d.src, d.dst, rx.popts)
	if err != nil {
		e.dropErr(err, d.src)
		return
	}
	if err := adv.Check(rx.expect); err != nil {
		var de *packet.DropError
		if !errors.As(err, &de) || !de.Reason.Advisory() {
			e.dropErr(err, d.src)
			return
		}
		// A list that shares an address with ours is logged and counted but the advert
		// still counts (keepalived 2.2.7 drops it): a peer that was just reloaded with one
		// more VIP must not make this node take over as well. A list with none of ours is
		// not advisory (foreign_addrs): another virtual router with our VRID.
		e.drop(de.Reason, d.src, de.Detail)
	}
	if d.src.WithZone("") == rx.self.WithZone("") {
		// Our own advert, looped back by a unicast peer list or a bridge, or another host
		// with our address: it must neither refresh our Master_Down_Timer as a backup nor
		// make us compare ourselves with ourselves as a master. Counted, not logged: a
		// peer list that names us brings one every interval.
		e.count(reasonOwnAddress)
		return
	}
	in.stats.received.Add(1)
	if adv.Priority == 0 {
		in.stats.zeroRecvd.Add(1)
	}
	ev := fsm.AdvertReceived{From: d.src, Priority: adv.Priority, Interval: adv.Interval}
	if in.fresh.offer(ev, at) {
		return // a steady backup's refresh: recorded, its unit sleeps on
	}
	select {
	case in.unit.inbox <- unitEvent{member: in.member, ev: ev}:
	case <-in.unit.exited:
		// A reload removed the instance after this reader looked it up: the advert is for
		// nobody, and waiting would stall every instance on this socket.
	}
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

// drop counts a discarded advert by reason and logs it: the first of a reason at once, then
// at most one summary every 10 s per reason (a peer with a wrong password sends one each
// interval, forever).
func (e *Engine) drop(reason packet.Reason, src netip.Addr, detail string) {
	n := e.count(reason)
	e.limits().drops.Log(e.log, string(reason), hclog.Warn, "advert dropped", "reason", string(reason), "peer", src.String(), "detail", detail, "total", n)
}

// logLimits are an engine's limits on repeated lines.
type logLimits struct {
	drops       *loglimit.Limiter // by reason
	transitions *loglimit.Limiter // by instance
}

// limits returns the engine's limits, made on first use: tests build engines without New.
func (e *Engine) limits() *logLimits {
	e.logLimitsOnce.Do(func() {
		e.logLimits = logLimits{
			drops:       loglimit.New(loglimit.Options{Burst: 1, Period: dropLogPeriod}),
			transitions: loglimit.ForTransitions(),
		}
	})
	return &e.logLimits
}

// dropLogPeriod is how often an advert drop reason is logged at most.
const dropLogPeriod = 10 * time.Second

// flushLogs writes the summaries still pending at stop: the last state of a flapping
// instance must not go with the process.
func (e *Engine) flushLogs() {
	l := e.limits()
	l.transitions.Flush()
	l.drops.Flush()
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

// linkLoop turns link changes into tracker updates for the instances that care, and link
// and address changes into checks for the instances that wait for their interface or lost
// its address (see ifready.go).
func (e *Engine) linkLoop(ctx context.Context, links <-chan netif.Link, addrs <-chan netif.AddrChange) {
	names := map[int]string{} // interface names by index, for the address changes
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-addrs:
			if !ok {
				addrs = nil
				continue
			}
			e.postIfChecks(ctx, e.ifChecksForAddr(c, names))
		case l, ok := <-links:
			if !ok {
				return
			}
			if l.Deleted {
				delete(names, l.Index)
			} else {
				names[l.Index] = l.Name
			}
			// Collect under the lock, post without it: a unit applying a reload takes it.
			var posts []trackerPost
			e.rw.RLock()
			for _, in := range e.instances {
				if in.cfg.Interface == l.Name && !in.cfg.DontTrackPrim {
					posts = append(posts, trackerPost{in, trackerEvent{key: "if:" + l.Name, state: upDown(l.Up, 0, false, nil)}})
				}
				for _, t := range in.cfg.TrackInterfaces {
					if t.Name == l.Name {
						posts = append(posts, trackerPost{in, trackerEvent{key: "if:" + l.Name, state: upDown(l.Up, t.Weight, t.Reverse, nil)}})
					}
				}
			}
			e.rw.RUnlock()
			postAll(ctx, posts)
			e.postIfChecks(ctx, e.ifChecksForLink(l))
		}
	}
}

// trackerPost is a tracker update for an instance. The link watch collects its updates
// under rw and posts them after releasing it: a unit applying a reload takes rw.
type trackerPost struct {
	in *instance
	ev trackerEvent
}

func postAll(ctx context.Context, posts []trackerPost) {
	for _, p := range posts {
		p.in.post(ctx, p.ev)
	}
}

// post hands msg to the instance's unit, unless the unit is gone (a reload removed it).
func (in *instance) post(ctx context.Context, msg inboxMsg) {
	if ctx.Err() != nil {
		return // a watcher a reload replaced: its news may be stale
	}
	select {
	case in.unit.inbox <- unitEvent{member: in.member, msg: msg}:
	case <-in.unit.exited:
	case <-ctx.Done():
	}
}
