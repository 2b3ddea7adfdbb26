package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Keepalived's LVS defaults.
const (
	defaultDelayLoop      = 60 * time.Second
	defaultConnectTimeout = 5 * time.Second
	// defaultPersistence is what "persistence_timeout" alone, or a service without a port, gets.
	defaultPersistence = 360 * time.Second
	maxPersistence     = 31 * 86400 * time.Second
	defaultScheduler   = "wlc"
	defaultLBKind      = "NAT"
	// maxRSWeight is the IPVS weight limit (a signed 32-bit number).
	maxRSWeight = 1<<31 - 1
	maxFWMark   = 1<<32 - 1
	// maxCheckTimer bounds the checker timers; keepalived keeps them in 32-bit microseconds.
	maxCheckTimer  = 4294 * time.Second
	maxLoopTimer   = 86400 * time.Second
	maxMiscTimeout = 4294
)

// lvsSchedulers are the IPVS schedulers keepalived accepts for lb_algo / lvs_sched.
var lvsSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// checkerDefaults are the checker-specific defaults keepalived applies when neither the
// checker, its real server nor its virtual server sets a value.
var checkerDefaults = map[string]struct {
	retry int
	delay time.Duration // delay_before_retry
}{
	"TCP_CHECK":    {1, time.Second},
	"HTTP_GET":     {1, 3 * time.Second},
	"SSL_GET":      {1, 3 * time.Second},
	"MISC_CHECK":   {0, time.Second},
	"PLUGIN_CHECK": {1, time.Second},
}

// opt is a setting that may be left unset, so that it can be inherited.
type opt[T any] struct {
	v   T
	set bool
}

func (o opt[T]) or(p opt[T]) opt[T] {
	if o.set {
		return o
	}
	return p
}

func (o opt[T]) get(def T) T {
	if o.set {
		return o.v
	}
	return def
}

// inherited are the settings keepalived passes from a virtual server to its real servers and
// from a real server to its checkers, each level overriding the one above.
type inherited struct {
	retry            opt[int]
	connectTimeout   opt[time.Duration]
	delayBeforeRetry opt[time.Duration]
	warmup           opt[time.Duration]
	delayLoop        opt[time.Duration]
	alpha            opt[bool]
	inhibit          opt[bool]
	virtualhost      opt[string]
	weight           opt[int]
}

func (in inherited) under(parent inherited) inherited {
	return inherited{
		retry:            in.retry.or(parent.retry),
		connectTimeout:   in.connectTimeout.or(parent.connectTimeout),
		delayBeforeRetry: in.delayBeforeRetry.or(parent.delayBeforeRetry),
		warmup:           in.warmup.or(parent.warmup),
		delayLoop:        in.delayLoop.or(parent.delayLoop),
		alpha:            in.alpha.or(parent.alpha),
		inhibit:          in.inhibit.or(parent.inhibit),
		virtualhost:      in.virtualhost.or(parent.virtualhost),
		weight:           in.weight.or(parent.weight),
	}
}

func (b *builder) optIntKw(o *opt[int], lo, hi int) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.int(n.Args[0], lo, hi); ok {
			*o = opt[int]{v, true}
		}
	}}
}

func (b *builder) optTimerKw(o *opt[time.Duration], lo, hi time.Duration) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.timer(n.Args[0], lo, hi); ok {
			*o = opt[time.Duration]{v, true}
		}
	}}
}

func (b *builder) optBoolKw(o *opt[bool]) kw {
	return kw{max: 1, fn: func(n *Node) {
		if v, ok := b.boolArg(n); ok {
			*o = opt[bool]{v, true}
		}
	}}
}

func optStrKw(o *opt[string]) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) { *o = opt[string]{n.Args[0].Text, true} }}
}

// retryTimingKws are the keywords a virtual server, a real server and a checker share.
func (b *builder) retryTimingKws(in *inherited, ks keywords, retryMin int) {
	ks["retry"] = b.optIntKw(&in.retry, retryMin, 1<<31-1)
	ks["delay_before_retry"] = b.optTimerKw(&in.delayBeforeRetry, 0, maxLoopTimer)
	ks["warmup"] = b.optTimerKw(&in.warmup, 0, maxLoopTimer)
	ks["delay_loop"] = b.optTimerKw(&in.delayLoop, time.Microsecond, maxLoopTimer)
}

// --- virtual_server_group ---------------------------------------------------------------

