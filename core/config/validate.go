package config

import (
	"fmt"
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
	dup := func(kind string, names []string, poss []Pos) {
		at := map[string]Pos{}
		for i, n := range names {
			if p, ok := at[n]; ok {
				b.sink.errorf(poss[i], "%s %q is already defined at %s", kind, n, p)
				continue
			}
			at[n] = poss[i]
		}
	}
	var names []string
	var poss []Pos
	for _, f := range b.cfg.TrackFiles {
		names, poss = append(names, f.Name), append(poss, f.Pos)
	}
	dup("track_file", names, poss)
	names, poss = nil, nil
	for _, n := range b.cfg.Notifiers {
		names, poss = append(names, n.Name), append(poss, n.Pos)
	}
	dup("vrrp_notify", names, poss)
	names, poss = nil, nil
	for _, vi := range b.cfg.Instances {
		names, poss = append(names, vi.Name), append(poss, vi.Pos)
	}
	dup("vrrp_instance", names, poss)
	names, poss = nil, nil
	for _, g := range b.cfg.SyncGroups {
		names, poss = append(names, g.Name), append(poss, g.Pos)
	}
	dup("vrrp_sync_group", names, poss)
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
	trackable := map[string]bool{}
	var trackNames []string
	for _, s := range b.cfg.Scripts {
		trackable[s.Name] = true
		trackNames = append(trackNames, s.Name)
	}
	for _, c := range b.cfg.Checks {
		trackable[c.Name] = true
		trackNames = append(trackNames, c.Name)
	}
	var fileNames []string
	for _, f := range b.cfg.TrackFiles {
		fileNames = append(fileNames, f.Name)
	}
	vrids := map[vridKey]*VRRPInstance{}
	for _, vi := range b.cfg.Instances {
		b.validateInstance(vi)
		for _, r := range vi.TrackScripts {
			if !trackable[r.Name] {
				b.undefined(r.Pos, "track_script", r.Name, "vrrp_script or vrrp_check", trackNames)
			}
		}
		for _, r := range vi.TrackFiles {
			if !slices.Contains(fileNames, r.Name) {
				b.undefined(r.Pos, "track_file", r.Name, "track_file", fileNames)
			}
		}
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
			b.sink.errorf(vi.Pos, "vrrp_instance %q uses virtual_router_id %d on %s (%s), as does %q at %s", vi.Name, vi.VRID, orDefault(vi.Interface, "the default interface"), fam, prev.Name, prev.Pos).Hint =
				"each virtual router on one interface and family needs its own virtual_router_id"
			continue
		}
		vrids[k] = vi
	}
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
	var names []string
	for _, n := range b.cfg.Notifiers {
		names = append(names, n.Name)
	}
	for _, r := range refs {
		if !slices.Contains(names, r.Name) {
			b.undefined(r.Pos, "notify_action", r.Name, "vrrp_notify", names)
		}
	}
}

func (b *builder) checkInterfaces(vi *VRRPInstance) {
	exists := b.opts.InterfaceExists
	if exists == nil {
		return
	}
	warn := func(pos Pos, name string) {
		b.sink.warnf(pos, "interface %q does not exist on this host", name).Hint = "vigil waits for it to appear; check the name if this is not expected"
	}
	if vi.Interface != "" && !exists(vi.Interface) {
		warn(vi.Pos, vi.Interface)
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

func (b *builder) validateInstance(vi *VRRPInstance) {
	name := fmt.Sprintf("vrrp_instance %q", vi.Name)
	if vi.VRID == 0 {
		b.sink.errorf(vi.Pos, "%s has no virtual_router_id", name).Hint = "add: virtual_router_id N (1-255), the same on every node of this virtual router"
	}
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
		b.sink.errorf(vi.Pos, "%s has IPv6 addresses but version 2", name).Hint = "IPv6 needs VRRPv3: set version 3 (or remove version 2)"
	}
	switch vi.Version {
	case 2:
		if vi.AdvertInt < time.Second || vi.AdvertInt%time.Second != 0 {
			b.sink.errorf(vi.Pos, "%s: advert_int %s s is not valid for VRRPv2", name, seconds(vi.AdvertInt)).Hint =
				"VRRPv2 adverts are whole seconds from 1 to 255; use version 3 for sub-second intervals"
		}
	case 3:
		if vi.AdvertInt > 40950*time.Millisecond || vi.AdvertInt%(10*time.Millisecond) != 0 {
			b.sink.errorf(vi.Pos, "%s: advert_int %s s is not valid for VRRPv3", name, seconds(vi.AdvertInt)).Hint =
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
		b.sink.warnf(vi.Pos, "%s: nopreempt with state MASTER; the instance starts as BACKUP, as in keepalived", name).Hint =
			"set state BACKUP on every node when using nopreempt"
	}
	if vi.PreemptDelay > 0 && vi.NoPreempt {
		b.sink.warnf(vi.Pos, "%s: preempt_delay has no effect with nopreempt", name)
	}
	if vi.Priority == 255 && vi.InitialState != "MASTER" {
		b.sink.warnf(vi.Pos, "%s: priority 255 (address owner) with state BACKUP; it becomes MASTER at once anyway", name)
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
			b.sink.warnf(vi.Pos, "%s: with vrrp_strict, state MASTER is for the address owner (priority 255); it starts as BACKUP, as in keepalived", name)
		}
		if len(vi.UnicastPeers) > 0 {
			b.sink.errorf(vi.Pos, "%s: unicast_peer is not allowed with vrrp_strict (RFC 5798 is multicast only)", name)
		}
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
		var trackNames []string
		for _, s := range b.cfg.Scripts {
			trackNames = append(trackNames, s.Name)
		}
		for _, c := range b.cfg.Checks {
			trackNames = append(trackNames, c.Name)
		}
		for _, r := range g.TrackScripts {
			if !slices.Contains(trackNames, r.Name) {
				b.undefined(r.Pos, "track_script", r.Name, "vrrp_script or vrrp_check", trackNames)
			}
		}
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
		case strings.Contains(prog, "/"):
			b.sink.warnf(s.Pos, "script %q is a relative path; the daemon runs from \"/\", so it is looked for as \"/%s\"", prog, prog).Hint =
				"give the absolute path of the program"
		case b.cfg.Global.EnableScriptSecurity:
			b.sink.warnf(s.Pos, "script %q is not an absolute path; with enable_script_security it is looked up in PATH and must be writable by root only", prog).Hint =
				"give the absolute path of the program"
		}
	}
}
