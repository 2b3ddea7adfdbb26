package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/netif"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
)

// A reload changes only what changed. An instance is the same virtual router across a
// reload when its identity is: the interface, the address family, the VRID, the VRRP
// version, and the addresses it talks from and to (unicast peers, source, multicast group).
// Its name is not part of it: renaming an instance keeps its state. Such an instance keeps
// its machine, so a master stays master and keeps its addresses; the new settings apply in
// place (reconfigure below). An instance whose identity changed is stopped (it resigns and
// removes its addresses) and started anew, like one the reload added.

// ReloadResult names the instances by what a reload did to them.
type ReloadResult struct {
	Kept, Changed, Added, Removed, Restarted []string
}

// settings is what an instance's configuration means at run time.
type settings struct {
	vips     []netif.Addr // virtual_ipaddress and virtual_ipaddress_excluded
	advAddrs []netip.Addr // the addresses carried in adverts
	routes   []netif.Route
	auth     [8]byte
	authType uint8
	fsm      fsm.Config // InitialState unset: it only matters at start
	expect   packet.Expect
	popts    packet.Options
	garp     config.Garp
	checkSrc bool   // unicast adverts only from a unicast_peer (check_unicast_src)
	tracking string // the tracked interfaces, scripts and files, with weights
}

func settingsOf(vc *config.VRRPInstance, g config.Global, src netip.Addr) settings {
	var s settings
	// With use_vmac, addresses without a dev of their own go on the VMAC.
	dev := vc.Interface
	if name := vmacName(vc); name != "" {
		dev = name
	}
	for _, a := range vc.VIPs {
		s.advAddrs = append(s.advAddrs, a.Prefix.Addr())
		s.vips = append(s.vips, toNetifAddr(a, dev))
	}
	for _, a := range vc.ExcludedVIPs {
		s.vips = append(s.vips, toNetifAddr(a, dev))
	}
	for _, r := range vc.Routes {
		s.routes = append(s.routes, toNetifRoute(r))
	}
	if vc.Auth != nil && vc.Auth.Type == "PASS" && vc.Version == 2 {
		s.authType = 1
		copy(s.auth[:], vc.Auth.Pass)
	}
	s.expect = packet.Expect{
		Version:       vc.Version,
		VRID:          uint8(vc.VRID),
		AuthType:      s.authType,
		AuthData:      s.auth,
		Interval:      vc.AdvertInt,
		Addrs:         s.advAddrs,
		SkipAddrCheck: vc.SkipCheckAdvAddr || g.VRRPSkipCheckAdvAddr,
	}
	s.popts = packet.Options{V3ChecksumAsV2: g.V3ChecksumAsV2}
	s.fsm = fsm.Config{
		VRID:              uint8(vc.VRID),
		Version:           vc.Version,
		Priority:          vc.Priority,
		AdvertInterval:    vc.AdvertInt,
		Preempt:           !vc.NoPreempt,
		PreemptDelay:      vc.PreemptDelay,
		PrimaryAddr:       src,
		LowerPrioNoAdvert: vc.LowerPrioNoAdv || g.VRRPLowerPrioNoAdvert,
		// keepalived 2.2.7: vrrp_garp_master_repeat (5) and vrrp_garp_master_delay (5 s)
		// unless set otherwise (core/config fills them in).
		LowerPrioGarpRepeat:  vc.Garp.LowerPrioRepeat,
		LowerPrioGarpDelay:   vc.Garp.LowerPrioDelay,
		HigherPrioSendAdvert: vc.HigherPrioSend || g.VRRPHigherPrioSendAdvert,
	}
	s.garp = vc.Garp
	// keepalived 2.2.7: a min_ttl or max_ttl on any peer turns check_unicast_src on.
	s.checkSrc = vc.CheckUnicastSrc || g.VRRPCheckUnicastSrc
	for _, p := range vc.UnicastPeers {
		if p.MinTTL != 0 || p.MaxTTL != 255 {
			s.checkSrc = true
		}
	}
	var t []string
	for _, ti := range vc.TrackInterfaces {
		t = append(t, fmt.Sprintf("if:%s/%d/%v", ti.Name, ti.Weight, ti.Reverse))
	}
	for _, r := range vc.TrackScripts {
		t = append(t, fmt.Sprintf("script:%s/%v/%d/%v/%v", r.Name, r.HasWeight, r.Weight, r.HasReverse, r.Reverse))
	}
	for _, r := range vc.TrackFiles {
		t = append(t, fmt.Sprintf("file:%s/%v/%d/%v/%v", r.Name, r.HasWeight, r.Weight, r.HasReverse, r.Reverse))
	}
	s.tracking = strings.Join(t, " ") + fmt.Sprintf(" dont_track_primary=%v", vc.DontTrackPrim)
	return s
}

