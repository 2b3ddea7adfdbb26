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
	tracking string // the tracked interfaces, scripts and files, with weights
}

func settingsOf(vc *config.VRRPInstance, g config.Global, src netip.Addr) settings {
	var s settings
	for _, a := range vc.VIPs {
		s.advAddrs = append(s.advAddrs, a.Prefix.Addr())
		s.vips = append(s.vips, toNetifAddr(a, vc.Interface))
	}
	for _, a := range vc.ExcludedVIPs {
		s.vips = append(s.vips, toNetifAddr(a, vc.Interface))
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
	}
	s.garp = vc.Garp
	var t []string
	for _, ti := range vc.TrackInterfaces {
		t = append(t, fmt.Sprintf("if:%s/%d/%v", ti.Name, ti.Weight, ti.Reverse))
	}
	for _, r := range vc.TrackScripts {
		t = append(t, fmt.Sprintf("script:%s/%v/%d/%v", r.Name, r.HasWeight, r.Weight, r.Reverse))
	}
	for _, r := range vc.TrackFiles {
		t = append(t, fmt.Sprintf("file:%s/%v/%d/%v", r.Name, r.HasWeight, r.Weight, r.Reverse))
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
}

func (s settings) rx(vc *config.VRRPInstance) *rxParams {
	return &rxParams{expect: s.expect, popts: s.popts, unicast: len(vc.UnicastPeers) > 0, peers: vc.UnicastPeers}
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
	return fmt.Sprintf("%s v6=%v vrid=%d version=%d src=%s mcast_src=%s group=%s peers=%s",
		vc.Interface, vc.IPv6, vc.VRID, vc.Version, vc.UnicastSrcIP, vc.McastSrcIP, group, strings.Join(peers, ","))
}

// reconfigure is a reload's work for one unit, done by the unit's goroutine.
type reconfigure struct {
	fsm.Event
	apply func(u *unit, now time.Time)
	done  chan struct{}
}

// Reload applies cfg, which config.Load validated: see the comment at the top of this file.
// The instances it keeps never stop running. An error (an interface of a new instance that
// does not exist, say) leaves the instances it could not start out, and says which.
func (e *Engine) Reload(ctx context.Context, cfg *config.Config) (ReloadResult, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	select {
	case <-e.running:
	case <-ctx.Done():
		return ReloadResult{}, ctx.Err()
	}
	e.rw.RLock()
	stopping := e.stopping || e.runCtx.Err() != nil
	oldCfg, units := e.cfg, slices.Clone(e.units)
	e.rw.RUnlock()
	if stopping {
		return ReloadResult{}, errors.New("vrrp is stopping")
	}
	// Interfaces of new instances are checked before anything stops, so that a typo in a
	// new instance does not cost the old ones anything.
	oldByID := map[string]*instance{}
	for _, u := range units {
		for _, in := range u.members {
			oldByID[identity(in.cfg, oldCfg.Global)] = in
		}
	}
	newByID := map[string]*config.VRRPInstance{}
	for _, vc := range cfg.Instances {
		id := identity(vc, cfg.Global)
		newByID[id] = vc
		if oldByID[id] == nil {
			if _, err := net.InterfaceByName(vc.Interface); err != nil {
				return ReloadResult{}, fmt.Errorf("%s: vrrp_instance %s: interface %q: %w", vc.Pos, vc.Name, vc.Interface, err)
			}
		}
	}

	// A unit stays when each of its instances stays and they are grouped as before.
	groupOf := map[string]string{} // new instance name -> its new sync group
	for _, g := range cfg.SyncGroups {
		for _, m := range g.Members {
			groupOf[m.Name] = g.Name
		}
	}
	var res ReloadResult
	var keep, drop []*unit
	kept := map[*config.VRRPInstance]bool{}
	for _, u := range units {
		if unitStays(u, oldCfg, cfg, newByID, groupOf) {
			keep = append(keep, u)
			for _, in := range u.members {
				kept[newByID[identity(in.cfg, oldCfg.Global)]] = true
			}
			continue
		}
		drop = append(drop, u)
	}

	// Stop what goes first: a restarted instance's VRID must be free for its successor.
	for _, u := range drop {
		for _, in := range u.members {
			in.sg.setVRID(uint8(in.cfg.VRID), nil)
			if newByID[identity(in.cfg, oldCfg.Global)] != nil {
				res.Restarted = append(res.Restarted, in.name)
			} else {
				res.Removed = append(res.Removed, in.name)
			}
		}
		u.stop()
	}
	for _, u := range drop {
		select {
		case <-u.exited: // resigned, addresses removed
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}

	// Apply the new settings to what stays, each unit on its own goroutine.
	for _, u := range keep {
		changed := make([]bool, len(u.members))
		r := reconfigure{done: make(chan struct{}), apply: func(u *unit, now time.Time) {
			for i, in := range u.members {
				vc := newByID[identity(in.cfg, oldCfg.Global)]
				changed[i] = e.reconfigure(u, now, i, vc, cfg)
			}
		}}
		select {
		case u.inbox <- unitEvent{ev: r}:
		case <-u.exited:
			continue
		case <-ctx.Done():
			return res, ctx.Err()
		}
		select {
		case <-r.done:
		case <-u.exited:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		for i, in := range u.members {
			if changed[i] {
				res.Changed = append(res.Changed, in.name)
			} else {
				res.Kept = append(res.Kept, in.name)
			}
		}
	}

	// Start what is new.
	var fresh []*instance
	var errs []error
	e.rw.Lock()
	defer e.rw.Unlock()
	if e.stopping {
		return res, errors.New("vrrp is stopping")
	}
	for _, vc := range cfg.Instances {
		if kept[vc] {
			continue
		}
		in, err := e.newInstance(ctx, vc, cfg.Global)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: %w", vc.Pos, vc.Name, err))
			continue
		}
		fresh = append(fresh, in)
		if !slices.Contains(res.Restarted, vc.Name) {
			res.Added = append(res.Added, vc.Name)
		}
	}
	newUnits := makeUnits(cfg, fresh, e.base, e.watch)
	var instances []*instance
	for _, u := range keep {
		instances = append(instances, u.members...)
	}
	instances = append(instances, fresh...)
	e.cfg, e.instances, e.units = cfg, instances, append(keep, newUnits...)
	for _, sg := range e.sockets {
		e.startSocket(sg)
	}
	for _, u := range newUnits {
		for _, in := range u.members {
			in.listen()
		}
		e.startUnit(u, 0)
	}
	e.startTrackFiles()
	return res, errors.Join(errs...)
}

// unitStays: every member keeps its identity, and the new configuration groups them the
// same way (the same sync group members, or still alone).
func unitStays(u *unit, oldCfg, cfg *config.Config, newByID map[string]*config.VRRPInstance, groupOf map[string]string) bool {
	var names []string
	for _, in := range u.members {
		vc := newByID[identity(in.cfg, oldCfg.Global)]
		if vc == nil {
			return false
		}
		names = append(names, vc.Name)
	}
	if u.group == nil {
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

// reconfigure applies vc to the member of u in place, from u's goroutine, and reports
// whether anything changed. A master adds the addresses and routes the reload added (and
// announces the new addresses) and removes those it removed; the others just keep the new
// lists for their next takeover.
func (e *Engine) reconfigure(u *unit, now time.Time, member int, vc *config.VRRPInstance, cfg *config.Config) bool {
	in := u.members[member]
	old := in.settings
	next := settingsOf(vc, cfg.Global, in.src)
	changed := in.name != vc.Name || !reflect.DeepEqual(old, next)
	if in.m.State() == fsm.Master {
		for _, r := range old.routes {
			if !slices.Contains(next.routes, r) {
				if err := in.nl.DelRoute(r); err != nil {
					in.log.Error("cannot remove virtual route", "route", r.Dst.String(), "error", err)
				}
			}
		}
		for _, a := range old.vips {
			if !slices.Contains(next.vips, a) {
				if err := in.nl.DelAddr(a); err != nil {
					in.log.Error("cannot remove virtual address", "address", a.Prefix.String(), "dev", a.Dev, "error", err)
				}
			}
		}
		var added []netif.Addr
		for _, a := range next.vips {
			if !slices.Contains(old.vips, a) {
				added = append(added, a)
				if err := in.nl.AddAddr(a); err != nil {
					in.log.Error("cannot add virtual address", "address", a.Prefix.String(), "dev", a.Dev, "error", err)
				}
			}
		}
		for _, r := range next.routes {
			if !slices.Contains(old.routes, r) {
				if err := in.nl.AddRoute(r); err != nil {
					in.log.Error("cannot add virtual route", "route", r.Dst.String(), "error", err)
				}
			}
		}
		for range next.garp.MasterRepeat {
			in.announceAddrs(added)
		}
	}
	if err := in.m.Reconfigure(now, next.fsm); err != nil {
		// identity() covers VRID, version and source, so this is a bug; keep the old.
		in.log.Error("reload not applied to the state machine", "error", err)
	}
	e.rw.Lock()
	if in.name != vc.Name {
		in.log = e.log.With("instance", vc.Name)
	}
	in.name, in.cfg, in.settings = vc.Name, vc, next
	in.vips, in.advAddrs, in.routes = next.vips, next.advAddrs, next.routes
	in.auth, in.authType, in.garp = next.auth, next.authType, next.garp
	e.rw.Unlock()
	in.rx.Store(next.rx(vc))

	// Trackers: those still configured keep their state with the new weights; new
	// interfaces start up (the link watch reports changes, as at start), new scripts wait
	// for their state from the check process (core replays every state after a reload),
	// and new files are read by the restarted track_file watcher.
	trackers := map[string]trackerState{}
	if !vc.DontTrackPrim {
		if t, ok := in.trackers["if:"+vc.Interface]; ok {
			// As the link watch reports it for the primary interface: no weight, so that a
			// down link is a fault (a track_interface line below sets one again).
			t.weight, t.reverse = 0, false
			trackers["if:"+vc.Interface] = t
		}
	}
	for _, t := range vc.TrackInterfaces {
		st, ok := in.trackers["if:"+t.Name]
		if !ok {
			st = trackerState{up: true}
		}
		st.weight, st.reverse = t.Weight, t.Reverse
		trackers["if:"+t.Name] = st
	}
	// Scripts and files still tracked, by the instance or by its sync group, keep their
	// state until the replay or the watcher brings the current one with the new weight:
	// dropping a failed script for a moment would raise the priority and could hand
	// mastership over and back.
	var scripts, files []config.TrackRef
	scripts, files = append(scripts, vc.TrackScripts...), append(files, vc.TrackFiles...)
	for _, g := range cfg.SyncGroups {
		if slices.ContainsFunc(g.Members, func(m config.NameRef) bool { return m.Name == vc.Name }) {
			scripts, files = append(scripts, g.TrackScripts...), append(files, g.TrackFiles...)
		}
	}
	for _, r := range scripts {
		if st, ok := in.trackers["script:"+r.Name]; ok {
			trackers["script:"+r.Name] = st
		}
	}
	for _, r := range files {
		for _, f := range cfg.TrackFiles {
			if f.Name == r.Name {
				k := "file:" + filepath.Clean(f.File)
				if st, ok := in.trackers[k]; ok {
					trackers[k] = st
				}
			}
		}
	}
	in.trackers = trackers
	for _, ev := range in.trackerEvents() {
		u.handle(now, member, ev)
	}
	if changed {
		in.log.Info("reloaded in place", "state", in.m.State().String(), "priority", in.m.EffectivePriority())
	}
	return changed
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