func (b *builder) virtualServerGroup(n *Node) {
	g := &VirtualServerGroup{Name: n.Arg(0), Pos: n.Pos}
	for _, l := range n.Block {
		if l.HasBlock {
			b.sink.errorf(l.Pos, "unexpected block in virtual_server_group %q", g.Name).Hint =
				"a virtual_server_group lists one \"ADDRESS [PORT]\" or \"fwmark N\" per line"
			continue
		}
		if e, ok := b.vsgEntry(l); ok {
			g.Entries = append(g.Entries, e)
		}
	}
	if len(n.Block) == 0 {
		b.sink.errorf(n.Pos, "virtual_server_group %q has no entries", g.Name).Hint =
			"list one \"ADDRESS [PORT]\", \"FIRST-LAST [PORT]\" or \"fwmark N\" per line"
	}
	b.cfg.VirtualServerGroups = append(b.cfg.VirtualServerGroups, g)
}

func (b *builder) vsgEntry(l *Node) (VSGEntry, bool) {
	e := VSGEntry{Pos: l.Pos}
	if l.Name == "fwmark" {
		if len(l.Args) == 0 {
			b.sink.errorf(l.Pos, "fwmark needs a number").Hint = "write: fwmark 1"
			return e, false
		}
		if len(l.Args) > 2 {
			b.sink.errorf(l.Args[2].Pos, "unexpected %q after the fwmark", l.Args[2].Text)
			return e, false
		}
		v, ok := b.int(l.Args[0], 1, maxFWMark)
		if !ok {
			return e, false
		}
		e.FWMark = v
		if len(l.Args) == 2 {
			if _, ok := b.enum(l.Args[1], "inet", "inet6"); !ok {
				return e, false
			}
			d := b.sink.warnf(l.Args[1].Pos, "the address family of a fwmark entry is not supported by vigil; ignored")
			d.Unsupported = true
			d.Hint = "see README, \"keepalived features vigil does not support\""
		}
		return e, true
	}
	if len(l.Args) > 1 {
		b.sink.errorf(l.Args[1].Pos, "unexpected %q after the port", l.Args[1].Text).Hint =
			"write one \"ADDRESS [PORT]\" per line"
		return e, false
	}
	from, to, ok := b.addrRange(Token{Text: l.Name, Pos: l.Pos})
	if !ok {
		return e, false
	}
	e.Addr, e.RangeTo = from, to
	if len(l.Args) == 1 {
		p, ok := b.optPort(l.Args[0])
		if !ok {
			return e, false
		}
		e.Port = p
	}
	return e, true
}

// optPort reads a port where keepalived also takes 0 to mean "no port".
func (b *builder) optPort(t Token) (int, bool) {
	if t.Text != "" && strings.Trim(t.Text, "0") == "" {
		return 0, true
	}
	return b.port(t)
}

// addrRange reads ADDR, ADDR-LAST (last octet, or last group for IPv6), ADDR-ADDR or
// ADDR/LEN. RangeTo is zero for a single address.
func (b *builder) addrRange(t Token) (netip.Addr, netip.Addr, bool) {
	s := t.Text
	if strings.Contains(s, "/") {
		p, ok := b.prefix(t)
		if !ok {
			return netip.Addr{}, netip.Addr{}, false
		}
		if p.Addr() != p.Masked().Addr() {
			b.sink.errorf(t.Pos, "%s has host bits set beyond /%d", s, p.Bits()).Hint =
				fmt.Sprintf("did you mean %s?", p.Masked())
			return netip.Addr{}, netip.Addr{}, false
		}
		if p.IsSingleIP() {
			return p.Addr(), netip.Addr{}, true
		}
		return p.Addr(), lastAddr(p), true
	}
	first, last, isRange := strings.Cut(s, "-")
	from, ok := b.addr(Token{Text: first, Pos: t.Pos})
	if !ok || !isRange {
		return from, netip.Addr{}, ok
	}
	endPos := t.Pos
	if endPos.Col > 0 {
		endPos.Col += len(first) + 1
	}
	var to netip.Addr
	if strings.ContainsAny(last, ".:") {
		to, ok = b.addr(Token{Text: last, Pos: endPos})
		if !ok {
			return netip.Addr{}, netip.Addr{}, false
		}
		if to.Is4() != from.Is4() {
			b.sink.errorf(t.Pos, "the range %s mixes IPv4 and IPv6", s)
			return netip.Addr{}, netip.Addr{}, false
		}
		if to.Less(from) {
			b.sink.errorf(endPos, "the range %s ends before it starts", s).Hint = "write FIRST-LAST with FIRST the lower address"
			return netip.Addr{}, netip.Addr{}, false
		}
		return from, to, true
	}
	raw := from.AsSlice()
	if from.Is4() {
		v, err := strconv.ParseUint(last, 10, 8)
		if err != nil {
			b.sink.errorf(endPos, "%q is not the last octet of an IPv4 range", last).Hint = "write 192.168.1.10-20 or 192.168.1.10-192.168.1.20"
			return netip.Addr{}, netip.Addr{}, false
		}
		raw[3] = byte(v)
	} else {
		v, err := strconv.ParseUint(last, 16, 16)
		if err != nil {
			b.sink.errorf(endPos, "%q is not the last group of an IPv6 range", last).Hint = "write 2001:db8::10-20 (hexadecimal) or 2001:db8::10-2001:db8::20"
			return netip.Addr{}, netip.Addr{}, false
		}
		raw[14], raw[15] = byte(v>>8), byte(v)
	}
	to, _ = netip.AddrFromSlice(raw)
	if !from.Less(to) {
		b.sink.errorf(endPos, "the range %s does not end after it starts", s).Hint = "the number after '-' is the last address of the range and must be greater than the first"
		return netip.Addr{}, netip.Addr{}, false
	}
	return from, to, true
}

