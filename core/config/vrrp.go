package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Keepalived's defaults, kept in one place so that -d and the daemon agree.
const (
	defaultPriority       = 100
	defaultAdvertInt      = time.Second
	defaultGarpDelay      = 5 * time.Second
	defaultGarpRepeat     = 5
	defaultSMTPTimeout    = 30 * time.Second
	defaultScriptInterval = time.Second
	defaultNotifyTimeout  = 10 * time.Second
)

// top dispatches the top-level statements.
func (b *builder) top(nodes []*Node) {
	b.cfg.Global = Global{
		SMTPPort:           25,
		SMTPConnectTimeout: defaultSMTPTimeout,
		VRRPVersion:        2,
		VRRPMcastGroup4:    netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:    netip.MustParseAddr("ff02::12"),
		// The lower priority settings default to the master ones: unset until the end.
		Garp:           Garp{MasterDelay: defaultGarpDelay, MasterRepeat: defaultGarpRepeat, MasterRefreshRepeat: 1, LowerPrioDelay: -1, LowerPrioRepeat: -1},
		PluginDir:      "/usr/lib/vigil/plugins",
		VRRPProcess:    Process{RLimitRTTime: defaultRLimitRTTime},
		CheckerProcess: Process{RLimitRTTime: defaultRLimitRTTime},
	}
	named := func(f func(n *Node)) kw { return kw{min: 1, max: 1, block: needBlock, fn: f} }
	// keepalived applies global_defs before anything else wherever it stands in the file, so
	// instances above it still inherit its settings.
	var globals, rest []*Node
	for _, n := range nodes {
		if n.Name == "global_defs" {
			globals = append(globals, n)
		} else {
			rest = append(rest, n)
		}
	}
	nodes = append(globals, rest...)
	b.walk("", nodes, keywords{
		"global_defs":          {block: needBlock, fn: func(n *Node) { b.globalDefs(n) }},
		"vrrp_script":          named(b.vrrpScript),
		"track_file":           named(b.trackFile),
		"vrrp_track_file":      named(b.trackFile),
		"vrrp_check":           named(b.pluginCheck),
		"vrrp_notify":          named(b.notifyPlugin),
		"vrrp_instance":        named(b.vrrpInstance),
		"vrrp_sync_group":      named(b.syncGroup),
		"static_ipaddress":     {block: needBlock, fn: func(n *Node) { b.cfg.StaticAddrs = append(b.cfg.StaticAddrs, b.addresses(n)...) }},
		"static_routes":        {block: needBlock, fn: func(n *Node) { b.cfg.StaticRts = append(b.cfg.StaticRts, b.routes(n)...) }},
		"virtual_server_group": named(b.virtualServerGroup),
		"virtual_server":       {min: 1, max: 2, block: needBlock, fn: b.virtualServer},
	})
	b.cfg.Global.Garp = b.cfg.Global.Garp.resolved()
	b.finishBGP()
}

// resolved gives the lower priority settings that global_defs left unset the values of
// vrrp_garp_master_delay and vrrp_garp_master_repeat, as keepalived does (an instance's
// garp_master_* do not count: its garp_lower_prio_* fall back to the global ones).
func (g Garp) resolved() Garp {
	if g.LowerPrioDelay < 0 {
		g.LowerPrioDelay = g.MasterDelay
	}
	if g.LowerPrioRepeat < 0 {
		g.LowerPrioRepeat = g.MasterRepeat
	}
	return g
}