// rxParams is what the socket reader checks an advert for this instance against.
type rxParams struct {
	expect  packet.Expect
	popts   packet.Options
	unicast bool
	peers   []config.UnicastPeer // for their TTL limits
	// checkSrc: unicast adverts only from one of peers (check_unicast_src).
	checkSrc bool
	// self is the source of our own adverts (it changes when an instance that waited for
	// its interface's address sets up).
	self netip.Addr
}

func (s settings) rx(vc *config.VRRPInstance) *rxParams {
	return &rxParams{expect: s.expect, popts: s.popts, unicast: len(vc.UnicastPeers) > 0, peers: vc.UnicastPeers,
		checkSrc: s.checkSrc, self: s.fsm.PrimaryAddr}
}

// peer returns the unicast_peer whose address is src, or nil. The wire carries no zone: a
// peer configured with one (fe80::2%eth0) still matches.
func (rx *rxParams) peer(src netip.Addr) *config.UnicastPeer {
	for i := range rx.peers {
		if rx.peers[i].Addr.WithZone("") == src.WithZone("") {
			return &rx.peers[i]
		}
	}
	return nil
}

// identity is what makes an instance the same virtual router across a reload.
func identity(vc *config.VRRPInstance, g config.Global) string {
	peers := make([]string, 0, len(vc.UnicastPeers))
	for _, p := range vc.UnicastPeers {
		peers = append(peers, p.Addr.String())
	}
	sort.Strings(peers)
	group := groupFor(vc.IPv6, g.VRRPMcastGroup4, g.VRRPMcastGroup6)
	if vc.McastGroup.IsValid() {
		group = vc.McastGroup
	}
	if len(peers) > 0 {
		group = netip.Addr{}
	}
	return fmt.Sprintf("%s v6=%v vrid=%d version=%d src=%s mcast_src=%s group=%s peers=%s vmac=%s/%v",
		vc.Interface, vc.IPv6, vc.VRID, vc.Version, vc.UnicastSrcIP, vc.McastSrcIP, group, strings.Join(peers, ","), vmacName(vc), vc.VMACXmitBase)
}

// ErrNotApplied is a reload that changed nothing: the engine runs the configuration it ran
// before. Any other error from Reload leaves the rest of the new configuration applied.
var ErrNotApplied = errors.New("reload not applied")

// reconfigure is a reload's work for one unit, done by the unit's goroutine.
type reconfigure struct {
	apply func(u *unit, now time.Time)
	done  chan struct{}
}

// Reload applies cfg, which config.Load validated: see the comment at the top of this file.
// The instances it keeps never stop running. Once it has checked that the new instances'
// interfaces exist, it runs to its end whatever ctx does: a reload stopped half-way would
// leave instances stopped but listed as running. An error (a new instance that cannot
// start, an address that cannot be added) names the instance; the rest applies.
func (e *Engine) Reload(ctx context.Context, cfg *config.Config) (ReloadResult, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	select {
	case <-e.running:
	case <-ctx.Done():
		return ReloadResult{}, fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())
	}
	e.rw.RLock()
	stopping := e.stopping || e.runCtx.Err() != nil
	oldCfg, units := e.cfg, slices.Clone(e.units)
	e.rw.RUnlock()
	if stopping {
		return ReloadResult{}, fmt.Errorf("%w: vrrp is stopping", ErrNotApplied)
	}
	views := make([]unitView, len(units))
	for i, u := range units {
		views[i] = u.view()
	}
	plan := planReload(views, oldCfg, cfg)
	// Interfaces of new instances are checked before anything stops, so that a typo in a
	// new instance does not cost the old ones anything.
	for _, s := range plan.start {
		if s.restart {
			continue // the same interface as the instance it succeeds
		}
		if _, err := net.InterfaceByName(s.vc.Interface); err != nil {
			return ReloadResult{}, fmt.Errorf("%w: %s: vrrp_instance %s: interface %q: %w", ErrNotApplied, s.vc.Pos, s.vc.Name, s.vc.Interface, err)
		}
	}
	return e.applyReload(units, plan, cfg)
}