func lastAddr(p netip.Prefix) netip.Addr {
	raw := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(raw)*8; i++ {
		raw[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(raw)
	return a
}

// --- virtual_server ---------------------------------------------------------------------

// pendingRS is a real server whose checkers still wait for the virtual server's settings,
// which may come after the real_server block.
type pendingRS struct {
	rs       *RealServer
	own      inherited
	checkers []pendingChecker
	node     *Node
}

type pendingChecker struct {
	c   *Checker
	own inherited
}

func (b *builder) virtualServer(n *Node) {
	vs := &VirtualServer{Pos: n.Pos, DelayLoop: defaultDelayLoop}
	// A bad head is reported, and the block is still read for the mistakes it holds.
	headOK := b.vsHead(vs, n)
	var in inherited
	var pending []*pendingRS
	ks := keywords{
		"lb_algo":    b.enumKw(&vs.LBAlgo, lvsSchedulers...),
		"lvs_sched":  b.enumKw(&vs.LBAlgo, lvsSchedulers...),
		"lb_kind":    b.lbKindKw(&vs.LBKind),
		"lvs_method": b.lbKindKw(&vs.LBKind),
		"protocol":   b.enumKw(&vs.Protocol, "TCP", "UDP", "SCTP"),
		"persistence_timeout": {max: 1, fn: func(n *Node) {
			if len(n.Args) == 0 {
				vs.Persist = defaultPersistence
				return
			}
			if v, ok := b.int(n.Args[0], 1, int(maxPersistence/time.Second)); ok {
				vs.Persist = time.Duration(v) * time.Second
			}
		}},
		"quorum":             b.intKw(&vs.Quorum, 1, 1<<31-1),
		"hysteresis":         b.intKw(&vs.Hysteresis, 0, 1<<31-1),
		"quorum_up":          b.scriptKw(&vs.QuorumUp),
		"quorum_down":        b.scriptKw(&vs.QuorumDown),
		"alpha":              b.flagKw(&vs.Alpha),
		"omega":              b.flagKw(&vs.Omega),
		"virtualhost":        strKw(&vs.Virtualhost),
		"connect_timeout":    b.optTimerKw(&in.connectTimeout, time.Microsecond, maxCheckTimer),
		"inhibit_on_failure": b.optBoolKw(&in.inhibit),
		"weight":             b.optIntKw(&in.weight, 1, maxRSWeight),
		"sorry_server": {min: 1, max: 2, fn: func(n *Node) {
			if vs.SorryServer != nil {
				b.sink.errorf(n.Pos, "sorry_server is already set at %s", vs.SorryServer.Pos).Hint = "a virtual server has one sorry_server"
				return
			}
			a, ok := b.addr(n.Args[0])
			if !ok {
				return
			}
			ss := &RealServer{Pos: n.Pos, Addr: a, Weight: 1}
			if len(n.Args) == 2 {
				if ss.Port, ok = b.optPort(n.Args[1]); !ok {
					return
				}
			}
			vs.SorryServer = ss
		}},
		"real_server": {min: 1, max: 2, block: needBlock, fn: func(n *Node) {
			if p := b.realServer(vs, n); p != nil {
				pending = append(pending, p)
			}
		}},
	}
	b.retryTimingKws(&in, ks, 1)
	ks["delay_loop"] = b.timerKw(&vs.DelayLoop, time.Microsecond, maxLoopTimer)
	places := b.walk("virtual_server", n.Block, ks)

	if vs.LBAlgo == "" {
		vs.LBAlgo = defaultScheduler
	}
	if vs.LBKind == "" {
		vs.LBKind = defaultLBKind
	}
	if vs.Quorum == 0 {
		vs.Quorum = 1
	}
	if !headOK {
		return
	}
	if vs.FWMark != 0 && vs.Protocol != "" {
		b.sink.warnf(places["protocol"], "protocol is ignored for a fwmark service").Hint =
			"the firewall mark selects the packets; remove the protocol line"
		vs.Protocol = ""
	}
	if vs.Group == "" && vs.FWMark == 0 && vs.Port == 0 && vs.Persist == 0 {
		b.sink.errorf(n.Pos, "%s has no port, which only a persistent service may omit", vsName(vs)).Hint =
			"add the port (virtual_server " + vs.Addr.String() + " 80) or a persistence_timeout"
	}
	in.delayLoop = opt[time.Duration]{vs.DelayLoop, true}
	in.alpha = opt[bool]{vs.Alpha, true}
	if vs.Virtualhost != "" {
		in.virtualhost = opt[string]{vs.Virtualhost, true}
	}
	for _, p := range pending {
		b.resolveRS(vs, p, in)
	}
	if _, written := places["real_server"]; !written {
		b.sink.warnf(n.Pos, "%s has no real_server; ignored, as keepalived does", vsName(vs)).Hint =
			"add a real_server ADDRESS PORT { ... } block"
	}
	if len(vs.RealServers) == 0 {
		return
	}
	b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
}

// vsHead reads "IP [PORT]", "fwmark N" or "group NAME".
func (b *builder) vsHead(vs *VirtualServer, n *Node) bool {
	switch n.Arg(0) {
	case "fwmark", "group":
		if len(n.Args) < 2 {
			what := "a number: virtual_server fwmark 1 { ... }"
			if n.Arg(0) == "group" {
				what = "a virtual_server_group name: virtual_server group NAME { ... }"
			}
			b.sink.errorf(n.Args[0].Pos, "virtual_server %s needs %s", n.Arg(0), what)
			return false
		}
		if n.Arg(0) == "group" {
			vs.Group = n.Arg(1)
			return true
		}
		v, ok := b.int(n.Args[1], 1, maxFWMark)
		vs.FWMark = v
		return ok
	}
	a, ok := b.addr(n.Args[0])
	if !ok {
		return false
	}
	vs.Addr = a
	if len(n.Args) == 2 {
		vs.Port, ok = b.optPort(n.Args[1])
	}
	return ok
}

// enumKw sets *p to the canonical spelling of one of vals; a wrong value leaves *p alone.
func (b *builder) enumKw(p *string, vals ...string) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		if v, ok := b.enum(n.Args[0], vals...); ok {
			*p = v
		}
	}}
}