func (b *builder) globalDefs(n *Node) {
	g := &b.cfg.Global
	garp := b.garpKeywords(&g.Garp, "vrrp_")
	ks := keywords{
		"router_id":               strKw(&g.RouterID),
		"notification_email_from": strKw(&g.NotificationEmailFrom),
		"notification_email": {block: needBlock, fn: func(n *Node) {
			for _, l := range n.Block {
				if l.HasBlock || len(l.Args) > 0 {
					b.sink.errorf(l.Pos, "notification_email takes one address per line").Hint = "put each address on its own line"
					continue
				}
				g.NotificationEmail = append(g.NotificationEmail, l.Name)
			}
		}},
		"smtp_server": {min: 1, max: 2, fn: func(n *Node) {
			g.SMTPServer = n.Args[0].Text
			if len(n.Args) == 2 {
				if p, ok := b.port(n.Args[1]); ok {
					g.SMTPPort = p
				}
			}
		}},
		"smtp_helo_name":               strKw(&g.SMTPHeloName),
		"smtp_connect_timeout":         b.timerKw(&g.SMTPConnectTimeout, time.Second, 3600*time.Second),
		"smtp_alert":                   b.optFlagKw(&g.SMTPAlert),
		"smtp_alert_vrrp":              b.optFlagKw(&g.SMTPAlertVRRP),
		"smtp_alert_checker":           b.optFlagKw(&g.SMTPAlertChecker),
		"no_email_faults":              setKw(&g.NoEmailFaults),
		"script_user":                  {min: 1, max: 2, fn: func(n *Node) { g.ScriptUser, g.ScriptGroup = n.Arg(0), n.Arg(1) }},
		"enable_script_security":       setKw(&g.EnableScriptSecurity),
		"vrrp_version":                 b.intKw(&g.VRRPVersion, 2, 3),
		"vrrp_mcast_group4":            b.mcastKw(&g.VRRPMcastGroup4, false),
		"vrrp_mcast_group6":            b.mcastKw(&g.VRRPMcastGroup6, true),
		"vrrp_strict":                  setKw(&g.VRRPStrict),
		"vrrp_startup_delay":           b.timerKw(&g.VRRPStartupDelay, 0, 3600*time.Second),
		"vrrp_skip_check_adv_addr":     b.flagKw(&g.VRRPSkipCheckAdvAddr),
		"vrrp_check_unicast_src":       setKw(&g.VRRPCheckUnicastSrc),
		"vrrp_lower_prio_no_advert":    b.flagKw(&g.VRRPLowerPrioNoAdvert),
		"vrrp_higher_prio_send_advert": b.flagKw(&g.VRRPHigherPrioSendAdvert),
		"v3_checksum_as_v2":            setKw(&g.V3ChecksumAsV2),
		"default_interface":            strKw(&g.DefaultInterface),
		"notify_fifo":                  b.fifoKw(&g.NotifyFIFO),
		"vrrp_notify_fifo":             b.fifoKw(&g.VRRPNotifyFIFO),
		"lvs_notify_fifo":              b.fifoKw(&g.LVSNotifyFIFO),
		"notify_fifo_script":           b.fifoScriptKw(&g.NotifyFIFO),
		"vrrp_notify_fifo_script":      b.fifoScriptKw(&g.VRRPNotifyFIFO),
		"lvs_notify_fifo_script":       b.fifoScriptKw(&g.LVSNotifyFIFO),
		"plugin_dir":                   strKw(&g.PluginDir),
		"bgp":                          {block: needBlock, fn: b.bgpBlock},
		"plugin_sha256":                {min: 2, max: 2, fn: b.pluginSHA256},
		"metrics_listen": {min: 1, max: 1, fn: func(n *Node) {
			if _, port, err := net.SplitHostPort(n.Args[0].Text); err != nil || port == "" {
				b.sink.errorf(n.Args[0].Pos, "metrics_listen %q is not HOST:PORT", n.Args[0].Text).Hint =
					"write an address and a port, e.g. 127.0.0.1:9650 or [::1]:9650 (remove the line to turn metrics off)"
				return
			}
			g.MetricsListen = n.Args[0].Text
		}},
	}
	for k, v := range garp {
		ks[k] = v
	}
	maps.Copy(ks, b.processKeywords(&g.VRRPProcess, "vrrp"))
	maps.Copy(ks, b.processKeywords(&g.CheckerProcess, "checker"))
	maps.Copy(ks, b.lvsGlobalKeywords(g))
	b.walk("global_defs", n.Block, ks)
}

// defaultRLimitRTTime is keepalived's RT_RLIMIT_DEFAULT: the microseconds a real-time
// thread may run without blocking, when PREFIX_rt_priority is set without a limit.
const defaultRLimitRTTime = 10000

// processKeywords are the scheduling keywords of the vrrp or the checker process, with
// keepalived 2.2.7's ranges. keepalived's -t fails on a value out of range too, but at run
// time it clamps a real-time priority into 1..99 and ignores a bad nice value; vigil runs no
// file that -t refuses.
func (b *builder) processKeywords(p *Process, prefix string) keywords {
	place := func(n *Node) {
		if p.Places == nil {
			p.Places = map[string]Pos{}
		}
		p.Places[n.Name] = n.Pos
	}
	rlimit := kw{min: 1, max: 1, fn: func(n *Node) {
		place(n)
		v, err := strconv.ParseUint(n.Args[0].Text, 10, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			b.sink.errorf(n.Args[0].Pos, "%q is not a whole number", n.Args[0].Text).Hint = "give the microseconds, from 1 to 4294967295"
			return
		case err != nil || v < 1 || v > math.MaxUint32:
			b.sink.errorf(n.Args[0].Pos, "%s is out of range: use 1 to 4294967295 microseconds", n.Args[0].Text)
			return
		}
		// keepalived makes 1 into 2: the warning comes at half the limit, which must not be 0.
		p.RLimitRTTime = max(int(v), 2)
		if strings.HasSuffix(n.Name, "_rtime") {
			b.sink.warnf(n.Pos, "%q is a deprecated spelling", n.Name).Hint = fmt.Sprintf("write %s_rlimit_rttime", prefix)
		}
	}}
	return keywords{
		prefix + "_priority": {min: 1, max: 1, fn: func(n *Node) {
			place(n)
			if v, ok := b.int(n.Args[0], -20, 19); ok {
				p.Nice = v
			}
		}},
		prefix + "_rt_priority": {min: 1, max: 1, fn: func(n *Node) {
			place(n)
			if v, ok := b.int(n.Args[0], 1, 99); ok {
				p.RTPriority = v
			}
		}},
		prefix + "_rlimit_rttime": rlimit,
		prefix + "_rlimit_rtime":  rlimit,
		// keepalived ignores any argument: "vrrp_no_swap no" locks memory all the same.
		prefix + "_no_swap": {max: -1, fn: func(n *Node) {
			place(n)
			p.NoSwap = true
			if len(n.Args) > 0 {
				b.sink.warnf(n.Args[0].Pos, "%q takes no argument; %q is ignored and memory is locked", n.Name, n.Args[0].Text).Hint =
					"write " + n.Name + " alone, or remove the line to leave memory unlocked"
			}
		}},
	}
}