// unitView is what planning a reload needs to know of a running unit.
type unitView struct {
	members []*config.VRRPInstance // each member's configuration, as it runs
	group   bool                   // a sync group's unit, rather than a lone instance's
	exited  bool                   // the unit's goroutine has returned
}

func (u *unit) view() unitView {
	v := unitView{group: u.group != nil, exited: u.hasExited()}
	for _, in := range u.members {
		v.members = append(v.members, in.cfg)
	}
	return v
}

// reloadPlan is what a reload does to the running units and the new configuration's
// instances (planReload). Every running instance is in exactly one of keep's units or
// stop's, and every new instance is in exactly one of next or start.
type reloadPlan struct {
	// keep are the units that stay, by index in planReload's units; next[i] is the new
	// configuration of each member of keep[i], in member order (see reconfigure).
	keep []int
	next [][]*config.VRRPInstance
	// stop are the units that stop, by index. Each of their members is removed, or
	// restarted: the new configuration has its identity, but grouped otherwise.
	stop               []int
	removed, restarted []string // names of stop's members
	// start are the instances of the new configuration that start, in its order.
	start []planStart
	// freeVMAC are the VMACs of stop's members that no new instance uses: they go.
	freeVMAC map[string]bool
}

// planStart is an instance a reload starts.
type planStart struct {
	vc      *config.VRRPInstance
	restart bool // it succeeds one of stop's members (ReloadResult.Restarted, not Added)
}

// planReload decides what a reload from oldCfg, run by units, to cfg does. It touches
// nothing: Engine.applyReload carries the plan out.
func planReload(units []unitView, oldCfg, cfg *config.Config) reloadPlan {
	newByID := map[string]*config.VRRPInstance{}
	for _, vc := range cfg.Instances {
		newByID[identity(vc, cfg.Global)] = vc
	}
	// A unit stays when each of its instances stays and they are grouped as before, and it
	// still runs (a unit ends only when the engine stops or a reload removes it).
	groupOf := map[string]string{} // new instance name -> its new sync group
	for _, g := range cfg.SyncGroups {
		for _, m := range g.Members {
			groupOf[m.Name] = g.Name
		}
	}
	var p reloadPlan
	kept := map[*config.VRRPInstance]bool{}
	restarted := map[string]bool{} // identities
	for i, u := range units {
		if unitStays(u, oldCfg, cfg, newByID, groupOf) && !u.exited {
			next := make([]*config.VRRPInstance, len(u.members))
			for m, vc := range u.members {
				next[m] = newByID[identity(vc, oldCfg.Global)]
				kept[next[m]] = true
			}
			p.keep, p.next = append(p.keep, i), append(p.next, next)
			continue
		}
		p.stop = append(p.stop, i)
		for _, vc := range u.members {
			if id := identity(vc, oldCfg.Global); newByID[id] != nil {
				restarted[id] = true
				p.restarted = append(p.restarted, vc.Name)
			} else {
				p.removed = append(p.removed, vc.Name)
			}
		}
	}
	for _, vc := range cfg.Instances {
		if !kept[vc] {
			p.start = append(p.start, planStart{vc: vc, restart: restarted[identity(vc, cfg.Global)]})
		}
	}
	// A VMAC that no instance of the new configuration uses goes with its instance.
	usedVMAC := map[string]bool{}
	for _, vc := range cfg.Instances {
		usedVMAC[vmacName(vc)] = true
	}
	for _, i := range p.stop {
		for _, vc := range units[i].members {
			if name := vmacName(vc); name != "" && !usedVMAC[name] {
				if p.freeVMAC == nil {
					p.freeVMAC = map[string]bool{}
				}
				p.freeVMAC[name] = true
			}
		}
	}
	return p
}