func (b *builder) lbKindKw(p *string) kw {
	return kw{min: 1, max: -1, fn: func(n *Node) {
		v, ok := b.enum(n.Args[0], "NAT", "DR", "TUN")
		if !ok {
			return
		}
		*p = v
		if len(n.Args) > 1 {
			d := b.sink.warnf(n.Args[1].Pos, "tunnel options of %s are not supported by vigil; ignored", n.Name)
			d.Unsupported = true
			d.Hint = "see README, \"keepalived features vigil does not support\""
		}
	}}
}

func vsName(vs *VirtualServer) string {
	switch {
	case vs.Group != "":
		return "virtual_server group " + vs.Group
	case vs.FWMark != 0:
		return fmt.Sprintf("virtual_server fwmark %d", vs.FWMark)
	case vs.Port == 0:
		return "virtual_server " + vs.Addr.String()
	}
	return fmt.Sprintf("virtual_server %s %d", vs.Addr, vs.Port)
}

func rsName(rs *RealServer) string {
	if rs.Port == 0 {
		return "real_server " + rs.Addr.String()
	}
	return fmt.Sprintf("real_server %s %d", rs.Addr, rs.Port)
}

// --- real_server ------------------------------------------------------------------------

func (b *builder) realServer(vs *VirtualServer, n *Node) *pendingRS {
	a, ok := b.rsAddr(vs, n)
	rs := &RealServer{Pos: n.Pos, Addr: a}
	if ok && len(n.Args) == 2 {
		rs.Port, ok = b.optPort(n.Args[1])
	}
	if ok && rs.Port == 0 && vs.FWMark == 0 && vs.Group == "" && vs.Addr.IsValid() {
		d := b.sink.errorf(n.Pos, "%s needs a port: only the real servers of a fwmark service may omit it", rsName(rs))
		if vs.Port != 0 {
			d.Hint = fmt.Sprintf("write real_server %s %d { ... }", rs.Addr, vs.Port)
		} else {
			d.Hint = fmt.Sprintf("write real_server %s PORT { ... }", rs.Addr)
		}
	}
	p := &pendingRS{rs: rs, node: n}
	checker := func(typ string) kw {
		return kw{block: needBlock, fn: func(n *Node) {
			if c := b.checker(typ, n); c != nil {
				p.checkers = append(p.checkers, *c)
			}
		}}
	}
	ks := keywords{
		"weight":             b.optIntKw(&p.own.weight, 0, maxRSWeight),
		"inhibit_on_failure": b.optBoolKw(&p.own.inhibit),
		"alpha":              b.optBoolKw(&p.own.alpha),
		"notify_up":          b.scriptKw(&rs.NotifyUp),
		"notify_down":        b.scriptKw(&rs.NotifyDown),
		"connect_timeout":    b.optTimerKw(&p.own.connectTimeout, time.Microsecond, maxCheckTimer),
		"virtualhost":        optStrKw(&p.own.virtualhost),
		"TCP_CHECK":          checker("TCP_CHECK"),
		"HTTP_GET":           checker("HTTP_GET"),
		"SSL_GET":            checker("SSL_GET"),
		"MISC_CHECK":         checker("MISC_CHECK"),
		"PLUGIN_CHECK":       checker("PLUGIN_CHECK"),
	}
	b.retryTimingKws(&p.own, ks, 1)
	// A bad address is reported, and the block is still read for the mistakes it holds.
	b.walk("virtual_server/real_server", n.Block, ks)
	if !ok {
		return nil
	}
	return p
}