// pluginExecutable is the file name of a plugin in plugin_dir.
var pluginExecutable = regexp.MustCompile(`^vigil-(check|notify)-[a-z0-9][a-z0-9_.-]*$`)

// pluginSHA256 reads "plugin_sha256 NAME HEX". NAME is the executable's file name, as
// sha256sum prints it beside the checksum, so that pinning is copying one line of its output.
func (b *builder) pluginSHA256(n *Node) {
	g := &b.cfg.Global
	name, sum := n.Args[0].Text, strings.ToLower(n.Args[1].Text)
	if !pluginExecutable.MatchString(name) {
		b.sink.errorf(n.Args[0].Pos, "plugin_sha256: %q is not the file name of a plugin", name).Hint =
			"write the executable's name as it is in plugin_dir, e.g. vigil-check-mysql"
		return
	}
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		b.sink.errorf(n.Args[1].Pos, "plugin_sha256 %s: %q is not a SHA-256 checksum (64 hex digits)", name, n.Args[1].Text).Hint =
			"run sha256sum on " + name + " in plugin_dir: it prints the 64 digits"
		return
	}
	if g.PluginSHA256 == nil {
		g.PluginSHA256 = map[string]string{}
	}
	if old, dup := g.PluginSHA256[name]; dup && old != sum {
		b.sink.errorf(n.Pos, "plugin_sha256 %s is given twice with different checksums", name).Hint = "keep the line with the checksum of the installed build"
		return
	}
	g.PluginSHA256[name] = sum
}

// garpKeywords are the gratuitous ARP settings, spelt with a "vrrp_" prefix in global_defs
// and without it in an instance.
func (b *builder) garpKeywords(g *Garp, prefix string) keywords {
	return keywords{
		prefix + "garp_master_delay":          b.timerKw(&g.MasterDelay, 0, 255*time.Second),
		prefix + "garp_master_repeat":         b.intKw(&g.MasterRepeat, 1, 255),
		prefix + "garp_master_refresh":        b.timerKw(&g.MasterRefresh, 0, 86400*time.Second),
		prefix + "garp_master_refresh_repeat": b.intKw(&g.MasterRefreshRepeat, 1, 255),
		prefix + "garp_lower_prio_delay":      b.timerKw(&g.LowerPrioDelay, 0, 255*time.Second),
		prefix + "garp_lower_prio_repeat":     b.intKw(&g.LowerPrioRepeat, 0, 255), // 0: off
		prefix + "garp_interval":              b.timerKw(&g.Interval, 0, 1000*time.Second),
		prefix + "gna_interval":               b.timerKw(&g.GNAInterval, 0, 1000*time.Second),
	}
}

func (b *builder) mcastKw(p *netip.Addr, v6 bool) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		a, ok := b.addr(n.Args[0])
		if !ok {
			return
		}
		if !a.IsMulticast() || a.Is6() != v6 {
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			b.sink.errorf(n.Args[0].Pos, "%s is not an %s multicast address", a, fam)
			return
		}
		*p = a
	}}
}

func (b *builder) fifoKw(p **FIFO) kw {
	return kw{min: 1, max: -1, fn: func(n *Node) {
		f := b.ensureFIFO(p, n.Pos)
		f.Path = n.Args[0].Text
		// "notify_fifo PATH [SCRIPT [USER [GROUP]]]": the script part follows the script rules.
		words, err := splitLine(n.Rest)
		if err != nil {
			b.sink.errorf(n.Args[0].Pos, "%v", err)
			return
		}
		if len(words) > 1 {
			f.Script = b.scriptWords(n, words[1:])
		}
	}}
}

func (b *builder) fifoScriptKw(p **FIFO) kw {
	return kw{min: 1, max: -1, fn: func(n *Node) {
		f := b.ensureFIFO(p, n.Pos)
		f.Script = b.script(n)
	}}
}

func (b *builder) ensureFIFO(p **FIFO, pos Pos) *FIFO {
	if *p == nil {
		*p = &FIFO{Pos: pos}
	}
	return *p
}

func (b *builder) vrrpScript(n *Node) {
	s := &VRRPScript{Name: n.Arg(0), Pos: n.Pos, Interval: defaultScriptInterval, Rise: 1, Fall: 1}
	b.walk("vrrp_script", n.Block, keywords{
		"script":    {min: 1, max: -1, fn: func(n *Node) { s.Script = b.script(n) }},
		"interval":  b.timerKw(&s.Interval, 10*time.Millisecond, 86400*time.Second),
		"timeout":   b.timerKw(&s.Timeout, 10*time.Millisecond, 86400*time.Second),
		"weight":    b.weightKw(&s.Weight, &s.Reverse, 253),
		"rise":      b.intKw(&s.Rise, 1, 1<<20),
		"fall":      b.intKw(&s.Fall, 1, 1<<20),
		"user":      {min: 1, max: 2, fn: func(n *Node) { b.scriptUser(s.Script, n) }},
		"init_fail": setKw(&s.InitFail),
	})
	if s.Script == nil {
		b.sink.errorf(n.Pos, "vrrp_script %q has no script", s.Name).Hint = "add: script \"/path/to/check arg\""
	}
	if s.Timeout == 0 {
		s.Timeout = s.Interval
	}
	b.cfg.Scripts = append(b.cfg.Scripts, s)
}

