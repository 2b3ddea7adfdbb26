package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// validate checks what no single statement shows: references between blocks, clashes and
// combinations keepalived rejects or silently changes.
func (b *builder) validate() {
	b.validateNames()
	b.validateInstances()
	b.validateSyncGroups()
	b.validateGlobal()
	b.validateBGP()
	b.validateScripts()
	b.validateLVS()
}

type definedAt struct {
	kind string
	pos  Pos
}

// validateNames reports two definitions with one name: a track_script reference must not be
// ambiguous between a vrrp_script and a vrrp_check.
func (b *builder) validateNames() {
	seen := map[string]definedAt{}
	check := func(kind, name string, pos Pos) {
		if prev, ok := seen[name]; ok {
			b.sink.errorf(pos, "%s %q is already defined as %s at %s", kind, name, prev.kind, prev.pos).Hint = "give each script and check its own name"
			return
		}
		seen[name] = definedAt{kind, pos}
	}
	for _, s := range b.cfg.Scripts {
		check("vrrp_script", s.Name, s.Pos)
	}
	for _, c := range b.cfg.Checks {
		check("vrrp_check", c.Name, c.Pos)
	}
	// Within one kind, a second definition of a name is an error at the second place.
	unique := func(kind string) func(name string, pos Pos) {
		at := map[string]Pos{}
		return func(name string, pos Pos) {
			if p, ok := at[name]; ok {
				b.sink.errorf(pos, "%s %q is already defined at %s", kind, name, p)
				return
			}
			at[name] = pos
		}
	}
	trackFile := unique("track_file")
	for _, f := range b.cfg.TrackFiles {
		trackFile(f.Name, f.Pos)
	}
	notifier := unique("vrrp_notify")
	for _, n := range b.cfg.Notifiers {
		notifier(n.Name, n.Pos)
	}
	instance := unique("vrrp_instance")
	for _, vi := range b.cfg.Instances {
		instance(vi.Name, vi.Pos)
	}
	group := unique("vrrp_sync_group")
	for _, g := range b.cfg.SyncGroups {
		group(g.Name, g.Pos)
	}
}

// vridKey identifies the VRRP "wire" of an instance: two instances with the same key would
// answer each other's adverts.
type vridKey struct {
	iface string
	ipv6  bool
	vrid  int
	uni   bool
}

func (b *builder) validateInstances() {
	b.notifierNames = map[string]bool{}
	for _, n := range b.cfg.Notifiers {
		b.notifierNames[n.Name] = true
	}
	vrids := map[vridKey]*VRRPInstance{}
	for _, vi := range b.cfg.Instances {
		b.validateInstance(vi)
		b.checkTrackRefs(vi.TrackScripts, vi.TrackFiles)
		b.checkNotifyActions(vi.NotifyActions)
		b.checkInterfaces(vi)
		if vi.VRID == 0 {
			continue
		}
		k := vridKey{iface: vi.Interface, ipv6: vi.IPv6, vrid: vi.VRID, uni: len(vi.UnicastPeers) > 0}
		if prev, ok := vrids[k]; ok {
			fam := "IPv4"
			if vi.IPv6 {
				fam = "IPv6"
			}
			b.sink.errorf(vi.at("virtual_router_id"), "vrrp_instance %q uses virtual_router_id %d on %s (%s), as does %q at %s", vi.Name, vi.VRID, orDefault(vi.Interface, "the default interface"), fam, prev.Name, prev.Pos).Hint =
				"each virtual router on one interface and family needs its own virtual_router_id"
			continue
		}
		vrids[k] = vi
	}
}

// checkTrackRefs reports track_script and track_file entries that name nothing defined.
func (b *builder) checkTrackRefs(scripts, files []TrackRef) {
	for _, r := range scripts {
		if !b.trackable(r.Name) {
			b.undefined(r.Pos, "track_script", r.Name, "vrrp_script or vrrp_check", b.trackableNames())
		}
	}
	if len(files) == 0 {
		return
	}
	if b.fileNames == nil {
		b.fileNames = map[string]bool{}
		for _, f := range b.cfg.TrackFiles {
			b.fileNames[f.Name] = true
		}
	}
	for _, r := range files {
		if !b.fileNames[r.Name] {
			b.undefined(r.Pos, "track_file", r.Name, "track_file", slices.Collect(maps.Keys(b.fileNames)))
		}
	}
}