// rsAddr reads a real server's address. When the port was run into the address, the virtual
// server's port usually tells where the blank belongs.
func (b *builder) rsAddr(vs *VirtualServer, n *Node) (netip.Addr, bool) {
	t := n.Args[0]
	if vs.Port != 0 && len(n.Args) == 1 {
		port := strconv.Itoa(vs.Port)
		if head, found := strings.CutSuffix(t.Text, port); found && strings.Count(head, ".") == 3 {
			if _, err := netip.ParseAddr(head); err == nil {
				if _, err := netip.ParseAddr(t.Text); err != nil {
					b.sink.errorf(t.Pos, "%q is not an IP address", t.Text).Hint =
						fmt.Sprintf("did you mean %q? a blank is missing between address and port", head+" "+port)
					return netip.Addr{}, false
				}
			}
		}
	}
	return b.addr(t)
}

// resolveRS fills the real server and its checkers with the settings they inherit, and adds
// the real server to its virtual server.
func (b *builder) resolveRS(vs *VirtualServer, p *pendingRS, vsIn inherited) {
	in := p.own.under(vsIn)
	rs := p.rs
	rs.Weight = in.weight.get(1)
	rs.InhibitOnFailure = in.inhibit.get(false)
	for _, pc := range p.checkers {
		c := pc.c
		cin := pc.own.under(in)
		def := checkerDefaults[c.Type]
		c.Retry = cin.retry.get(def.retry)
		c.DelayBeforeRetry = cin.delayBeforeRetry.get(def.delay)
		c.DelayLoop = cin.delayLoop.get(vs.DelayLoop)
		c.Warmup = cin.warmup.get(c.DelayLoop)
		c.Alpha = cin.alpha.get(false)
		if c.Type != "MISC_CHECK" {
			c.ConnectTimeout = cin.connectTimeout.get(defaultConnectTimeout)
		}
		if c.Type == "HTTP_GET" || c.Type == "SSL_GET" {
			c.Virtualhost = cin.virtualhost.get("")
		}
		if c.Type == "MISC_CHECK" && c.MiscTimeout == 0 {
			c.MiscTimeout = vs.DelayLoop
		}
		rs.Checkers = append(rs.Checkers, c)
	}
	vs.RealServers = append(vs.RealServers, rs)
}