func (b *builder) scriptUser(s *Script, n *Node) {
	if s == nil {
		b.sink.errorf(n.Pos, "%q must come after the script it applies to", n.Name)
		return
	}
	s.User, s.Group = n.Arg(0), n.Arg(1)
}

// weightKw reads "weight N [reverse]".
func (b *builder) weightKw(w *int, reverse *bool, limit int) kw {
	return kw{min: 1, max: 2, fn: func(n *Node) {
		if v, ok := b.int(n.Args[0], -limit, limit); ok {
			*w = v
		}
		if len(n.Args) == 2 {
			if _, ok := b.enum(n.Args[1], "reverse"); ok {
				*reverse = true
			}
		}
	}}
}

func (b *builder) trackFile(n *Node) {
	f := &TrackFile{Name: n.Arg(0), Pos: n.Pos, Weight: 1}
	b.walk("track_file", n.Block, keywords{
		"file":   strKw(&f.File),
		"weight": b.weightKw(&f.Weight, &f.Reverse, 254),
		"init_file": {max: 2, fn: func(n *Node) {
			f.InitFile = true
			for _, a := range n.Args {
				if a.Text == "overwrite" {
					f.InitOverwrite = true
				} else if v, ok := b.int(a, -1<<31, 1<<31-1); ok {
					f.InitValue = v
				}
			}
		}},
	})
	if f.File == "" {
		b.sink.errorf(n.Pos, "track_file %q has no file", f.Name).Hint = "add: file /path/to/file"
	}
	b.cfg.TrackFiles = append(b.cfg.TrackFiles, f)
}

func (b *builder) pluginCheck(n *Node) {
	c := &PluginCheck{Name: n.Arg(0), Pos: n.Pos, Interval: time.Second, Rise: 1, Fall: 1}
	b.walk("vrrp_check", n.Block, keywords{
		"plugin":    strKw(&c.Plugin),
		"interval":  b.timerKw(&c.Interval, 10*time.Millisecond, 86400*time.Second),
		"timeout":   b.timerKw(&c.Timeout, 10*time.Millisecond, 86400*time.Second),
		"rise":      b.intKw(&c.Rise, 1, 1<<20),
		"fall":      b.intKw(&c.Fall, 1, 1<<20),
		"weight":    b.weightKw(&c.Weight, &c.Reverse, 254),
		"init_fail": setKw(&c.InitFail),
		"params":    {block: needBlock, fn: func(n *Node) { c.Params = paramsOf(n.Block) }},
	})
	if c.Plugin == "" {
		b.sink.errorf(n.Pos, "vrrp_check %q names no plugin", c.Name).Hint = "add: plugin mysql (or tcp, http, exec, or a third-party plugin's name)"
	}
	if c.Timeout == 0 {
		c.Timeout = c.Interval
	}
	b.cfg.Checks = append(b.cfg.Checks, c)
}

func (b *builder) notifyPlugin(n *Node) {
	p := &NotifyPlugin{Name: n.Arg(0), Pos: n.Pos, Timeout: defaultNotifyTimeout}
	b.walk("vrrp_notify", n.Block, keywords{
		"plugin":  strKw(&p.Plugin),
		"timeout": b.timerKw(&p.Timeout, 10*time.Millisecond, 3600*time.Second),
		"params":  {block: needBlock, fn: func(n *Node) { p.Params = paramsOf(n.Block) }},
	})
	if p.Plugin == "" {
		b.sink.errorf(n.Pos, "vrrp_notify %q names no plugin", p.Name).Hint = "add: plugin webhook (or exec, email, or a third-party plugin's name)"
	}
	b.cfg.Notifiers = append(b.cfg.Notifiers, p)
}

// paramsOf turns a params block into the plain form handed to plugins.
func paramsOf(nodes []*Node) []Param {
	var ps []Param
	for _, n := range nodes {
		p := Param{Key: n.Name, Pos: n.Pos}
		for _, a := range n.Args {
			p.Values = append(p.Values, a.Text)
		}
		if n.HasBlock {
			p.Block = paramsOf(n.Block)
			if p.Block == nil {
				p.Block = []Param{}
			}
		}
		ps = append(ps, p)
	}
	return ps
}

