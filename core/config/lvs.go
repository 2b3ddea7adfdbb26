package config

import (
	"fmt"
	"math"
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
	// maxPEName is the longest IPVS persistence engine name (IP_VS_PENAME_MAXLEN; keepalived
	// keeps it with its NUL in one byte more).
	maxPEName = 16
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
			f, ok := b.exact(l.Args[1], "inet", "inet6")
			if !ok {
				return e, false
			}
			e.Family = 4
			if f == "inet6" {
				e.Family = 6
			}
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
	if to.IsValid() && !sameButLast(from, to) {
		part, hint := "octet", "192.0.2.1-10"
		if from.Is6() {
			part, hint = "16-bit group", "2001:db8::1-a"
		}
		b.sink.errorf(l.Pos, "the range %s spans more than the last %s of the address", l.Name, part).Hint =
			fmt.Sprintf("keepalived 2.2.7 counts only the last %s up (a wider range never ends there): split it into lines such as %s", part, hint)
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

// sameButLast reports whether a and b differ at most in the last octet (IPv4) or the last
// 16-bit group (IPv6).
func sameButLast(a, b netip.Addr) bool {
	x, y := a.AsSlice(), b.AsSlice()
	n := len(x) - 1
	if a.Is6() {
		n--
	}
	return string(x[:n]) == string(y[:n])
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
	// method is the real server's own lvs_method; vsMethod the virtual server's lb_kind as it
	// stood where the block began.
	method    fwd
	vsMethod  fwd
	smtpAlert *bool
}

type pendingChecker struct {
	c   *Checker
	own inherited
}

// vsState is what keepalived knows of a virtual server while it reads the block: several
// keywords mean what the lines above them said (the scheduler for sh-port, the family for
// persistence_granularity, the forwarding method for a real server).
type vsState struct {
	vs *VirtualServer
	// family is 4 or 6 once the address, ip_family, or a real server that is not tunnelled
	// said it; 0 until then.
	family int
	// method is the lb_kind read so far ("" before any), with its tunnel.
	method fwd
	// sorryMethod is the sorry server's own sorry_server_lvs_method, when given; sorryAt
	// the lb_kind in force where the sorry_server line stands.
	sorryMethod fwd
	sorryAt     fwd
	smtpAlert   *bool
	// nodes are the block's statements, for hints that look further down.
	nodes []*Node
	// in is what the real servers inherit, as the block sets it.
	in inherited
	// pending are the real servers read, waiting for the settings of the whole block.
	pending []*pendingRS
}

// fwd is a forwarding method with its tunnel; the zero value is "not set".
type fwd struct {
	method string
	tunnel Tunnel
}

// virtualServerKeywords is what a virtual_server block takes, built once (see rules).
var virtualServerKeywords = rules[*vsState]{
	"lb_algo":     schedRule,
	"lvs_sched":   schedRule,
	"lb_kind":     vsMethodRule,
	"lvs_method":  vsMethodRule,
	"hashed":      schedFlagRule,
	"ops":         schedFlagRule,
	"flag-1":      schedFlagRule,
	"flag-2":      schedFlagRule,
	"flag-3":      schedFlagRule,
	"sh-port":     schedFlagRule,
	"sh-fallback": schedFlagRule,
	"mh-port":     schedFlagRule,
	"mh-fallback": schedFlagRule,
	"ip_family": {min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) {
		v, ok := b.exact(n.Args[0], "inet", "inet6")
		if !ok {
			return
		}
		f := 4
		if v == "inet6" {
			f = 6
		}
		if st.family != 0 && st.family != f {
			b.sink.errorf(n.Args[0].Pos, "ip_family %s conflicts with the IPv%d of %s", v, st.family, vsName(st.vs)).Hint =
				"remove the ip_family line, or make it match the service's addresses"
			return
		}
		st.family = f
	}},
	"persistence_engine": {min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) {
		t := n.Args[0]
		if len(t.Text) > maxPEName {
			b.sink.errorf(t.Pos, "persistence_engine %q is longer than %d bytes", t.Text, maxPEName).Hint =
				"IPVS persistence engines have short names, such as sip"
			return
		}
		st.vs.PersistEngine = t.Text
	}},
	"persistence_granularity": {min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) { b.granularity(st, n.Args[0]) }},
	"ha_suspend":              vsSetRule(func(st *vsState) { st.vs.HASuspend = true }),
	"smtp_alert":              smtpAlertRule(func(st *vsState) **bool { return &st.smtpAlert }),
	"sorry_server_inhibit": {fn: func(b *builder, st *vsState, n *Node) {
		if st.vs.SorryServer == nil {
			b.sink.errorf(n.Pos, "sorry_server_inhibit comes before any sorry_server").Hint =
				"keepalived ignores it there: put it after the sorry_server line"
			return
		}
		st.vs.SorryServer.InhibitOnFailure = true
	}},
	"sorry_server_lvs_method": {min: 1, max: -1, fn: func(b *builder, st *vsState, n *Node) {
		if st.vs.SorryServer == nil {
			b.sink.errorf(n.Pos, "sorry_server_lvs_method comes before any sorry_server").Hint =
				"keepalived ignores it there: put it after the sorry_server line"
			return
		}
		if f, ok := b.forwarding(n, "sorry"); ok {
			st.sorryMethod = f
		}
	}},
	"protocol": {min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) {
		if v, ok := b.enum(n.Args[0], "TCP", "UDP", "SCTP"); ok {
			st.vs.Protocol = v
		}
	}},
	"persistence_timeout": {max: 1, fn: func(b *builder, st *vsState, n *Node) {
		if len(n.Args) == 0 {
			st.vs.Persist = defaultPersistence
			return
		}
		if v, ok := b.int(n.Args[0], 1, int(maxPersistence/time.Second)); ok {
			st.vs.Persist = time.Duration(v) * time.Second
		}
	}},
	"quorum":             intRule(func(st *vsState) *int { return &st.vs.Quorum }, 1, 1<<31-1),
	"hysteresis":         intRule(func(st *vsState) *int { return &st.vs.Hysteresis }, 0, 1<<31-1),
	"quorum_up":          scriptRule(func(st *vsState) **Script { return &st.vs.QuorumUp }),
	"quorum_down":        scriptRule(func(st *vsState) **Script { return &st.vs.QuorumDown }),
	"alpha":              vsSetRule(func(st *vsState) { st.vs.Alpha = true }),
	"omega":              vsSetRule(func(st *vsState) { st.vs.Omega = true }),
	"virtualhost":        strRule(func(st *vsState) *string { return &st.vs.Virtualhost }),
	"connect_timeout":    optTimerRule(func(st *vsState) *opt[time.Duration] { return &st.in.connectTimeout }, time.Microsecond, maxCheckTimer),
	"inhibit_on_failure": vsSetRule(func(st *vsState) { st.in.inhibit = opt[bool]{true, true} }),
	"weight":             optIntRule(func(st *vsState) *opt[int] { return &st.in.weight }, 1, maxRSWeight),
	"sorry_server": {min: 1, max: 2, fn: func(b *builder, st *vsState, n *Node) {
		vs := st.vs
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
		st.sorryAt = st.method
	}},
	"real_server": {min: 1, max: 2, block: needBlock, fn: func(b *builder, st *vsState, n *Node) {
		if p := b.realServer(st, n); p != nil {
			st.pending = append(st.pending, p)
		}
	}},
}.with(retryTimingRules(func(st *vsState) *inherited { return &st.in }, 1)).with(rules[*vsState]{
	// The service's own delay_loop, which its real servers and checkers inherit once the
	// block is read.
	"delay_loop": {min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) {
		if v, ok := b.timer(n.Args[0], time.Microsecond, maxLoopTimer); ok {
			st.vs.DelayLoop = v
		}
	}},
})