// --- checkers ---------------------------------------------------------------------------

func (b *builder) checker(typ string, n *Node) *pendingChecker {
	c := &Checker{Type: typ, Pos: n.Pos}
	pc := &pendingChecker{c: c}
	ctx := "virtual_server/real_server/" + typ
	ks := keywords{
		"alpha": b.optBoolKw(&pc.own.alpha),
	}
	b.retryTimingKws(&pc.own, ks, 0)
	if typ != "MISC_CHECK" {
		ks["connect_ip"] = b.addrKw(&c.ConnectIP)
		ks["connect_port"] = b.intKw(&c.ConnectPort, 1, 65535)
		ks["bindto"] = b.addrKw(&c.BindTo)
		ks["bind_port"] = b.intKw(&c.BindPort, 1, 65535)
		ks["connect_timeout"] = b.optTimerKw(&pc.own.connectTimeout, time.Microsecond, maxCheckTimer)
	}
	ok := true
	switch typ {
	case "HTTP_GET", "SSL_GET":
		ks["virtualhost"] = optStrKw(&pc.own.virtualhost)
		ks["url"] = kw{block: needBlock, fn: func(n *Node) {
			if u, ok := b.url(ctx, n); ok {
				c.URLs = append(c.URLs, u)
			}
		}}
		retry := ks["retry"]
		ks["nb_get_retry"] = kw{min: 1, max: 1, fn: func(n *Node) {
			b.sink.warnf(n.Pos, "%q is deprecated; use \"retry\"", n.Name).Hint = "write: retry " + n.Arg(0)
			retry.fn(n)
		}}
		ks["http_protocol"] = kw{min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.enum(n.Args[0], "1.0", "1.0C", "1.1"); ok {
				c.HTTPProtocol = v
			}
		}}
		if typ == "SSL_GET" {
			ks["enable_sni"] = b.flagKw(&c.EnableSNI)
			ks["sni_name"] = strKw(&c.SNIName)
		}
		b.walk(ctx, n.Block, ks)
		if len(c.URLs) == 0 {
			b.sink.errorf(n.Pos, "%s has no url to check", typ).Hint = "add: url { path / }"
			ok = false
		}
	case "MISC_CHECK":
		var user *Node
		ks["misc_path"] = kw{min: 1, max: -1, fn: func(n *Node) { c.MiscPath = b.miscPath(n) }}
		ks["misc_timeout"] = kw{min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.int(n.Args[0], 0, maxMiscTimeout); ok {
				c.MiscTimeout = time.Duration(v) * time.Second
			}
		}}
		ks["misc_dynamic"] = b.flagKw(&c.MiscDynamic)
		ks["user"] = kw{min: 1, max: 2, fn: func(n *Node) { user = n }}
		b.walk(ctx, n.Block, ks)
		if c.MiscPath == nil {
			b.sink.errorf(n.Pos, "MISC_CHECK has no misc_path").Hint = "add: misc_path \"/path/to/check arg\""
			ok = false
		} else if user != nil {
			c.MiscPath.User, c.MiscPath.Group = splitUserGroup(user)
		}
	case "PLUGIN_CHECK":
		var pluginAt, paramsAt Pos
		ks["check"] = strKw(&c.Check)
		ks["plugin"] = kw{min: 1, max: 1, fn: func(n *Node) { c.Plugin, pluginAt = n.Arg(0), n.Pos }}
		ks["params"] = kw{block: needBlock, fn: func(n *Node) { c.Params, paramsAt = paramsOf(n.Block), n.Pos }}
		b.walk(ctx, n.Block, ks)
		switch {
		case c.Check != "" && c.Plugin != "":
			b.sink.errorf(pluginAt, "PLUGIN_CHECK names both a check (%q) and a plugin (%q)", c.Check, c.Plugin).Hint =
				"use either \"check NAME\" for a vrrp_check, or \"plugin NAME\" with params { ... }, not both"
			ok = false
		case c.Check == "" && c.Plugin == "":
			b.sink.errorf(n.Pos, "PLUGIN_CHECK names neither a check nor a plugin").Hint =
				"add \"check NAME\" (a vrrp_check) or \"plugin NAME\" with params { ... }"
			ok = false
		case c.Check != "" && paramsAt.Line != 0:
			b.sink.errorf(paramsAt, "params belong to the vrrp_check %q, not to PLUGIN_CHECK", c.Check).Hint =
				"move the params block into vrrp_check " + c.Check + ", or use \"plugin NAME\" instead of \"check\""
			ok = false
		}
	default:
		b.walk(ctx, n.Block, ks)
	}
	if !ok {
		return nil
	}
	return pc
}