// applyReload carries out plan, made from units for cfg: it stops what goes, applies the
// new settings to what stays and starts what is new.
func (e *Engine) applyReload(units []*unit, plan reloadPlan, cfg *config.Config) (ReloadResult, error) {
	res := ReloadResult{Removed: plan.removed, Restarted: plan.restarted}
	var errs []error
	keep := make([]*unit, len(plan.keep))
	for i, k := range plan.keep {
		keep[i] = units[k]
	}
	drop := make([]*unit, len(plan.stop))
	for i, k := range plan.stop {
		drop[i] = units[k]
	}

	// Stop what goes first: a restarted instance's VRID must be free for its successor.
	for _, u := range drop {
		for _, in := range u.members {
			// Under sockMu: a unit that sets up an instance whose interface came late
			// (unit.setUp) attaches it to its sockets under sockMu too.
			e.sockMu.Lock()
			in.unlisten()
			e.sockMu.Unlock()
		}
		u.stop()
	}
	for _, u := range drop {
		<-u.exited // resigned, addresses removed
	}
	// A unit may have set up a waiting instance (its interface came) between the unlisten
	// above and its stop: now that it has exited, nothing attaches them any more.
	for _, u := range drop {
		e.sockMu.Lock()
		for _, in := range u.members {
			in.unlisten()
		}
		e.sockMu.Unlock()
	}
	for _, u := range drop {
		for _, in := range u.members {
			// in.vmac is set once the VMAC is made: an instance that never set up made none.
			if in.vmac != "" && plan.freeVMAC[in.vmac] {
				e.dropVMAC(in.vmac)
			}
		}
	}

	// Apply the new settings to what stays, on each unit's goroutine, in two rounds: every
	// master first removes the addresses and routes it no longer has, then adds the new
	// ones, so that an address moved from one instance to another is never removed last.
	results := make([][]reconfigured, len(keep))
	for i, u := range keep {
		results[i] = make([]reconfigured, len(u.members))
	}
	for phase := range 2 {
		for i, u := range keep {
			u.apply(func(u *unit, now time.Time) {
				for m, in := range u.members {
					vc, r := plan.next[i][m], &results[i][m]
					if phase == 0 {
						r.next = settingsOf(vc, cfg.Global, in.src)
						r.errs = e.release(in, r.next)
					} else {
						// An instance whose interface came between the two rounds was
						// set up meanwhile (unit.setUp) with a new source address: the
						// settings follow it, as the machine took it already.
						if r.next.fsm.PrimaryAddr != in.src {
							r.next = settingsOf(vc, cfg.Global, in.src)
						}
						*r = e.reconfigure(u, now, m, vc, cfg, r.next, r.errs)
					}
				}
			})
		}
	}
	for i, u := range keep {
		for m, in := range u.members {
			r := results[i][m]
			if r.changed {
				res.Changed = append(res.Changed, in.name)
			} else {
				res.Kept = append(res.Kept, in.name)
			}
			for _, err := range r.errs {
				errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: %w", in.cfg.Pos, in.name, err))
			}
		}
	}

	// Start what is new. The sockets open without rw held: a unit that reports a
	// transition meanwhile reads the status under rw.
	var fresh []*instance
	for _, s := range plan.start {
		in, err := e.newInstance(e.runCtx, s.vc, cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: %w", s.vc.Pos, s.vc.Name, err))
			continue
		}
		fresh = append(fresh, in)
		if !s.restart {
			res.Added = append(res.Added, s.vc.Name)
		}
	}
	newUnits := makeUnits(cfg, fresh, e.base, e.watch)
	var instances []*instance
	for _, u := range keep {
		instances = append(instances, u.members...)
	}
	instances = append(instances, fresh...)
	e.rw.Lock()
	e.cfg, e.instances, e.units = cfg, instances, append(keep, newUnits...)
	e.checks = checkIndexOf(cfg, instances)
	if e.stopping {
		e.rw.Unlock()
		return res, errors.Join(append(errs, errors.New("vrrp is stopping: the new instances did not start"))...)
	}
	e.startSockets()
	for _, u := range newUnits {
		for _, in := range u.members {
			in.listen()
		}
		e.startUnit(u, 0)
	}
	e.startTrackFiles()
	e.rw.Unlock()
	// An address that came while the new instances were made found none of them in
	// e.instances, and the watch reports it only once: look again for those still waiting.
	// After rw is released: a unit handling the check takes it.
	var waiting []*instance
	for _, in := range fresh {
		if in.waiting.Load() {
			waiting = append(waiting, in)
		}
	}
	e.postIfChecks(e.runCtx, waiting)
	return res, errors.Join(errs...)
}