func (b *builder) vrrpInstance(n *Node) {
	vi := &VRRPInstance{Name: n.Arg(0), Pos: n.Pos, InitialState: "BACKUP", Priority: defaultPriority, AdvertInt: defaultAdvertInt}
	var versionSet bool
	ks := keywords{
		"state": {min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.enum(n.Args[0], "MASTER", "BACKUP"); ok {
				vi.InitialState = v
			}
		}},
		"interface":         strKw(&vi.Interface),
		"virtual_router_id": b.intKw(&vi.VRID, 1, 255),
		"priority":          b.intKw(&vi.Priority, 1, 255),
		"advert_int":        b.timerKw(&vi.AdvertInt, 10*time.Millisecond, 255*time.Second),
		"version": {min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.int(n.Args[0], 2, 3); ok {
				vi.Version, versionSet = v, true
			}
		}},
		"native_ipv6":   setKw(&vi.IPv6),
		"nopreempt":     setKw(&vi.NoPreempt),
		"preempt":       {fn: func(*Node) { vi.NoPreempt = false }},
		"preempt_delay": b.timerKw(&vi.PreemptDelay, 0, 1000*time.Second),
		"accept":        setKw(&vi.Accept),
		"no_accept":     {fn: func(*Node) { vi.Accept = false }},
		"strict_mode":   b.flagKw(&vi.Strict),
		"authentication": {block: needBlock, fn: func(n *Node) {
			a := &Auth{Pos: n.Pos}
			b.walk("vrrp_instance/authentication", n.Block, keywords{
				"auth_type": {min: 1, max: 1, fn: func(n *Node) {
					if v, ok := b.enum(n.Args[0], "PASS", "AH"); ok {
						a.Type = v
					}
				}},
				"auth_pass": {min: 1, max: 1, fn: func(n *Node) {
					a.Pass = n.Args[0].Text
					if len(a.Pass) > 8 {
						b.sink.warnf(n.Args[0].Pos, "auth_pass is longer than 8 characters; only the first 8 are used, as by keepalived")
						a.Pass = a.Pass[:8]
					}
				}},
			})
			if a.Type == "" {
				b.sink.errorf(n.Pos, "authentication without auth_type").Hint = "add: auth_type PASS"
			}
			vi.Auth = a
		}},
		"unicast_src_ip": b.addrKw(&vi.UnicastSrcIP),
		"mcast_src_ip":   b.addrKw(&vi.McastSrcIP),
		"mcast_dst_ip":   b.addrKw(&vi.McastGroup),
		"unicast_ttl":    b.intKw(&vi.UnicastTTL, 0, 255),
		"unicast_peer": {block: needBlock, fn: func(n *Node) {
			for _, l := range n.Block {
				if p, ok := b.unicastPeer(l); ok {
					vi.UnicastPeers = append(vi.UnicastPeers, p)
				}
			}
		}},
		"check_unicast_src":       setKw(&vi.CheckUnicastSrc),
		"dont_track_primary":      setKw(&vi.DontTrackPrim),
		"skip_check_adv_addr":     b.flagKw(&vi.SkipCheckAdvAddr),
		"lower_prio_no_advert":    b.flagKw(&vi.LowerPrioNoAdv),
		"higher_prio_send_advert": b.flagKw(&vi.HigherPrioSend),
		"virtual_ipaddress": {block: needBlock, fn: func(n *Node) {
			vi.VIPs = append(vi.VIPs, b.addresses(n)...)
		}},
		"virtual_ipaddress_excluded": {block: needBlock, fn: func(n *Node) {
			vi.ExcludedVIPs = append(vi.ExcludedVIPs, b.addresses(n)...)
		}},
		"virtual_routes":  {block: needBlock, fn: func(n *Node) { vi.Routes = append(vi.Routes, b.routes(n)...) }},
		"track_interface": {block: needBlock, fn: func(n *Node) { vi.TrackInterfaces = b.trackRefs(n, 253) }},
		"track_script":    {block: needBlock, fn: func(n *Node) { vi.TrackScripts = b.trackRefs(n, 253) }},
		"track_file":      {block: needBlock, fn: func(n *Node) { vi.TrackFiles = b.trackRefs(n, 254) }},
		"smtp_alert":      b.smtpAlertKw(&vi.SMTPAlert),
		"notify_action":   b.notifyActionKw(&vi.NotifyActions),
		"use_vmac":        {max: -1, fn: func(n *Node) { b.useVMAC(vi, n) }},
		"vmac_xmit_base":  setKw(&vi.VMACXmitBase),
		"announce":        {block: needBlock, fn: func(n *Node) { b.announceBlock(vi, n) }},

		"lvs_sync_daemon_interface": b.syncDaemonInterfaceKw(vi),
	}
	for k, v := range b.notifyKeywords(&vi.Notify) {
		ks[k] = v
	}
	for k, v := range b.garpKeywords(&vi.Garp, "") {
		ks[k] = v
	}
	vi.Places = b.walk("vrrp_instance", n.Block, ks)
	if _, ok := vi.Places["virtual_router_id"]; !ok {
		b.sink.errorf(vi.Pos, "vrrp_instance %q has no virtual_router_id", vi.Name).Hint = "add: virtual_router_id N (1-255), the same on every node of this virtual router"
	}

	g := b.cfg.Global
	if !versionSet {
		vi.Version = g.VRRPVersion
	}
	for _, a := range vi.VIPs {
		if a.Prefix.Addr().Is6() {
			vi.IPv6 = true
			break
		}
	}
	if vi.IPv6 && !versionSet {
		vi.Version = 3 // IPv6 exists only in VRRPv3
	}
	inheritGarp(&vi.Garp, g.Garp.resolved(), vi.Places)
	b.cfg.Instances = append(b.cfg.Instances, vi)
}