// miscPath reads "misc_path COMMAND...": unlike other scripts, every word of the line is
// part of the command; the user comes from a separate "user" line.
func (b *builder) miscPath(n *Node) *Script {
	cmd := n.Rest
	if words, err := splitLine(n.Rest); err == nil && len(words) == 1 {
		cmd = words[0] // a quoted command: the quotes are not part of it
	}
	return b.commandArgv(n, &Script{Cmd: cmd, Pos: argPos(n)})
}

// splitUserGroup reads "user NAME [GROUP]", also spelt NAME:GROUP or NAME :GROUP.
func splitUserGroup(n *Node) (string, string) {
	user, group, _ := strings.Cut(n.Arg(0), ":")
	if len(n.Args) > 1 {
		group = strings.TrimPrefix(n.Arg(1), ":")
	}
	return user, group
}

func (b *builder) url(ctx string, n *Node) (URL, bool) {
	u := URL{Pos: n.Pos}
	b.walk(ctx+"/url", n.Block, keywords{
		"path": strKw(&u.Path),
		"digest": {min: 1, max: 1, fn: func(n *Node) {
			t := n.Args[0]
			if !isMD5(t.Text) {
				b.sink.errorf(t.Pos, "digest %q is not an MD5 digest", t.Text).Hint =
					"digest is the MD5 of the page body as printed by genhash: 32 hex digits"
				return
			}
			u.Digest = strings.ToLower(t.Text)
		}},
		"status_code": {min: 1, max: -1, fn: func(n *Node) {
			for _, a := range n.Args {
				if r, ok := b.statusRange(a); ok {
					u.StatusCodes = append(u.StatusCodes, r)
				}
			}
		}},
		"virtualhost":    strKw(&u.Virtualhost),
		"regex":          strKw(&u.Regex),
		"regex_no_match": b.flagKw(&u.RegexNoMatch),
		"regex_options":  {min: 1, max: -1, fn: func(n *Node) { u.RegexOptions = append(u.RegexOptions, n.Words()...) }},
	})
	if u.Path == "" {
		b.sink.errorf(n.Pos, "url has no path").Hint = "add: path /"
		return u, false
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u, true
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func (b *builder) statusRange(t Token) (StatusRange, bool) {
	lo, hi, isRange := strings.Cut(t.Text, "-")
	from, err1 := strconv.Atoi(lo)
	to, err2 := from, error(nil)
	if isRange {
		to, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || from < 100 || to > 599 || from > to || strings.HasPrefix(lo, "+") || strings.HasPrefix(hi, "+") {
		b.sink.errorf(t.Pos, "%q is not an HTTP status code or range", t.Text).Hint =
			"use codes from 100 to 599 and ranges such as 200-299"
		return StatusRange{}, false
	}
	return StatusRange{from, to}, true
}

// --- cross-reference checks -------------------------------------------------------------

func (b *builder) validateLVS() {
	groups := map[string]*VirtualServerGroup{}
	var groupNames []string
	for _, g := range b.cfg.VirtualServerGroups {
		if prev, ok := groups[g.Name]; ok {
			b.sink.errorf(g.Pos, "virtual_server_group %q is already defined at %s", g.Name, prev.Pos).Hint =
				"give each virtual_server_group its own name, or merge the two"
			continue
		}
		groups[g.Name] = g
		groupNames = append(groupNames, g.Name)
		b.checkGroupEntries(g)
	}
	var checkNames []string
	checks := map[string]bool{}
	for _, c := range b.cfg.Checks {
		checks[c.Name] = true
		checkNames = append(checkNames, c.Name)
	}
	nodes := b.lvsNodes()

	type vsKey struct {
		addr   netip.Addr
		port   int
		fwmark int
		group  string
		proto  string
	}
	seen := map[vsKey]*VirtualServer{}
	for _, vs := range b.cfg.VirtualServers {
		if vs.Group != "" {
			g, ok := groups[vs.Group]
			if !ok {
				pos := vs.Pos
				if n := nodes[vs.Pos]; n != nil && len(n.Args) > 1 {
					pos = n.Args[1].Pos
				}
				b.undefined(pos, "virtual_server_group", vs.Group, "virtual_server_group", groupNames)
			} else {
				hasFWMark := slices.ContainsFunc(g.Entries, func(e VSGEntry) bool { return e.FWMark != 0 })
				for _, rs := range vs.RealServers {
					if rs.Port == 0 && !hasFWMark {
						b.sink.errorf(rs.Pos, "%s needs a port: virtual_server_group %q has no fwmark entry", rsName(rs), vs.Group).Hint =
							fmt.Sprintf("write real_server %s PORT { ... }", rs.Addr)
					}
				}
			}
		}
		if vs.Protocol == "" && (vs.FWMark == 0 && (vs.Group == "" || !onlyFWMarks(groups[vs.Group]))) {
			b.sink.warnf(vs.Pos, "%s sets no protocol; keepalived then uses UDP, and so does vigil", vsName(vs)).Hint =
				"add \"protocol TCP\" (or UDP, SCTP) to say which"
			vs.Protocol = "UDP"
		}
		k := vsKey{addr: vs.Addr, port: vs.Port, fwmark: vs.FWMark, group: vs.Group, proto: vs.Protocol}
		if prev, ok := seen[k]; ok {
			b.sink.errorf(vs.Pos, "%s is already defined at %s", vsName(vs), prev.Pos).Hint =
				"merge the real servers into one virtual_server block"
		} else {
			seen[k] = vs
		}

		type rsKey struct {
			addr netip.Addr
			port int
		}
		rsSeen := map[rsKey]*RealServer{}
		weight := 0
		for _, rs := range vs.RealServers {
			k := rsKey{rs.Addr, rs.Port}
			if prev, ok := rsSeen[k]; ok {
				b.sink.errorf(rs.Pos, "%s is already defined at %s in this virtual_server", rsName(rs), prev.Pos).Hint =
					"merge the two real_server blocks"
			} else {
				rsSeen[k] = rs
			}
			weight += rs.Weight
			for _, c := range rs.Checkers {
				if c.Type != "PLUGIN_CHECK" || c.Check == "" || checks[c.Check] {
					continue
				}
				pos := c.Pos
				if n := nodes[c.Pos]; n != nil {
					for _, l := range n.Block {
						if l.Name == "check" && len(l.Args) > 0 {
							pos = l.Args[0].Pos
						}
					}
				}
				b.undefined(pos, "check", c.Check, "vrrp_check", checkNames)
			}
		}
		if vs.Quorum > weight {
			b.sink.warnf(vs.Pos, "quorum %d of %s exceeds the total weight %d of its real servers; using %d, as keepalived does", vs.Quorum, vsName(vs), weight, weight).Hint =
				"lower the quorum or raise the weights"
			vs.Quorum = weight
		}
		if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
			h := max(vs.Quorum-1, 0)
			b.sink.warnf(vs.Pos, "hysteresis %d of %s is not below its quorum %d; using %d, as keepalived does", vs.Hysteresis, vsName(vs), vs.Quorum, h).Hint =
				"hysteresis must be smaller than quorum"
			vs.Hysteresis = h
		}
	}
}

func onlyFWMarks(g *VirtualServerGroup) bool {
	if g == nil || len(g.Entries) == 0 {
		return false
	}
	for _, e := range g.Entries {
		if e.FWMark == 0 {
			return false
		}
	}
	return true
}

// checkGroupEntries reports the same address and port, or fwmark, listed twice in a group.
func (b *builder) checkGroupEntries(g *VirtualServerGroup) {
	type key struct {
		addr, to netip.Addr
		port     int
		fwmark   int
	}
	seen := map[key]Pos{}
	for _, e := range g.Entries {
		k := key{e.Addr, e.RangeTo, e.Port, e.FWMark}
		if p, ok := seen[k]; ok {
			b.sink.errorf(e.Pos, "this entry of virtual_server_group %q repeats the one at %s", g.Name, p).Hint = "remove one of the two lines"
			continue
		}
		seen[k] = e.Pos
	}
}

// lvsNodes indexes the statements inside virtual_server blocks by place, so that checks made
// after building can point at the exact word.
func (b *builder) lvsNodes() map[Pos]*Node {
	idx := map[Pos]*Node{}
	var add func(ns []*Node)
	add = func(ns []*Node) {
		for _, n := range ns {
			idx[n.Pos] = n
			add(n.Block)
		}
	}
	for _, n := range b.cfg.Tree {
		if n.Name == "virtual_server" {
			idx[n.Pos] = n
			add(n.Block)
		}
	}
	return idx
}