// reconfigured is what applying a reload to one kept instance did.
type reconfigured struct {
	next    settings // what the new configuration makes of it
	changed bool
	errs    []error
}

// unitStays: every member keeps its identity, and the new configuration groups them the
// same way (the same sync group members, or still alone).
func unitStays(u unitView, oldCfg, cfg *config.Config, newByID map[string]*config.VRRPInstance, groupOf map[string]string) bool {
	var names []string
	for _, old := range u.members {
		vc := newByID[identity(old, oldCfg.Global)]
		if vc == nil {
			return false
		}
		names = append(names, vc.Name)
	}
	if !u.group {
		return groupOf[names[0]] == ""
	}
	g := groupOf[names[0]]
	if g == "" {
		return false
	}
	var members []string
	for _, sg := range cfg.SyncGroups {
		if sg.Name == g {
			for _, m := range sg.Members {
				members = append(members, m.Name)
			}
		}
	}
	slices.Sort(members)
	slices.Sort(names)
	return slices.Equal(members, names)
}

// release is a reload's first round for a kept instance, on its unit's goroutine: a master
// removes the routes and addresses that next no longer has.
func (e *Engine) release(in *instance, next settings) []error {
	if in.m.State() != fsm.Master {
		return nil
	}
	var errs []error
	for _, r := range in.settings.routes {
		if !slices.Contains(next.routes, r) {
			if err := in.nl.DelRoute(r); err != nil {
				errs = append(errs, fmt.Errorf("remove virtual route %s: %w", r.Dst, err))
			}
		}
	}
	for _, a := range in.settings.vips {
		if !slices.Contains(next.vips, a) {
			if err := in.nl.DelAddr(a); err != nil {
				errs = append(errs, fmt.Errorf("remove virtual address %s from %s: %w", a.Prefix, a.Dev, err))
			}
		}
	}
	return errs
}