// trackable reports whether track_script may name this: a vrrp_script or a vrrp_check.
func (b *builder) trackable(name string) bool {
	if b.trackables == nil {
		b.trackables = map[string]bool{}
		for _, n := range b.trackableNames() {
			b.trackables[n] = true
		}
	}
	return b.trackables[name]
}

func (b *builder) trackableNames() []string {
	var names []string
	for _, s := range b.cfg.Scripts {
		names = append(names, s.Name)
	}
	for _, c := range b.cfg.Checks {
		names = append(names, c.Name)
	}
	return names
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (b *builder) undefined(pos Pos, what, name, kind string, known []string) {
	d := b.sink.errorf(pos, "%s %q is not defined", what, name)
	if s := suggest(name, known); s != "" {
		d.Hint = fmt.Sprintf("did you mean %q?", s)
	} else {
		d.Hint = fmt.Sprintf("define it in a %s block", kind)
	}
}

func (b *builder) checkNotifyActions(refs []NameRef) {
	for _, r := range refs {
		if !b.notifierNames[r.Name] {
			var names []string
			for _, n := range b.cfg.Notifiers {
				names = append(names, n.Name)
			}
			b.undefined(r.Pos, "notify_action", r.Name, "vrrp_notify", names)
		}
	}
}

func (b *builder) checkInterfaces(vi *VRRPInstance) {
	if b.opts.InterfaceExists == nil {
		return
	}
	if b.ifaceSeen == nil {
		b.ifaceSeen = map[string]bool{}
	}
	// Looking an interface up asks the kernel; thousands of instances share a few names.
	exists := func(name string) bool {
		v, ok := b.ifaceSeen[name]
		if !ok {
			v = b.opts.InterfaceExists(name)
			b.ifaceSeen[name] = v
		}
		return v
	}
	warn := func(pos Pos, name string) {
		b.sink.warnf(pos, "interface %q does not exist on this host", name).Hint = "vigil waits for it to appear; check the name if this is not expected"
	}
	if vi.Interface != "" && !exists(vi.Interface) {
		// The instance runs in FAULT until it appears, the others as usual (core/vrrp).
		b.sink.warnf(vi.at("interface"), "interface %q does not exist on this host", vi.Interface).Hint =
			"the instance waits in FAULT until it appears; check the name if this is not expected"
	}
	for _, t := range vi.TrackInterfaces {
		if !exists(t.Name) {
			warn(t.Pos, t.Name)
		}
	}
	for _, a := range append(slices.Clone(vi.VIPs), vi.ExcludedVIPs...) {
		if a.Dev != "" && !exists(a.Dev) {
			warn(a.Pos, a.Dev)
		}
	}
}

// at returns where keyword was written in the instance, or the instance itself.
func (vi *VRRPInstance) at(keyword string) Pos {
	if p, ok := vi.Places[keyword]; ok {
		return p
	}
	return vi.Pos
}

func (b *builder) validateInstance(vi *VRRPInstance) {
	name := fmt.Sprintf("vrrp_instance %q", vi.Name)
	if vi.Interface == "" && len(vi.UnicastPeers) == 0 {
		b.sink.errorf(vi.Pos, "%s has no interface", name).Hint = "add: interface eth0 (the interface the VIP lives on)"
	}
	// Address families must agree: VRRP runs one family per instance.
	var v4, v6 *Address
	for _, a := range vi.VIPs {
		if a.Prefix.Addr().Is6() {
			if v6 == nil {
				v6 = a
			}
		} else if v4 == nil {
			v4 = a
		}
	}
	if v4 != nil && v6 != nil {
		later := v6
		if v6.Pos.Line < v4.Pos.Line {
			later = v4
		}
		b.sink.errorf(later.Pos, "%s mixes IPv4 and IPv6 virtual addresses", name).Hint =
			"VRRP carries one family per instance: move the other family to virtual_ipaddress_excluded or to its own instance"
	}
	if vi.IPv6 && vi.Version == 2 {
		b.sink.errorf(vi.at("version"), "%s has IPv6 addresses but version 2", name).Hint = "IPv6 needs VRRPv3: set version 3 (or remove version 2)"
	}
	switch vi.Version {
	case 2:
		if vi.AdvertInt < time.Second || vi.AdvertInt%time.Second != 0 {
			b.sink.errorf(vi.at("advert_int"), "%s: advert_int %s s is not valid for VRRPv2", name, seconds(vi.AdvertInt)).Hint =
				"VRRPv2 adverts are whole seconds from 1 to 255; use version 3 for sub-second intervals"
		}
	case 3:
		if vi.AdvertInt > 40950*time.Millisecond || vi.AdvertInt%(10*time.Millisecond) != 0 {
			b.sink.errorf(vi.at("advert_int"), "%s: advert_int %s s is not valid for VRRPv3", name, seconds(vi.AdvertInt)).Hint =
				"VRRPv3 adverts are 0.01 to 40.95 s in steps of 0.01 s"
		}
		if vi.Auth != nil {
			b.sink.warnf(vi.Auth.Pos, "%s: authentication is not part of VRRPv3 and is ignored", name)
		}
	}
	if vi.Auth != nil && vi.Auth.Type == "AH" {
		d := b.sink.warnf(vi.Auth.Pos, "auth_type AH is not supported by vigil; adverts are sent without authentication")
		d.Unsupported = true
	}
	if vi.Auth != nil && vi.Auth.Type == "PASS" && vi.Auth.Pass == "" {
		b.sink.errorf(vi.Auth.Pos, "%s: auth_type PASS without auth_pass", name).Hint = "add: auth_pass SECRET (up to 8 characters, the same on every node)"
	}
	if vi.NoPreempt && vi.InitialState == "MASTER" {
		b.sink.warnf(vi.at("nopreempt"), "%s: nopreempt with state MASTER; the instance starts as BACKUP, as in keepalived", name).Hint =
			"set state BACKUP on every node when using nopreempt"
	}
	if vi.PreemptDelay > 0 && vi.NoPreempt {
		b.sink.warnf(vi.at("preempt_delay"), "%s: preempt_delay has no effect with nopreempt", name)
	}
	if _, written := vi.Places["state"]; written && vi.Priority == 255 && vi.InitialState != "MASTER" {
		// keepalived 2.2.7 on the wire: an owner written "state BACKUP" enters BACKUP and
		// takes over only when its Master_Down_Timer runs out (about 3 advert intervals);
		// vigil's state machine does the same (fsm startup). Without a state line both take
		// over at once (the engine starts it from INIT), so there is nothing to warn about.
		b.sink.warnf(vi.at("priority"), "%s: priority 255 (address owner) with state BACKUP; it starts as BACKUP and takes over after Master_Down_Interval, as in keepalived", name).Hint =
			"set state MASTER for the RFC's immediate takeover by the address owner"
	}
	if vi.UnicastSrcIP.IsValid() {
		for _, p := range vi.UnicastPeers {
			if p.Addr.Is6() != vi.UnicastSrcIP.Is6() {
				b.sink.errorf(p.Pos, "unicast_peer %s is not of the same family as unicast_src_ip %s", p.Addr, vi.UnicastSrcIP)
			}
		}
	}
	for _, p := range vi.UnicastPeers {
		if p.MinTTL > p.MaxTTL {
			b.sink.errorf(p.Pos, "unicast_peer %s: min_ttl %d is above max_ttl %d", p.Addr, p.MinTTL, p.MaxTTL)
		}
	}
	if b.cfg.Global.VRRPStrict || vi.Strict {
		if vi.Auth != nil {
			b.sink.warnf(vi.Auth.Pos, "%s: authentication is not allowed with vrrp_strict (RFC 5798) and is ignored, as by keepalived", name).Hint =
				"remove the authentication block, or vrrp_strict"
			vi.Auth = nil
		}
		if vi.InitialState == "MASTER" && vi.Priority != 255 {
			b.sink.warnf(vi.at("state"), "%s: with vrrp_strict, state MASTER is for the address owner (priority 255); it starts as BACKUP, as in keepalived", name)
		}
		if len(vi.UnicastPeers) > 0 {
			b.sink.errorf(vi.at("unicast_peer"), "%s: unicast_peer is not allowed with vrrp_strict (RFC 5798 is multicast only)", name)
		}
		// RFC 5798 has a master discard lower priority adverts: keepalived's strict mode sends
		// no gratuitous ARPs for them.
		for _, kw := range []string{"garp_lower_prio_repeat", "garp_lower_prio_delay"} {
			if _, set := vi.Places[kw]; set {
				b.sink.warnf(vi.at(kw), "%s: %s is not allowed with vrrp_strict and is ignored, as by keepalived", name, kw)
			}
		}
		vi.Garp.LowerPrioRepeat, vi.Garp.LowerPrioDelay = 0, 0
	}
	for _, r := range vi.TrackInterfaces {
		if r.Name == vi.Interface && !r.HasWeight {
			b.sink.warnf(r.Pos, "%s tracks its own interface %q; it is tracked already", name, r.Name)
		}
	}
}

func (b *builder) validateSyncGroups() {
	byName := map[string]*VRRPInstance{}
	var names []string
	for _, vi := range b.cfg.Instances {
		byName[vi.Name] = vi
		names = append(names, vi.Name)
	}
	member := map[string]*SyncGroup{}
	for _, g := range b.cfg.SyncGroups {
		if len(g.Members) == 0 {
			b.sink.errorf(g.Pos, "vrrp_sync_group %q has no group { } of instances", g.Name).Hint = "add: group { VI_1 VI_2 }"
		} else if len(g.Members) == 1 {
			b.sink.warnf(g.Pos, "vrrp_sync_group %q has only one instance; a sync group needs two to have an effect", g.Name)
		}
		for _, m := range g.Members {
			if byName[m.Name] == nil {
				b.undefined(m.Pos, "sync group member", m.Name, "vrrp_instance", names)
				continue
			}
			if prev, ok := member[m.Name]; ok && prev != g {
				b.sink.errorf(m.Pos, "vrrp_instance %q is already in vrrp_sync_group %q", m.Name, prev.Name).Hint = "an instance can belong to one sync group only"
				continue
			}
			member[m.Name] = g
		}
		b.checkNotifyActions(g.NotifyActions)
		b.checkTrackRefs(g.TrackScripts, g.TrackFiles)
	}
}

func (b *builder) validateGlobal() {
	g := b.cfg.Global
	if b.smtpAlert.File == "" {
		return
	}
	if g.SMTPServer == "" {
		b.sink.warnf(b.smtpAlert, "smtp_alert is on but global_defs has no smtp_server; no mail will be sent").Hint = "add smtp_server to global_defs"
	}
	if len(g.NotificationEmail) == 0 {
		b.sink.warnf(b.smtpAlert, "smtp_alert is on but global_defs has no notification_email; no mail will be sent").Hint = "add notification_email { ops@example.com } to global_defs"
	}
}

func (b *builder) mainFile() string {
	if len(b.cfg.Files) > 0 {
		return b.cfg.Files[0]
	}
	return ""
}

// validateScripts checks how scripts are named. A relative path with a directory in it is
// resolved against the daemon's working directory, "/", which is never what was meant; a bare
// name goes through PATH, which enable_script_security asks operators to avoid.
func (b *builder) validateScripts() {
	for _, s := range b.scripts {
		prog := s.Argv[0]
		switch {
		case strings.HasPrefix(prog, "/"):
		case strings.Contains(prog, "/") && !strings.ContainsAny(prog[:1], "<>|&;($`"):
			// Commands starting with a shell redirection ("</dev/tcp/...") are shell code.
			b.sink.warnf(s.Pos, "script %q is a relative path; the daemon runs from \"/\", so it is looked for as \"/%s\"", prog, prog).Hint =
				"give the absolute path of the program"
		case b.cfg.Global.EnableScriptSecurity:
			b.sink.warnf(s.Pos, "script %q is not an absolute path; with enable_script_security it is looked up in PATH and must be writable by root only", prog).Hint =
				"give the absolute path of the program"
		}
	}
}