// The rules that several virtual_server keywords share.
var (
	schedRule = rule[*vsState]{min: 1, max: 1, fn: func(b *builder, st *vsState, n *Node) {
		if v, ok := b.exact(n.Args[0], lvsSchedulers...); ok {
			st.vs.LBAlgo = v
		}
	}}
	vsMethodRule = rule[*vsState]{min: 1, max: -1, fn: func(b *builder, st *vsState, n *Node) {
		if f, ok := b.forwarding(n, "virtual"); ok {
			st.method = f
		}
	}}
	schedFlagRule = rule[*vsState]{fn: func(b *builder, st *vsState, n *Node) { b.schedFlag(st, n) }}
)

func (b *builder) virtualServer(n *Node) {
	vs := &VirtualServer{Pos: n.Pos, DelayLoop: defaultDelayLoop}
	st := &vsState{vs: vs, nodes: n.Block}
	// A bad head is reported, and the block is still read for the mistakes it holds.
	headOK := b.vsHead(vs, n)
	if vs.Addr.IsValid() {
		st.family = famOf(vs.Addr)
	}
	walkRules(b, "virtual_server", n.Block, virtualServerKeywords, st)
	in, pending := st.in, st.pending

	if vs.LBAlgo == "" {
		vs.LBAlgo = defaultScheduler
	}
	vs.LBKind, vs.Tunnel = st.method.method, st.method.tunnel
	if vs.LBKind == "" {
		vs.LBKind = defaultLBKind
	}
	if ss := vs.SorryServer; ss != nil {
		known := st.sorryMethod
		if known.method == "" {
			known = st.sorryAt
		}
		f := known
		if f.method == "" {
			f = fwd{vs.LBKind, vs.Tunnel}
		}
		ss.LVSMethod, ss.Tunnel = f.method, f.tunnel
		// keepalived: a sorry server that is not tunnelled says the family when nothing did.
		if known.method != "TUN" {
			if st.family == 0 {
				st.family = famOf(ss.Addr)
			} else if famOf(ss.Addr) != st.family {
				b.sink.errorf(ss.Pos, "sorry_server %s is IPv%d but %s is IPv%d", ss.Addr, famOf(ss.Addr), vsName(vs), st.family).Hint =
					"use a sorry server of the service's family, or TUN forwarding (which may cross families)"
				vs.SorryServer = nil
			}
		}
	}
	vs.Family = b.vsFamily(st, pending)
	if vs.Quorum == 0 {
		vs.Quorum = 1
	}
	if !headOK {
		return
	}
	if vs.FWMark != 0 && vs.Protocol != "" {
		b.sink.warnf(lastPlace(n.Block, "protocol"), "protocol is ignored for a fwmark service").Hint =
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
		b.resolveRS(st, p, in)
	}
	vs.SMTPAlert = b.vsSMTPAlert(st.smtpAlert)
	if !slices.ContainsFunc(n.Block, func(l *Node) bool { return l.Name == "real_server" }) {
		b.sink.warnf(n.Pos, "%s has no real_server; ignored, as keepalived does", vsName(vs)).Hint =
			"add a real_server ADDRESS PORT { ... } block"
	}
	if len(vs.RealServers) == 0 {
		return
	}
	b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
}

// vsSetRule is a virtual_server switch: keepalived 2.2.7 switches alpha, omega, ha_suspend
// and inhibit_on_failure on at this level whatever follows them ("alpha off" is on), so
// vigil does too, and says so when the word asks for the opposite.
func vsSetRule(set func(*vsState)) rule[*vsState] {
	return rule[*vsState]{max: 1, fn: func(b *builder, st *vsState, n *Node) {
		set(st)
		if len(n.Args) == 0 {
			return
		}
		if v, ok := b.boolArg(n); ok && !v {
			b.sink.warnf(n.Args[0].Pos, "keepalived switches %s on in a virtual_server whatever follows it; %q is ignored", n.Name, n.Args[0].Text).Hint =
				"remove the line to leave it off"
		}
	}}
}