// inheritGarp fills the GARP settings the instance did not set from global_defs; set tells
// which were written, since 0 is a valid setting ("no delay", "no refresh").
func inheritGarp(g *Garp, from Garp, set map[string]Pos) {
	inherit := func(kw string, dst *time.Duration, src time.Duration) {
		if _, ok := set[kw]; !ok {
			*dst = src
		}
	}
	inheritN := func(kw string, dst *int, src int) {
		if _, ok := set[kw]; !ok {
			*dst = src
		}
	}
	inherit("garp_master_delay", &g.MasterDelay, from.MasterDelay)
	inheritN("garp_master_repeat", &g.MasterRepeat, from.MasterRepeat)
	inherit("garp_master_refresh", &g.MasterRefresh, from.MasterRefresh)
	inheritN("garp_master_refresh_repeat", &g.MasterRefreshRepeat, from.MasterRefreshRepeat)
	inherit("garp_lower_prio_delay", &g.LowerPrioDelay, from.LowerPrioDelay)
	inheritN("garp_lower_prio_repeat", &g.LowerPrioRepeat, from.LowerPrioRepeat)
	inherit("garp_interval", &g.Interval, from.Interval)
	inherit("gna_interval", &g.GNAInterval, from.GNAInterval)
}

func (b *builder) notifyKeywords(nt *Notify) keywords {
	return keywords{
		"notify_master":              b.scriptKw(&nt.Master),
		"notify_backup":              b.scriptKw(&nt.Backup),
		"notify_fault":               b.scriptKw(&nt.Fault),
		"notify_stop":                b.scriptKw(&nt.Stop),
		"notify_deleted":             b.scriptKw(&nt.Deleted),
		"notify":                     b.scriptKw(&nt.Generic),
		"notify_master_rx_lower_pri": b.scriptKw(&nt.MasterRxLowerPri),
		"notify_priority_changes":    b.flagKw(&nt.PriorityChanges),
	}
}

// notifyActionKw reads "notify_action NAME [NAME...]", vigil's link to vrrp_notify blocks.
func (b *builder) notifyActionKw(p *[]NameRef) kw {
	return kw{min: 1, max: -1, fn: func(n *Node) {
		for _, a := range n.Args {
			*p = append(*p, NameRef{Name: a.Text, Pos: a.Pos})
		}
	}}
}

func (b *builder) unicastPeer(l *Node) (UnicastPeer, bool) {
	if l.HasBlock {
		b.sink.errorf(l.Pos, "unexpected block in unicast_peer")
		return UnicastPeer{}, false
	}
	a, ok := b.addr(Token{Text: l.Name, Pos: l.Pos})
	if !ok {
		return UnicastPeer{}, false
	}
	p := UnicastPeer{Addr: a, Pos: l.Pos, MaxTTL: 255}
	for i := 0; i < len(l.Args); i += 2 {
		opt := l.Args[i]
		if i+1 >= len(l.Args) {
			b.sink.errorf(opt.Pos, "%q needs a value", opt.Text)
			return p, false
		}
		v, ok := b.int(l.Args[i+1], 0, 255)
		if !ok {
			return p, false
		}
		switch opt.Text {
		case "min_ttl":
			p.MinTTL = v
		case "max_ttl":
			p.MaxTTL = v
		default:
			d := b.sink.errorf(opt.Pos, "unknown unicast_peer option %q", opt.Text)
			if s := suggest(opt.Text, []string{"min_ttl", "max_ttl"}); s != "" {
				d.Hint = fmt.Sprintf("did you mean %q?", s)
			}
			return p, false
		}
	}
	return p, true
}

// trackRefs reads a track_* value block: "NAME [weight N [reverse|noreverse]]".
func (b *builder) trackRefs(n *Node, limit int) []TrackRef {
	var refs []TrackRef
	for _, l := range n.Block {
		r := TrackRef{Name: l.Name, Pos: l.Pos}
		args := l.Args
		ok := !l.HasBlock
		if l.HasBlock {
			b.sink.errorf(l.Pos, "unexpected block in %s", n.Name)
		}
		for len(args) > 0 && ok {
			switch args[0].Text {
			case "weight":
				if len(args) < 2 {
					b.sink.errorf(args[0].Pos, "weight needs a value from %d to %d", -limit, limit)
					ok = false
					break
				}
				r.Weight, ok = b.int(args[1], -limit, limit)
				r.HasWeight = true
				args = args[2:]
			case "reverse", "noreverse":
				r.Reverse, r.HasReverse = args[0].Text == "reverse", true
				args = args[1:]
			default:
				d := b.sink.errorf(args[0].Pos, "unexpected %q after %q in %s", args[0].Text, l.Name, n.Name)
				if s := suggest(args[0].Text, []string{"weight", "reverse", "noreverse"}); s != "" {
					d.Hint = fmt.Sprintf("did you mean %q?", s)
				} else {
					d.Hint = "the form is NAME [weight N] [reverse]; one name per line"
				}
				ok = false
			}
		}
		if ok && r.HasReverse && !r.HasWeight {
			// keepalived reads reverse only after a weight, and drops a line that has
			// one without the other ("unknown track script option"): tracking silently
			// without the direction the operator wrote would be worse than either.
			d := b.sink.errorf(l.Pos, "%q in %s: reverse and noreverse need a weight before them", l.Name, n.Name)
			d.Hint = "the form is NAME weight N reverse"
			ok = false
		}
		if ok {
			refs = append(refs, r)
		}
	}
	return refs
}