// reconfigure is a reload's second round for a kept instance, on its unit's goroutine: vc
// applies in place. A master adds the addresses and routes the reload added and announces
// the new addresses; the others keep the new lists for their next takeover. errs are the
// first round's.
func (e *Engine) reconfigure(u *unit, now time.Time, member int, vc *config.VRRPInstance, cfg *config.Config, next settings, errs []error) reconfigured {
	in := u.members[member]
	old := in.settings
	changed := in.name != vc.Name || !reflect.DeepEqual(old, next)
	if in.m.State() == fsm.Master {
		var added []netif.Addr
		for _, a := range next.vips {
			if !slices.Contains(old.vips, a) {
				added = append(added, a)
				if err := in.nl.AddAddr(a); err != nil {
					errs = append(errs, fmt.Errorf("add virtual address %s on %s: %w", a.Prefix, a.Dev, err))
				}
			}
		}
		for _, r := range next.routes {
			if !slices.Contains(old.routes, r) {
				if err := in.nl.AddRoute(r); err != nil {
					errs = append(errs, fmt.Errorf("add virtual route %s: %w", r.Dst, err))
				}
			}
		}
		for range next.garp.MasterRepeat {
			in.announceAddrs(added)
		}
	}
	if err := in.m.Reconfigure(now, next.fsm); err != nil {
		// identity() covers VRID, version and source, so this is a bug; keep the old.
		errs = append(errs, fmt.Errorf("state machine: %w", err))
	}
	e.rw.Lock()
	if in.name != vc.Name {
		in.log = e.log.With("instance", vc.Name)
	}
	in.name, in.cfg, in.settings = vc.Name, vc, next
	e.rw.Unlock()
	in.rx.Store(next.rx(vc))
	in.trackable = trackable(vc, cfg)

	// Trackers: those still configured keep their state with the new weights; new
	// interfaces start up (the link watch reports changes, as at start), new scripts wait
	// for their state from the check process (core replays every state after a reload),
	// and new files are read by the restarted track_file watcher.
	trackers := map[string]trackerState{}
	if !vc.DontTrackPrim {
		if t, ok := in.trackers["if:"+vc.Interface]; ok {
			// As the link watch reports it for the primary interface: no weight, so that a
			// down link is a fault (a track_interface line below sets one again).
			t.Weight, t.Reverse = 0, false
			trackers["if:"+vc.Interface] = t
		}
	}
	for _, t := range vc.TrackInterfaces {
		st, ok := in.trackers["if:"+t.Name]
		if !ok {
			st = upDown(true, 0, false, nil)
		}
		st.Weight, st.Reverse = t.Weight, t.Reverse
		trackers["if:"+t.Name] = st
	}
	// Scripts and files still tracked, by the instance or by its sync group, keep their
	// state until the replay or the watcher brings the current one with the new weight:
	// dropping a failed script for a moment would raise the priority and could hand
	// mastership over and back.
	for k, st := range in.trackers {
		if (strings.HasPrefix(k, "script:") || strings.HasPrefix(k, "file:")) && in.trackable[k] {
			trackers[k] = st
		}
	}
	// A script still waiting for its first result keeps waiting, with the new weight. A
	// script the reload starts tracking does not wait (the replay brings its state):
	// keepalived 2.2.7 does not hold a running instance for a script new at a reload
	// (SCRIPT_INIT_STATE_INIT_RELOAD), and a master must not resign over a reload.
	for k, st := range pendingScripts(vc, cfg) {
		if trackers[k].pending {
			trackers[k] = st
		}
	}
	in.trackers = trackers
	for _, ev := range in.trackerEvents() {
		u.handle(now, member, ev)
	}
	if changed {
		in.log.Info("reloaded in place", "state", in.m.State().String(), "priority", in.m.EffectivePriority())
	}
	return reconfigured{next: next, changed: changed, errs: errs}
}

// trackable lists the tracker keys of vc: its interfaces (the primary one unless
// dont_track_primary), and the scripts and files it or its sync group tracks.
func trackable(vc *config.VRRPInstance, cfg *config.Config) map[string]bool {
	keys := map[string]bool{}
	if !vc.DontTrackPrim {
		keys["if:"+vc.Interface] = true
	}
	for _, t := range vc.TrackInterfaces {
		keys["if:"+t.Name] = true
	}
	scripts, files := slices.Clone(vc.TrackScripts), slices.Clone(vc.TrackFiles)
	for _, g := range cfg.SyncGroups {
		if slices.ContainsFunc(g.Members, func(m config.NameRef) bool { return m.Name == vc.Name }) {
			scripts, files = append(scripts, g.TrackScripts...), append(files, g.TrackFiles...)
			for _, t := range g.TrackInterfaces {
				keys["if:"+t.Name] = true
			}
		}
	}
	for _, r := range scripts {
		keys["script:"+r.Name] = true
	}
	for _, r := range files {
		for _, f := range cfg.TrackFiles {
			if f.Name == r.Name {
				keys["file:"+filepath.Clean(f.File)] = true
			}
		}
	}
	return keys
}

// announceAddrs sends one gratuitous ARP / unsolicited NA for each of addrs.
func (in *instance) announceAddrs(addrs []netif.Addr) {
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		var err error
		if ip.Is4() {
			err = in.nl.SendGARP(a.Dev, ip)
		} else {
			err = in.nl.SendUnsolicitedNA(a.Dev, ip)
		}
		if err != nil {
			in.log.Warn("announcement not sent", "address", ip.String(), "dev", a.Dev, "error", err)
		}
	}
}