// lastPlace is where the last statement called name stands in a block (zero without one).
func lastPlace(nodes []*Node, name string) Pos {
	for i := len(nodes) - 1; i >= 0; i-- {
		if nodes[i].Name == name {
			return nodes[i].Pos
		}
	}
	return Pos{}
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

// realServerKeywords is what a real_server block takes; a file may hold thousands of these
// blocks, so the table is built once (see rules).
var realServerKeywords = rules[*pendingRS]{
	"weight":             optIntRule(func(p *pendingRS) *opt[int] { return &p.own.weight }, 0, maxRSWeight),
	"inhibit_on_failure": optBoolRule(func(p *pendingRS) *opt[bool] { return &p.own.inhibit }),
	"lvs_method": {min: 1, max: -1, fn: func(b *builder, p *pendingRS, n *Node) {
		if f, ok := b.forwarding(n, "real"); ok {
			p.method = f
		}
	}},
	"uthreshold":      intRule(func(p *pendingRS) *int { return &p.rs.UThreshold }, 0, math.MaxUint32),
	"lthreshold":      intRule(func(p *pendingRS) *int { return &p.rs.LThreshold }, 0, math.MaxUint32),
	"smtp_alert":      smtpAlertRule(func(p *pendingRS) **bool { return &p.smtpAlert }),
	"alpha":           optBoolRule(func(p *pendingRS) *opt[bool] { return &p.own.alpha }),
	"notify_up":       scriptRule(func(p *pendingRS) **Script { return &p.rs.NotifyUp }),
	"notify_down":     scriptRule(func(p *pendingRS) **Script { return &p.rs.NotifyDown }),
	"connect_timeout": optTimerRule(func(p *pendingRS) *opt[time.Duration] { return &p.own.connectTimeout }, time.Microsecond, maxCheckTimer),
	"virtualhost":     optStrRule(func(p *pendingRS) *opt[string] { return &p.own.virtualhost }),
	"TCP_CHECK":       checkerRule("TCP_CHECK"),
	"HTTP_GET":        checkerRule("HTTP_GET"),
	"SSL_GET":         checkerRule("SSL_GET"),
	"MISC_CHECK":      checkerRule("MISC_CHECK"),
	"PLUGIN_CHECK":    checkerRule("PLUGIN_CHECK"),
}.with(retryTimingRules(func(p *pendingRS) *inherited { return &p.own }, 1))

// checkerRule reads a checker block of type typ into the real server's checkers.
func checkerRule(typ string) rule[*pendingRS] {
	return rule[*pendingRS]{block: needBlock, fn: func(b *builder, p *pendingRS, n *Node) {
		if c := b.checker(typ, n); c != nil {
			p.checkers = append(p.checkers, *c)
		}
	}}
}

func (b *builder) realServer(st *vsState, n *Node) *pendingRS {
	vs := st.vs
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
	p := &pendingRS{rs: rs, node: n, vsMethod: st.method}
	// A bad address is reported, and the block is still read for the mistakes it holds.
	walkRules(b, "virtual_server/real_server", n.Block, realServerKeywords, p)
	if !ok {
		return nil
	}
	// keepalived checks the family where the block ends, with the method known there: a
	// tunnelled real server may be of the other family.
	if m := p.methodHere(); m.method != "TUN" {
		switch f := famOf(rs.Addr); {
		case st.family == 0:
			st.family = f
		case f != st.family:
			b.sink.errorf(n.Args[0].Pos, "%s is IPv%d but %s is IPv%d", rsName(rs), f, vsName(vs), st.family).Hint =
				"use a real server of the service's family, or TUN forwarding (lvs_method TUN), which may cross families"
			return nil
		}
	}
	return p
}

// methodHere is the real server's forwarding method as keepalived knows it at the end of its
// block: its own lvs_method, else the lb_kind written above the block.
func (p *pendingRS) methodHere() fwd {
	if p.method.method != "" {
		return p.method
	}
	return p.vsMethod
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
func (b *builder) resolveRS(st *vsState, p *pendingRS, vsIn inherited) {
	vs := st.vs
	in := p.own.under(vsIn)
	rs := p.rs
	rs.Weight = in.weight.get(1)
	rs.InhibitOnFailure = in.inhibit.get(false)
	m := p.methodHere()
	if m.method == "" {
		m = fwd{vs.LBKind, vs.Tunnel}
	}
	rs.LVSMethod, rs.Tunnel = m.method, m.tunnel
	rs.SMTPAlert = b.rsSMTPAlert(p.smtpAlert)
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

// checkerBlock is a checker block being read: the checker with what it inherits, and the
// lines that the checks after the block look at.
type checkerBlock struct {
	pendingChecker
	// kind is the checker's type with its keywords.
	kind *checkerKind
	// user is MISC_CHECK's user line; pluginAt and paramsAt where PLUGIN_CHECK's plugin and
	// params stand.
	user               *Node
	pluginAt, paramsAt Pos
}

// checkerKind is what a checker of one type takes, and the context its diagnostics name.
type checkerKind struct {
	ctx string
	kws rules[*checkerBlock]
}

// The keywords of each checker, built once (see rules): every checker takes the retry and
// timing settings, all but MISC_CHECK the connection's, and each type its own.
var (
	checkerCommonKeywords = rules[*checkerBlock]{
		"alpha": optBoolRule(func(cb *checkerBlock) *opt[bool] { return &cb.own.alpha }),
	}.with(retryTimingRules(func(cb *checkerBlock) *inherited { return &cb.own }, 0))

	checkerConnectKeywords = checkerCommonKeywords.with(rules[*checkerBlock]{
		"connect_ip":      addrRule(func(cb *checkerBlock) *netip.Addr { return &cb.c.ConnectIP }),
		"connect_port":    intRule(func(cb *checkerBlock) *int { return &cb.c.ConnectPort }, 1, 65535),
		"bindto":          addrRule(func(cb *checkerBlock) *netip.Addr { return &cb.c.BindTo }),
		"bind_port":       intRule(func(cb *checkerBlock) *int { return &cb.c.BindPort }, 1, 65535),
		"connect_timeout": optTimerRule(func(cb *checkerBlock) *opt[time.Duration] { return &cb.own.connectTimeout }, time.Microsecond, maxCheckTimer),
	})

	checkerRetry = checkerCommonKeywords["retry"]

	httpGetKeywords = checkerConnectKeywords.with(rules[*checkerBlock]{
		"virtualhost": optStrRule(func(cb *checkerBlock) *opt[string] { return &cb.own.virtualhost }),
		"url": {block: needBlock, fn: func(b *builder, cb *checkerBlock, n *Node) {
			if u, ok := b.url(cb.kind.ctx, n); ok {
				cb.c.URLs = append(cb.c.URLs, u)
			}
		}},
		"nb_get_retry": {min: 1, max: 1, fn: func(b *builder, cb *checkerBlock, n *Node) {
			b.sink.warnf(n.Pos, "%q is deprecated; use \"retry\"", n.Name).Hint = "write: retry " + n.Arg(0)
			checkerRetry.fn(b, cb, n)
		}},
		"http_protocol": {min: 1, max: 1, fn: func(b *builder, cb *checkerBlock, n *Node) {
			if v, ok := b.enum(n.Args[0], "1.0", "1.0C", "1.1"); ok {
				cb.c.HTTPProtocol = v
			}
		}},
	})

	checkerKinds = map[string]*checkerKind{
		"TCP_CHECK": {"virtual_server/real_server/TCP_CHECK", checkerConnectKeywords},
		"HTTP_GET":  {"virtual_server/real_server/HTTP_GET", httpGetKeywords},
		"SSL_GET": {"virtual_server/real_server/SSL_GET", httpGetKeywords.with(rules[*checkerBlock]{
			"enable_sni": flagRule(func(cb *checkerBlock) *bool { return &cb.c.EnableSNI }),
			"sni_name":   strRule(func(cb *checkerBlock) *string { return &cb.c.SNIName }),
		})},
		"MISC_CHECK": {"virtual_server/real_server/MISC_CHECK", checkerCommonKeywords.with(rules[*checkerBlock]{
			"misc_path": {min: 1, max: -1, fn: func(b *builder, cb *checkerBlock, n *Node) { cb.c.MiscPath = b.miscPath(n) }},
			"misc_timeout": {min: 1, max: 1, fn: func(b *builder, cb *checkerBlock, n *Node) {
				if v, ok := b.int(n.Args[0], 0, maxMiscTimeout); ok {
					cb.c.MiscTimeout = time.Duration(v) * time.Second
				}
			}},
			"misc_dynamic": flagRule(func(cb *checkerBlock) *bool { return &cb.c.MiscDynamic }),
			"user":         {min: 1, max: 2, fn: func(_ *builder, cb *checkerBlock, n *Node) { cb.user = n }},
		})},
		"PLUGIN_CHECK": {"virtual_server/real_server/PLUGIN_CHECK", checkerConnectKeywords.with(rules[*checkerBlock]{
			"check":  strRule(func(cb *checkerBlock) *string { return &cb.c.Check }),
			"plugin": {min: 1, max: 1, fn: func(_ *builder, cb *checkerBlock, n *Node) { cb.c.Plugin, cb.pluginAt = n.Arg(0), n.Pos }},
			"params": {block: needBlock, fn: func(_ *builder, cb *checkerBlock, n *Node) { cb.c.Params, cb.paramsAt = paramsOf(n.Block), n.Pos }},
		})},
	}
)

// checker reads a checker block of type typ (one of checkerKinds).
func (b *builder) checker(typ string, n *Node) *pendingChecker {
	c := &Checker{Type: typ, Pos: n.Pos}
	cb := &checkerBlock{pendingChecker: pendingChecker{c: c}, kind: checkerKinds[typ]}
	walkRules(b, cb.kind.ctx, n.Block, cb.kind.kws, cb)
	ok := true
	switch typ {
	case "HTTP_GET", "SSL_GET":
		if len(c.URLs) == 0 {
			b.sink.errorf(n.Pos, "%s has no url to check", typ).Hint = "add: url { path / }"
			ok = false
		}
	case "MISC_CHECK":
		if c.MiscPath == nil {
			b.sink.errorf(n.Pos, "MISC_CHECK has no misc_path").Hint = "add: misc_path \"/path/to/check arg\""
			ok = false
		} else if cb.user != nil {
			c.MiscPath.User, c.MiscPath.Group = splitUserGroup(cb.user)
		}
	case "PLUGIN_CHECK":
		switch {
		case c.Check != "" && c.Plugin != "":
			b.sink.errorf(cb.pluginAt, "PLUGIN_CHECK names both a check (%q) and a plugin (%q)", c.Check, c.Plugin).Hint =
				"use either \"check NAME\" for a vrrp_check, or \"plugin NAME\" with params { ... }, not both"
			ok = false
		case c.Check == "" && c.Plugin == "":
			b.sink.errorf(n.Pos, "PLUGIN_CHECK names neither a check nor a plugin").Hint =
				"add \"check NAME\" (a vrrp_check) or \"plugin NAME\" with params { ... }"
			ok = false
		case c.Check != "" && cb.paramsAt.Line != 0:
			b.sink.errorf(cb.paramsAt, "params belong to the vrrp_check %q, not to PLUGIN_CHECK", c.Check).Hint =
				"move the params block into vrrp_check " + c.Check + ", or use \"plugin NAME\" instead of \"check\""
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return &cb.pendingChecker
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

// urlKeywords is what a checker's url block takes, built once (see rules).
var urlKeywords = rules[*URL]{
	"path": strRule(func(u *URL) *string { return &u.Path }),
	"digest": {min: 1, max: 1, fn: func(b *builder, u *URL, n *Node) {
		t := n.Args[0]
		if !isMD5(t.Text) {
			b.sink.errorf(t.Pos, "digest %q is not an MD5 digest", t.Text).Hint =
				"digest is the MD5 of the page body as printed by genhash: 32 hex digits"
			return
		}
		u.Digest = strings.ToLower(t.Text)
	}},
	"status_code": {min: 1, max: -1, fn: func(b *builder, u *URL, n *Node) {
		for _, a := range n.Args {
			if r, ok := b.statusRange(a); ok {
				u.StatusCodes = append(u.StatusCodes, r)
			}
		}
	}},
	"virtualhost":    strRule(func(u *URL) *string { return &u.Virtualhost }),
	"regex":          strRule(func(u *URL) *string { return &u.Regex }),
	"regex_no_match": flagRule(func(u *URL) *bool { return &u.RegexNoMatch }),
	"regex_options": {min: 1, max: -1, fn: func(_ *builder, u *URL, n *Node) {
		u.RegexOptions = append(u.RegexOptions, n.Words()...)
	}},
}

func (b *builder) url(ctx string, n *Node) (URL, bool) {
	u := URL{Pos: n.Pos}
	walkRules(b, ctx+"/url", n.Block, urlKeywords, &u)
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
	b.validateSyncDaemon()
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
	// Only a diagnostic needs the index, and most files give none: build it on first use.
	var index map[Pos]*Node
	node := func(p Pos) *Node {
		if index == nil {
			index = b.lvsNodes()
		}
		return index[p]
	}

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
				if n := node(vs.Pos); n != nil && len(n.Args) > 1 {
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
		b.validateVSFlags(vs, groups[vs.Group], node)
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
				if n := node(c.Pos); n != nil {
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

// validateVSFlags checks the settings keepalived 2.2.7 drops, with a warning, for some kinds
// of service: ops on TCP or SCTP, ha_suspend on fwmarks, persistence_granularity on a group;
// and the ports IPVS will not use.
func (b *builder) validateVSFlags(vs *VirtualServer, g *VirtualServerGroup, node func(Pos) *Node) {
	at := func(kw string) Pos {
		if n := node(vs.Pos); n != nil {
			for _, l := range n.Block {
				if l.Name == kw {
					return l.Pos
				}
			}
		}
		return vs.Pos
	}
	if g != nil && vs.Persist == 0 {
		if i := slices.IndexFunc(g.Entries, func(e VSGEntry) bool { return e.FWMark == 0 && e.Port == 0 }); i >= 0 {
			b.sink.warnf(vs.Pos, "%s is not persistent, but its group's entry at %s has no port; persistence_timeout is %ss, as keepalived sets it", vsName(vs), g.Entries[i].Pos, seconds(defaultPersistence)).Hint =
				"give every address of the group a port, or set persistence_timeout"
			vs.Persist = defaultPersistence
		}
	}
	hasAddrs := (g == nil && vs.FWMark == 0) || (g != nil && !onlyFWMarks(g))
	hasFWMarks := vs.FWMark != 0 || (g != nil && slices.ContainsFunc(g.Entries, func(e VSGEntry) bool { return e.FWMark != 0 }))
	if vs.OPS && hasAddrs && vs.Protocol != "UDP" {
		b.sink.warnf(at("ops"), "ops (one-packet scheduling) needs UDP, and %s is %s; ignored, as keepalived does", vsName(vs), vs.Protocol).Hint =
			"remove ops, or use protocol UDP"
		vs.OPS = false
	}
	if vs.HASuspend && hasFWMarks {
		b.sink.warnf(at("ha_suspend"), "ha_suspend cannot follow a fwmark service (it has no address to watch); ignored, as keepalived does").Hint =
			"remove ha_suspend; to program the service only on the master, use an address service"
		vs.HASuspend = false
	}
	if vs.HASuspend {
		b.checkHASuspend(vs, g, at("ha_suspend"))
	}
	if vs.Group != "" && vs.PersistMask.IsValid() {
		b.sink.warnf(at("persistence_granularity"), "persistence_granularity has no effect on a virtual_server group: keepalived 2.2.7 programs each of its services with the full mask; ignored").Hint =
			"remove it, or write the services as separate virtual_server blocks"
		vs.PersistMask = netip.Addr{}
	}
	for _, rs := range vs.RealServers {
		if rs.LVSMethod == "NAT" || rs.Port == 0 {
			continue
		}
		if g != nil {
			if slices.ContainsFunc(g.Entries, func(e VSGEntry) bool { return e.FWMark != 0 || e.Port != rs.Port }) {
				b.sink.warnf(rs.Pos, "%s uses %s, which cannot change the port: IPVS forwards to the port of each service of group %s, not %d", rsName(rs), rs.LVSMethod, vs.Group, rs.Port).Hint =
					"remove its port, or use lvs_method NAT to rewrite the port; the checkers still connect to the port written"
			}
			continue
		}
		if vs.FWMark != 0 {
			b.sink.warnf(rs.Pos, "%s uses %s in a fwmark service: IPVS ignores its port", rsName(rs), rs.LVSMethod).Hint =
				"the checkers still connect to that port; IPVS forwards each packet to the port it was sent to"
		} else if rs.Port != vs.Port && vs.Port != 0 {
			b.sink.warnf(rs.Pos, "%s uses %s, which cannot change the port: IPVS forwards to port %d, not %d", rsName(rs), rs.LVSMethod, vs.Port, rs.Port).Hint =
				"give it the service's port, or use lvs_method NAT to rewrite the port; the checkers still connect to the port written"
		}
	}
}

// checkHASuspend warns when no address of an ha_suspend service is one this file ever puts
// on the host: keepalived then runs its checkers only if the address comes some other way.
func (b *builder) checkHASuspend(vs *VirtualServer, g *VirtualServerGroup, pos Pos) {
	var addrs []netip.Addr
	if g == nil {
		addrs = append(addrs, vs.Addr)
	} else {
		for _, e := range g.Entries {
			addrs = append(addrs, e.Addrs()...)
		}
	}
	held := func(a netip.Addr) bool {
		vis, static := b.cfg.AddressHolders(a)
		return static || len(vis) > 0
	}
	if slices.ContainsFunc(addrs, held) {
		return
	}
	b.sink.warnf(pos, "ha_suspend: no vrrp_instance or static_ipaddress of this file holds the address of %s", vsName(vs)).Hint =
		"its checkers run only while the address is on an interface of this host; add it to the virtual_ipaddress of the vrrp_instance that owns it"
}

// validateSyncDaemon checks the vrrp_instance lvs_sync_daemon names and gives the sync id
// its default, the instance's virtual_router_id.
func (b *builder) validateSyncDaemon() {
	sd := b.cfg.Global.LVSSyncDaemon
	if sd == nil || sd.Instance == "" {
		return
	}
	var names []string
	for _, vi := range b.cfg.Instances {
		if vi.Name == sd.Instance {
			if !sd.HasSyncID {
				sd.SyncID = vi.VRID
			}
			return
		}
		names = append(names, vi.Name)
	}
	d := b.sink.errorf(sd.InstancePos, "lvs_sync_daemon names vrrp_instance %q, which is not defined", sd.Instance)
	switch s := suggest(sd.Instance, names); {
	case s != "":
		d.Hint = fmt.Sprintf("did you mean %q? (keepalived would run without the sync daemon)", s)
	case len(names) > 0:
		d.Hint = "name one of: " + strings.Join(names, ", ") + " (keepalived would run without the sync daemon)"
	default:
		d.Hint = "define the vrrp_instance whose master runs the master sync daemon, or remove the name to run both daemons all the time"
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
		family   int
	}
	have4, have6, noFamily := false, false, false
	for _, e := range g.Entries {
		switch {
		case e.FWMark != 0 && e.Family == 0:
			noFamily = true
		case e.Family == 4 || e.Addr.Is4():
			have4 = true
		case e.Family == 6 || e.Addr.Is6():
			have6 = true
		}
	}
	if have4 && have6 && noFamily {
		b.sink.errorf(g.Pos, "virtual_server_group %q has IPv4 and IPv6 entries and a fwmark without a family", g.Name).Hint =
			"keepalived cannot tell which family the fwmark service is, and drops the group: write fwmark N inet (or inet6)"
	}
	seen := map[key]Pos{}
	for _, e := range g.Entries {
		k := key{e.Addr, e.RangeTo, e.Port, e.FWMark, e.Family}
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

// famOf is 4 or 6.
func famOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// exact reads one of vals spelt exactly as keepalived compares it (case matters there: "tun"
// or "RR" is refused and the setting left at its default, so vigil refuses it too).
func (b *builder) exact(t Token, vals ...string) (string, bool) {
	if slices.Contains(vals, t.Text) {
		return t.Text, true
	}
	d := b.sink.errorf(t.Pos, "%q is not one of %s", t.Text, strings.Join(vals, ", "))
	for _, v := range vals {
		if strings.EqualFold(v, t.Text) {
			d.Hint = fmt.Sprintf("write %q: keepalived takes only that spelling", v)
			return "", false
		}
	}
	if s := suggest(t.Text, vals); s != "" {
		d.Hint = fmt.Sprintf("did you mean %q?", s)
	}
	return "", false
}

// forwarding reads "NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]", the
// value of lb_kind, lvs_method and sorry_server_lvs_method, with keepalived 2.2.7's rules.
func (b *builder) forwarding(n *Node, what string) (fwd, bool) {
	m, ok := b.exact(n.Args[0], "NAT", "DR", "TUN")
	if !ok {
		return fwd{}, false
	}
	t := Tunnel{Type: "ipip", Checksum: "nocsum"}
	args := n.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a.Text {
		case "type", "port":
			if i+1 == len(args) {
				d := b.sink.errorf(a.Pos, "%q of %s needs a value", a.Text, n.Name)
				d.Hint = "write: " + n.Name + " TUN type gue port 6080"
				return fwd{}, false
			}
			i++
			if a.Text == "type" {
				v, ok := b.exact(args[i], "ipip", "gue", "gre")
				if !ok {
					return fwd{}, false
				}
				t.Type = v
			} else {
				v, ok := b.port(args[i])
				if !ok {
					return fwd{}, false
				}
				t.Port = v
			}
		case "nocsum", "csum", "remcsum":
			t.Checksum = a.Text
		default:
			b.sink.errorf(a.Pos, "unknown tunnel option %q of %s", a.Text, n.Name).Hint =
				"after TUN come: type ipip|gue|gre, port N (gue only), nocsum|csum|remcsum"
			return fwd{}, false
		}
	}
	switch {
	case t.Type == "gue" && t.Port == 0:
		b.sink.errorf(n.Pos, "a gue tunnel needs a port").Hint = "write: " + n.Name + " TUN type gue port 6080"
		return fwd{}, false
	case t.Type != "gue" && t.Port != 0:
		b.sink.errorf(n.Pos, "port is for gue tunnels only; this one is %s", t.Type).Hint = "add \"type gue\", or remove the port"
		return fwd{}, false
	case t.Type == "ipip" && t.Checksum != "nocsum":
		b.sink.errorf(n.Pos, "ipip tunnels have no checksum option (%s)", t.Checksum).Hint = "use type gue or gre for checksums, or remove " + t.Checksum
		return fwd{}, false
	case t.Type == "gre" && t.Checksum == "remcsum":
		b.sink.errorf(n.Pos, "gre tunnels have no remote checksum (remcsum)").Hint = "use csum or nocsum with gre, or type gue"
		return fwd{}, false
	}
	if m != "TUN" {
		if len(args) > 0 {
			b.sink.warnf(args[0].Pos, "tunnel options of the %s server's %s apply only to TUN; ignored", what, m).Hint =
				"remove them, or write " + n.Name + " TUN ..."
		}
		return fwd{method: m}, true
	}
	return fwd{method: m, tunnel: t}, true
}

// schedFlag reads the scheduler flag keywords. As in keepalived 2.2.7, sh-* and mh-* depend on
// the scheduler set by the lines above them.
func (b *builder) schedFlag(st *vsState, n *Node) {
	vs := st.vs
	switch n.Name {
	case "ops":
		vs.OPS = true
		return
	case "flag-1":
		vs.SchedFlag1 = true
		return
	case "flag-2":
		vs.SchedFlag2 = true
		return
	case "flag-3":
		vs.SchedFlag3 = true
		return
	}
	sched := vs.LBAlgo
	if sched == "sh" || sched == "mh" {
		switch n.Name {
		case sched + "-port":
			vs.SchedFlag2 = true
		case sched + "-fallback":
			vs.SchedFlag1 = true
		case "hashed":
			b.sink.warnf(n.Pos, "hashed has no effect; ignored, as keepalived does").Hint = "the kernel hashes every service; remove the line"
		default:
			other := strings.Replace(n.Name, n.Name[:2], sched, 1)
			b.sink.warnf(n.Pos, "%s has no effect with the %s scheduler; ignored, as keepalived does", n.Name, sched).Hint =
				fmt.Sprintf("did you mean %s?", other)
		}
		return
	}
	if n.Name == "hashed" {
		b.sink.warnf(n.Pos, "hashed has no effect; ignored, as keepalived does").Hint = "the kernel hashes every service; remove the line"
		return
	}
	want := n.Name[:2]
	now := "not set yet"
	if sched != "" {
		now = sched
	}
	d := b.sink.errorf(n.Pos, "%s applies only to the %s scheduler, and lb_algo is %s at this line", n.Name, want, now)
	d.Hint = fmt.Sprintf("set lb_algo %s above this line, or remove it", want)
	for _, l := range st.nodes {
		if l.Pos.Line > n.Pos.Line && (l.Name == "lb_algo" || l.Name == "lvs_sched") && l.Arg(0) == want {
			d.Hint = fmt.Sprintf("keepalived reads the lines in order and ignores this one: move %q (line %d) above it", l.Name+" "+want, l.Pos.Line)
		}
	}
}

// granularity reads persistence_granularity: a netmask for an IPv4 service, a prefix length
// for an IPv6 one. As in keepalived, the family is the one known at this line, else the
// value's form says it; and the service becomes persistent (360s) if it was not.
func (b *builder) granularity(st *vsState, t Token) {
	fam := st.family
	if fam == 0 {
		fam = 6
		if strings.Contains(t.Text, ".") {
			fam = 4
		}
	}
	var mask netip.Addr
	if fam == 6 {
		if strings.Contains(t.Text, ".") {
			b.sink.errorf(t.Pos, "persistence_granularity %s is an IPv4 netmask, but %s is IPv6", t.Text, vsName(st.vs)).Hint =
				"an IPv6 service takes a prefix length from 1 to 128, e.g. persistence_granularity 64"
			return
		}
		v, ok := b.int(t, 1, 128)
		if !ok {
			return
		}
		mask = prefixMask(128, v)
	} else {
		a, err := netip.ParseAddr(t.Text)
		if err != nil || !a.Is4() {
			d := b.sink.errorf(t.Pos, "persistence_granularity %q is not an IPv4 netmask", t.Text)
			d.Hint = "an IPv4 service takes a netmask such as 255.255.255.0"
			if v, err := strconv.Atoi(t.Text); err == nil && v >= 1 && v <= 32 {
				d.Hint = fmt.Sprintf("did you mean %s (/%d)? an IPv4 service takes a netmask", prefixMask(32, v), v)
			}
			return
		}
		mask = a
	}
	st.vs.PersistMask = mask
	if st.family == 0 {
		st.family = fam
	}
	if st.vs.Persist == 0 {
		st.vs.Persist = defaultPersistence
	}
}

// prefixMask is the netmask of a prefix length, for a family of bits bits.
func prefixMask(bits, ones int) netip.Addr {
	raw := make([]byte, bits/8)
	for i := 0; i < ones; i++ {
		raw[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(raw)
	return a
}

// vsFamily is the family of a virtual server that is not a group's, as keepalived 2.2.7
// settles it: what was known while reading, else (a fwmark service whose servers are all
// tunnelled) the family its sorry and real servers share, else IPv4.
func (b *builder) vsFamily(st *vsState, pending []*pendingRS) int {
	if st.family != 0 {
		return st.family
	}
	if st.vs.Group != "" {
		return 4 // what keepalived gives a fwmark entry of the group written without a family
	}
	fam := 0
	var addrs []netip.Addr
	if st.vs.SorryServer != nil {
		addrs = append(addrs, st.vs.SorryServer.Addr)
	}
	for _, p := range pending {
		addrs = append(addrs, p.rs.Addr)
	}
	for _, a := range addrs {
		switch {
		case fam == 0:
			fam = famOf(a)
		case fam != famOf(a):
			return 4
		}
	}
	if fam == 0 {
		return 4
	}
	return fam
}

// vsSMTPAlert and rsSMTPAlert resolve smtp_alert as keepalived 2.2.7 does: the block's own,
// else global_defs smtp_alert_checker, else smtp_alert; a real server defaults to on.
func (b *builder) vsSMTPAlert(own *bool) bool { return b.checkerSMTPAlert(own, false) }
func (b *builder) rsSMTPAlert(own *bool) bool { return b.checkerSMTPAlert(own, true) }

func (b *builder) checkerSMTPAlert(own *bool, def bool) bool {
	g := &b.cfg.Global
	for _, v := range []*bool{own, g.SMTPAlertChecker, g.SMTPAlert} {
		if v != nil {
			return *v
		}
	}
	return def
}

// --- global_defs ------------------------------------------------------------------------

// maxLVSTimeout is keepalived's LVS_MAX_TIMEOUT: 31 days, for lvs_timeouts and persistence.
const maxLVSTimeout = 31 * 86400

// lvsGlobalKeywords are the LVS settings of global_defs.
func (b *builder) lvsGlobalKeywords(g *Global) keywords {
	flushOnStop := kw{max: 1, fn: func(n *Node) {
		if n.Name == "lvs_flush_onstop" {
			b.sink.warnf(n.Pos, "%q is a deprecated spelling", n.Name).Hint = "write lvs_flush_on_stop"
		}
		if len(n.Args) == 0 {
			g.LVSFlushOnStop = "full"
			return
		}
		if _, ok := b.exact(n.Args[0], "VS"); ok {
			g.LVSFlushOnStop = "VS"
		}
	}}
	return keywords{
		"lvs_flush":         setKw(&g.LVSFlush),
		"lvs_flush_on_stop": flushOnStop,
		"lvs_flush_onstop":  flushOnStop,
		"lvs_timeouts":      {min: 2, max: -1, fn: func(n *Node) { b.lvsTimeouts(&g.LVSTimeouts, n) }},
		"lvs_sync_daemon":   {min: 1, max: -1, fn: func(n *Node) { b.lvsSyncDaemon(g, n) }},
		"rs_init_notifies":  b.flagKw(&g.RSInitNotifies),
	}
}

// lvsTimeouts reads "lvs_timeouts [tcp N] [tcpfin N] [udp N]".
func (b *builder) lvsTimeouts(t *LVSTimeouts, n *Node) {
	t.Pos = n.Pos
	for i := 0; i < len(n.Args); i++ {
		a := n.Args[i]
		var p *time.Duration
		switch a.Text {
		case "tcp":
			p = &t.TCP
		case "tcpfin":
			p = &t.TCPFin
		case "udp":
			p = &t.UDP
		default:
			d := b.sink.errorf(a.Pos, "unknown lvs_timeouts option %q", a.Text)
			d.Hint = "write: lvs_timeouts tcp 900 tcpfin 120 udp 300 (seconds, any of the three)"
			if s := suggest(a.Text, []string{"tcp", "tcpfin", "udp"}); s != "" {
				d.Hint = fmt.Sprintf("did you mean %q?", s)
			}
			continue
		}
		if i+1 == len(n.Args) {
			b.sink.errorf(a.Pos, "lvs_timeouts %s needs a number of seconds", a.Text).Hint = "write: lvs_timeouts " + a.Text + " 300"
			continue
		}
		i++
		if v, ok := b.int(n.Args[i], 0, maxLVSTimeout); ok {
			*p = time.Duration(v) * time.Second
		}
	}
}

// maxIfName is the longest interface name IPVS's sync daemon takes (IP_VS_IFNAME_MAXLEN less
// its NUL).
const maxIfName = 15

// lvsSyncDaemon reads "lvs_sync_daemon INTERFACE [VRRP_INSTANCE] [id N] [maxlen N] [port N]
// [ttl N] [group ADDR]", with keepalived 2.2.7's older forms: "inst NAME" for the instance,
// and a bare third word as the sync id (deprecated there).
func (b *builder) lvsSyncDaemon(g *Global, n *Node) {
	if g.LVSSyncDaemon != nil {
		b.sink.errorf(n.Pos, "lvs_sync_daemon is already set at %s", g.LVSSyncDaemon.Pos).Hint =
			"keepalived runs one sync daemon and ignores this line: remove one of them"
		return
	}
	ifname := n.Args[0]
	if len(ifname.Text) > maxIfName {
		b.sink.errorf(ifname.Pos, "interface name %q is longer than %d bytes", ifname.Text, maxIfName)
		return
	}
	sd := &SyncDaemon{Interface: ifname.Text, Pos: n.Pos}
	args := n.Args[1:]
	instAt := Pos{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (Token, bool) {
			if i+1 == len(args) {
				b.sink.errorf(a.Pos, "lvs_sync_daemon %s needs a value", a.Text).Hint =
					"write: lvs_sync_daemon " + sd.Interface + " VI_1 id 1 maxlen 1400 port 8848 ttl 1 group 224.0.0.81"
				return Token{}, false
			}
			i++
			return args[i], true
		}
		switch a.Text {
		case "inst":
			if v, ok := value(); ok {
				if sd.Instance != "" {
					b.sink.errorf(a.Pos, "lvs_sync_daemon names its vrrp_instance twice (%s and %s)", sd.Instance, v.Text)
					continue
				}
				sd.Instance, instAt = v.Text, v.Pos
			}
		case "id":
			if v, ok := value(); ok {
				if id, ok := b.int(v, 0, 255); ok {
					sd.SyncID, sd.HasSyncID = id, true
				}
			}
		case "maxlen":
			if v, ok := value(); ok {
				sd.MaxLen, _ = b.int(v, 1, 65535-20-8)
			}
		case "port":
			if v, ok := value(); ok {
				sd.Port, _ = b.port(v)
			}
		case "ttl":
			if v, ok := value(); ok {
				sd.TTL, _ = b.int(v, 1, 255)
			}
		case "group":
			if v, ok := value(); ok {
				if addr, ok := b.addr(v); ok {
					if !addr.IsMulticast() {
						b.sink.errorf(v.Pos, "lvs_sync_daemon group %s is not a multicast address", addr).Hint =
							"use a multicast group such as 224.0.0.81 (the kernel's default) or ff02::81"
					} else {
						sd.Group = addr
					}
				}
			}
		default:
			switch {
			case i == 0:
				sd.Instance, instAt = a.Text, a.Pos
			case i == 1:
				if id, ok := b.int(a, 0, 255); ok {
					sd.SyncID, sd.HasSyncID = id, true
					b.sink.warnf(a.Pos, "a sync id without \"id\" is a deprecated form").Hint = "write: id " + a.Text
				}
			default:
				b.sink.errorf(a.Pos, "unknown lvs_sync_daemon option %q", a.Text).Hint =
					"after the interface and the vrrp_instance come: id N, maxlen N, port N, ttl N, group ADDR"
			}
		}
	}
	sd.InstancePos = instAt
	g.LVSSyncDaemon = sd
}

// syncDaemonInterfaceKw is a vrrp_instance's lvs_sync_daemon_interface, deprecated in
// keepalived since 1.2.19 for global_defs lvs_sync_daemon: the sync daemon on that interface,
// driven by this instance.
func (b *builder) syncDaemonInterfaceKw(vi *VRRPInstance) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		g := &b.cfg.Global
		if g.LVSSyncDaemon != nil {
			b.sink.errorf(n.Pos, "lvs_sync_daemon is already set at %s", g.LVSSyncDaemon.Pos).Hint =
				"keepalived runs one sync daemon and ignores this line: remove it"
			return
		}
		ifname := n.Args[0]
		if len(ifname.Text) > maxIfName {
			b.sink.errorf(ifname.Pos, "interface name %q is longer than %d bytes", ifname.Text, maxIfName)
			return
		}
		b.sink.warnf(n.Pos, "lvs_sync_daemon_interface is deprecated").Hint =
			fmt.Sprintf("write in global_defs: lvs_sync_daemon %s %s", ifname.Text, vi.Name)
		g.LVSSyncDaemon = &SyncDaemon{Interface: ifname.Text, Instance: vi.Name, InstancePos: vi.Pos, Pos: n.Pos}
	}}
}