// addrOptions lists the words an address line takes after the address, with whether a value
// follows the word.
var addrOptions = map[string]bool{
	"brd": true, "broadcast": true, "dev": true, "scope": true, "label": true, "peer": true,
	"home": false, "-nodad": false, "nodad": false, "noprefixroute": false, "no_track": false,
	"autojoin": false, "track_group": true, "use_vmac": false, "mngtmpaddr": false,
	"preferred_lft": true,
}

var scopes = []string{"global", "site", "link", "host", "nowhere"}

// addresses reads a virtual_ipaddress / static_ipaddress value block.
func (b *builder) addresses(n *Node) []*Address {
	var out []*Address
	for _, l := range n.Block {
		if l.HasBlock {
			b.sink.errorf(l.Pos, "unexpected block in %s", n.Name)
			continue
		}
		if a := b.address(l); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (b *builder) address(l *Node) *Address {
	p, ok := b.prefix(Token{Text: l.Name, Pos: l.Pos})
	if !ok {
		return nil
	}
	a := &Address{Prefix: p, Pos: l.Pos}
	args := l.Args
	for len(args) > 0 {
		opt := args[0]
		takesValue, known := addrOptions[opt.Text]
		if !known {
			names := slices.Sorted(maps.Keys(addrOptions))
			d := b.sink.errorf(opt.Pos, "unknown address option %q", opt.Text)
			if s := suggest(opt.Text, names); s != "" {
				d.Hint = fmt.Sprintf("did you mean %q?", s)
			} else if g := gluedArgument(opt.Text, names); g != "" {
				d.Hint = g
			} else {
				d.Hint = "the form is ADDRESS[/LEN] [brd ADDR] [dev IFACE] [scope SCOPE] [label LABEL]"
			}
			return nil
		}
		if takesValue && len(args) < 2 {
			b.sink.errorf(opt.Pos, "%q needs a value", opt.Text)
			return nil
		}
		switch opt.Text {
		case "brd", "broadcast":
			if args[1].Text == "+" || args[1].Text == "-" {
				// As in ip(8): the highest or lowest address of the prefix.
				if !p.Addr().Is4() || p.Bits() > 30 {
					b.sink.errorf(args[1].Pos, "brd %s needs an IPv4 prefix of /30 or shorter", args[1].Text)
					return nil
				}
				a.Broad = edgeAddr(p, args[1].Text == "+")
				break
			}
			v, ok := b.addr(args[1])
			if !ok {
				return nil
			}
			a.Broad = v
		case "preferred_lft":
			if args[1].Text != "forever" {
				if _, ok := b.int(args[1], 0, 1<<31-1); !ok {
					return nil
				}
			}
			b.unsupported(opt.Pos, "address option preferred_lft")
		case "dev":
			a.Dev = args[1].Text
		case "scope":
			v, ok := b.enum(args[1], scopes...)
			if !ok {
				return nil
			}
			a.Scope = v
		case "label":
			a.Label = args[1].Text
			if len(a.Label) > 15 {
				b.sink.errorf(args[1].Pos, "label %q is longer than 15 characters", a.Label).Hint = "the kernel limits labels to 15 characters"
				return nil
			}
		case "peer":
			v, ok := b.prefix(args[1])
			if !ok {
				return nil
			}
			a.Peer = v
		case "home":
			a.Home = true
		case "-nodad", "nodad":
			a.NoDAD = true
		case "noprefixroute":
			a.NoPrefix = true
		case "no_track":
			a.NoTrack = true
		default:
			d := b.sink.warnf(opt.Pos, "address option %q is not supported by vigil; ignored", opt.Text)
			d.Unsupported = true
		}
		if takesValue {
			args = args[2:]
		} else {
			args = args[1:]
		}
	}
	return a
}

var routeTypes = []string{"blackhole", "unreachable", "prohibit", "throw"}

// routes reads a virtual_routes / static_routes value block.
func (b *builder) routes(n *Node) []*Route {
	var out []*Route
	for _, l := range n.Block {
		if l.HasBlock {
			b.sink.errorf(l.Pos, "unexpected block in %s", n.Name)
			continue
		}
		if r := b.route(l); r != nil {
			out = append(out, r)
		}
	}
	return out
}

func (b *builder) route(l *Node) *Route {
	words := append([]Token{{Text: l.Name, Pos: l.Pos}}, l.Args...)
	r := &Route{Type: "unicast", Pos: l.Pos}
	haveDst, anyDst := false, false
	for len(words) > 0 {
		w := words[0]
		need := func() (Token, bool) {
			if len(words) < 2 {
				b.sink.errorf(w.Pos, "%q needs a value", w.Text)
				return Token{}, false
			}
			return words[1], true
		}
		step := 2
		switch w.Text {
		case "src":
			v, ok := need()
			if !ok {
				return nil
			}
			if r.Src, ok = b.addr(v); !ok {
				return nil
			}
		case "via", "gw":
			v, ok := need()
			if !ok {
				return nil
			}
			if r.Via, ok = b.addr(v); !ok {
				return nil
			}
		case "dev", "oif":
			v, ok := need()
			if !ok {
				return nil
			}
			r.Dev = v.Text
		case "scope":
			v, ok := need()
			if !ok {
				return nil
			}
			if r.Scope, ok = b.enum(v, scopes...); !ok {
				return nil
			}
		case "table":
			v, ok := need()
			if !ok {
				return nil
			}
			r.Table = v.Text
			if r.TableID, ok = b.routeTable(v); !ok {
				return nil
			}
		case "metric", "preference", "priority":
			v, ok := need()
			if !ok {
				return nil
			}
			if r.Metric, ok = b.int(v, 0, 1<<31-1); !ok {
				return nil
			}
		case "protocol", "proto":
			v, ok := need()
			if !ok {
				return nil
			}
			r.Protocol = v.Text
		case "no_track":
			r.NoTrack = true
			step = 1
		case "to":
			step = 1
		default:
			if slices.Contains(routeTypes, w.Text) {
				r.Type = w.Text
				step = 1
				break
			}
			if haveDst {
				d := b.sink.warnf(w.Pos, "route option %q is not supported by vigil; the route is ignored", w.Text)
				d.Unsupported = true
				return nil
			}
			step = 1
			if w.Text == "default" || w.Text == "any" || w.Text == "all" {
				// The family comes from the gateway or source, as in keepalived.
				haveDst, anyDst = true, true
				break
			}
			p, ok := b.prefix(w)
			if !ok {
				return nil
			}
			r.Dst, haveDst = p, true
		}
		words = words[step:]
	}
	if !haveDst {
		b.sink.errorf(l.Pos, "route has no destination").Hint = "the form is [src ADDR] DEST[/LEN] [via GW] [dev IFACE] ..."
		return nil
	}
	v6 := r.Via.Is6() || r.Src.Is6()
	if anyDst {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if v6 {
			r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	}
	for _, a := range []netip.Addr{r.Via, r.Src} {
		if a.IsValid() && a.Is6() != r.Dst.Addr().Is6() {
			b.sink.errorf(l.Pos, "route to %s uses %s of the other address family", r.Dst, a).Hint = "destination, via and src must all be IPv4 or all IPv6"
			return nil
		}
	}
	return r
}

func (b *builder) syncGroup(n *Node) {
	g := &SyncGroup{Name: n.Arg(0), Pos: n.Pos}
	ks := keywords{
		"group": {block: needBlock, fn: func(n *Node) {
			for _, l := range n.Block {
				if l.HasBlock {
					b.sink.errorf(l.Pos, "unexpected block in group")
					continue
				}
				g.Members = append(g.Members, NameRef{Name: l.Name, Pos: l.Pos})
				for _, a := range l.Args {
					g.Members = append(g.Members, NameRef{Name: a.Text, Pos: a.Pos})
				}
			}
		}},
		"smtp_alert":      b.smtpAlertKw(&g.SMTPAlert),
		"global_tracking": setKw(&g.GlobalTracking),
		"notify_action":   b.notifyActionKw(&g.NotifyActions),
		"track_interface": {block: needBlock, fn: func(n *Node) { g.TrackInterfaces = b.trackRefs(n, 253) }},
		"track_script":    {block: needBlock, fn: func(n *Node) { g.TrackScripts = b.trackRefs(n, 253) }},
		"track_file":      {block: needBlock, fn: func(n *Node) { g.TrackFiles = b.trackRefs(n, 254) }},
	}
	for k, v := range b.notifyKeywords(&g.Notify) {
		ks[k] = v
	}
	b.walk("vrrp_sync_group", n.Block, ks)
	b.cfg.SyncGroups = append(b.cfg.SyncGroups, g)
}

// useVMAC reads "use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group ID]". vigil uses the
// name; the other options are reported as not supported.
func (b *builder) useVMAC(vi *VRRPInstance, n *Node) {
	vi.UseVMAC = true
	args := n.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a.Text == "name" && i+1 < len(args):
			vi.VMACName = args[i+1].Text
			i++
		case a.Text == "netlink_notify_msg":
			b.unsupported(a.Pos, "use_vmac option netlink_notify_msg")
		case a.Text == "group" && i+1 < len(args):
			b.unsupported(a.Pos, "use_vmac option group")
			i++
		case strings.Count(a.Text, ":") >= 4:
			b.unsupported(a.Pos, "use_vmac MAC address")
		case vi.VMACName == "" && i == 0:
			vi.VMACName = a.Text
		default:
			b.sink.errorf(a.Pos, "unexpected %q in use_vmac", a.Text).Hint = "the form is use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group ID]"
		}
	}
}

// edgeAddr is the last (or first) address of an IPv4 prefix.
func edgeAddr(p netip.Prefix, last bool) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if last {
		v |= 1<<(32-p.Bits()) - 1
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
