package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults of the bgp and announce blocks (docs/bgp.md).
const (
	defaultBGPHoldTime         = 90 * time.Second
	defaultBGPConnectRetry     = 5 * time.Second
	defaultBGPGracefulShutdown = 3 * time.Second
	// maxTCPMD5Key is TCP_MD5SIG_MAXKEYLEN: Linux refuses a longer key, so the speaker
	// could never open the session.
	maxTCPMD5Key = 80
)

// bgpBlock reads global_defs' bgp block.
func (b *builder) bgpBlock(n *Node) {
	g := &b.cfg.Global
	if g.BGP != nil {
		b.sink.errorf(n.Pos, "bgp is given twice; the first is at %s", g.BGP.Pos).Hint = "keep one bgp block and put every neighbor in it"
		return
	}
	bg := &BGP{Pos: n.Pos, GracefulShutdown: defaultBGPGracefulShutdown}
	g.BGP = bg
	bg.Places = b.walk("global_defs/bgp", n.Block, keywords{
		"local_as": {min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.asNumber(n.Args[0]); ok {
				bg.LocalAS = v
			}
		}},
		"router_id": {min: 1, max: 1, fn: func(n *Node) {
			a, ok := b.addr(n.Args[0])
			if !ok {
				return
			}
			if !a.Is4() {
				b.sink.errorf(n.Args[0].Pos, "router_id %s is not an IPv4 address", a).Hint =
					"a BGP identifier is 32 bits written as IPv4: use one of this node's IPv4 addresses"
				return
			}
			bg.RouterID = a
		}},
		"graceful_shutdown": b.secondsKw(&bg.GracefulShutdown, 0, int(MaxGracefulShutdown/time.Second)),
		"neighbor":          {min: 1, max: 1, block: needBlock, fn: func(n *Node) { b.bgpNeighbor(bg, n) }},
	})
	if _, ok := bg.Places["local_as"]; !ok {
		b.sink.errorf(n.Pos, "bgp has no local_as").Hint = "add: local_as N, this node's AS number (a private one is 64512 to 65534)"
	}
}

// bgpNeighbor reads one "neighbor ADDR { ... }" of the bgp block.
func (b *builder) bgpNeighbor(bg *BGP, n *Node) {
	nb := &BGPNeighbor{Pos: n.Pos, HoldTime: defaultBGPHoldTime, ConnectRetry: defaultBGPConnectRetry}
	addrOK := false
	nb.Address, addrOK = b.neighborAddr(n.Args[0])
	nb.Places = b.walk("global_defs/bgp/neighbor", n.Block, keywords{
		"remote_as": {min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.asNumber(n.Args[0]); ok {
				nb.RemoteAS = v
			}
		}},
		"password": {min: 1, max: 1, fn: func(n *Node) {
			if l := len(n.Args[0].Text); l > maxTCPMD5Key {
				b.sink.errorf(n.Args[0].Pos, "password is %d bytes long; a TCP MD5 key has at most %d", l, maxTCPMD5Key).Hint =
					"use a shorter password, the same on the router"
				return
			}
			nb.Password = n.Args[0].Text
		}},
		"hold_time": {min: 1, max: 1, fn: func(n *Node) {
			v, ok := b.int(n.Args[0], 0, 65535)
			if !ok {
				return
			}
			switch v {
			case 0:
				// GoBGP, the speaker, takes 0 as "unset" and offers 90 s; and a session
				// without keepalives would never notice a dead router.
				b.sink.errorf(n.Args[0].Pos, "hold_time 0 is not allowed: use 3 to 65535").Hint =
					"vigil always sends keepalives; leave hold_time out for the default of 90"
				return
			case 1, 2:
				// RFC 4271 4.2: a hold time of one or two seconds is refused by the peer.
				b.sink.errorf(n.Args[0].Pos, "hold_time %d is not allowed: use 3 to 65535", v).Hint =
					"RFC 4271 forbids 1 and 2; routers close a session that offers them"
				return
			}
			nb.HoldTime = time.Duration(v) * time.Second
		}},
		"connect_retry": b.secondsKw(&nb.ConnectRetry, 1, 3600),
		"ebgp_multihop": b.intKw(&nb.Multihop, 1, 255),
		"bfd":           b.flagKw(&nb.BFD),
	})
	if _, ok := nb.Places["remote_as"]; !ok {
		b.sink.errorf(n.Pos, "neighbor %s has no remote_as", n.Arg(0)).Hint = "add: remote_as N, the router's AS number (the same as local_as for iBGP)"
	}
	if !addrOK {
		return
	}
	for _, prev := range bg.Neighbors {
		if prev.Address == nb.Address {
			b.sink.errorf(n.Pos, "neighbor %s is already defined at %s", nb.Address, prev.Pos).Hint = "keep one neighbor block per router address"
			return
		}
	}
	bg.Neighbors = append(bg.Neighbors, nb)
}

// neighborAddr reads a neighbor's address: a plain IPv4 or IPv6 address, since BGP always
// speaks to TCP port 179 of one host.
func (b *builder) neighborAddr(t Token) (netip.Addr, bool) {
	s := t.Text
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil && a.Zone() != "":
		b.sink.errorf(t.Pos, "neighbor %q has a zone; vigil peers with global addresses only", s).Hint =
			"use the router's global (or IPv4) address"
		return netip.Addr{}, false
	case err == nil && a.Is4In6():
		b.sink.errorf(t.Pos, "neighbor %s is an IPv4 address written as IPv6", s).Hint =
			fmt.Sprintf("write it as %s: the session, and the routes it carries, are IPv4", a.Unmap())
		return netip.Addr{}, false
	case err == nil && (a.IsUnspecified() || a.IsMulticast()):
		b.sink.errorf(t.Pos, "neighbor %s is not the address of a router", s).Hint = "write the router's own address, e.g. 198.51.100.1"
		return netip.Addr{}, false
	case err == nil:
		return a, true
	}
	d := b.sink.errorf(t.Pos, "neighbor %q is not an IP address", s)
	if _, perr := netip.ParsePrefix(s); perr == nil {
		d.Hint = "write the router's address without a prefix length"
	} else if ap, aerr := netip.ParseAddrPort(s); aerr == nil {
		d.Hint = fmt.Sprintf("write the address alone (%s): BGP always uses TCP port 179", ap.Addr())
	} else if h := addrHint(s); h != "" {
		d.Hint = h
	} else {
		d.Hint = "write the router's IPv4 or IPv6 address, e.g. 198.51.100.1"
	}
	return netip.Addr{}, false
}

// asNumber reads an AS number of 4 octets (RFC 6793), in plain notation.
func (b *builder) asNumber(t Token) (uint32, bool) {
	v, err := strconv.ParseUint(t.Text, 10, 32)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		b.sink.errorf(t.Pos, "AS %s is out of range: use 1 to 4294967295", t.Text)
		return 0, false
	case err != nil:
		b.sink.errorf(t.Pos, "%q is not an AS number", t.Text).Hint = "write it as a whole number from 1 to 4294967295 (a private one is 64512 to 65534)"
		return 0, false
	case v == 0:
		b.sink.errorf(t.Pos, "AS 0 is reserved (RFC 7607)").Hint = "use a number from 1 to 4294967295 (a private one is 64512 to 65534)"
		return 0, false
	case v == 23456:
		b.sink.errorf(t.Pos, "AS 23456 is AS_TRANS (RFC 6793), not an AS of its own").Hint = "use the real AS number: 4-octet ones are written whole"
		return 0, false
	}
	return uint32(v), true
}

// secondsKw is a keyword of whole seconds: BGP carries its timers as whole seconds.
func (b *builder) secondsKw(p *time.Duration, lo, hi int) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		t := n.Args[0]
		v, err := strconv.Atoi(t.Text)
		switch {
		case err != nil:
			b.sink.errorf(t.Pos, "%s %q is not a whole number of seconds", n.Name, t.Text).Hint = fmt.Sprintf("use a number from %d to %d", lo, hi)
		case v < lo || v > hi:
			b.sink.errorf(t.Pos, "%s %d is out of range: use %d to %d seconds", n.Name, v, lo, hi)
		default:
			*p = time.Duration(v) * time.Second
		}
	}}
}

// announceBlock reads a vrrp_instance's announce block.
func (b *builder) announceBlock(vi *VRRPInstance, n *Node) {
	if vi.Announce != nil {
		b.sink.errorf(n.Pos, "announce is given twice in vrrp_instance %q; the first is at %s", vi.Name, vi.Announce.Pos).Hint = "keep one announce block"
		return
	}
	an := &Announce{Pos: n.Pos, Mode: AnnounceMaster, MED: -1, LocalPref: -1}
	vi.Announce = an
	an.Places = b.walk("vrrp_instance/announce", n.Block, keywords{
		"mode": {min: 1, max: 1, fn: func(n *Node) {
			if v, ok := b.enum(n.Args[0], string(AnnounceMaster), string(AnnounceAnycast)); ok {
				an.Mode = AnnounceMode(v)
			}
		}},
		"med":        b.attrKw(&an.MED, &an.MEDFromPriority),
		"local_pref": b.attrKw(&an.LocalPref, &an.LocalPrefFromPriority),
		"community": {min: 1, max: -1, fn: func(n *Node) {
			for _, a := range n.Args {
				if c, ok := b.community(a); ok {
					an.Communities = append(an.Communities, c)
				}
			}
		}},
	})
}

// attrKw reads MED or LOCAL_PREF: "priority" (derived from the effective priority) or a
// number of 4 octets.
func (b *builder) attrKw(v *int64, fromPriority *bool) kw {
	return kw{min: 1, max: 1, fn: func(n *Node) {
		t := n.Args[0]
		if strings.EqualFold(t.Text, "priority") {
			*fromPriority, *v = true, -1
			return
		}
		u, err := strconv.ParseUint(t.Text, 10, 32)
		if err != nil {
			d := b.sink.errorf(t.Pos, "%s %q is not priority or a number from 0 to %d", n.Name, t.Text, uint32(math.MaxUint32))
			d.Hint = fmt.Sprintf("write %s priority to follow the instance's priority, or a fixed number", n.Name)
			if s := suggest(t.Text, []string{"priority"}); s != "" {
				d.Hint = fmt.Sprintf("did you mean %q?", s)
			}
			return
		}
		*fromPriority, *v = false, int64(u)
	}}
}

// community reads a standard community (RFC 1997) written ASN:VALUE.
func (b *builder) community(t Token) (string, bool) {
	asn, val, ok := strings.Cut(t.Text, ":")
	if ok {
		a, aerr := strconv.ParseUint(asn, 10, 16)
		v, verr := strconv.ParseUint(val, 10, 16)
		if aerr == nil && verr == nil {
			return fmt.Sprintf("%d:%d", a, v), true
		}
	}
	b.sink.errorf(t.Pos, "community %q is not ASN:VALUE", t.Text).Hint = "write two numbers from 0 to 65535 joined by a colon, e.g. 64512:100"
	return "", false
}

// finishBGP fills what the bgp block takes from the rest of global_defs, once all of it
// is read: the router ID.
func (b *builder) finishBGP() {
	g := &b.cfg.Global
	bg := g.BGP
	if bg == nil || bg.RouterID.IsValid() {
		return
	}
	if _, written := bg.Places["router_id"]; written {
		return // reported where it was written
	}
	if a, err := netip.ParseAddr(g.RouterID); err == nil && a.Is4() {
		bg.RouterID = a
		return
	}
	d := b.sink.errorf(bg.Pos, "bgp has no router_id")
	if g.RouterID == "" {
		d.Hint = "add: router_id A.B.C.D to the bgp block, one of this node's IPv4 addresses"
	} else {
		d.Hint = fmt.Sprintf("add: router_id A.B.C.D to the bgp block (global_defs router_id %q is not an IPv4 address)", g.RouterID)
	}
}

// validateBGP checks the bgp block against the instances that announce: what parses but
// would not work, or not as written.
func (b *builder) validateBGP() {
	bg := b.cfg.Global.BGP
	if bg == nil {
		for _, vi := range b.cfg.Instances {
			if vi.Announce != nil {
				b.sink.errorf(vi.Announce.Pos, "vrrp_instance %q announces over BGP but there is no bgp block", vi.Name).Hint = "add a bgp block to global_defs"
			}
		}
		return
	}
	if len(bg.Neighbors) == 0 {
		if _, written := bg.Places["neighbor"]; written {
			return // every neighbor written was refused, and reported
		}
		b.sink.warnf(bg.Pos, "bgp has no neighbor; nothing will be announced").Hint = "add: neighbor ADDR { remote_as N }"
		return
	}
	var v4, v6, ibgp bool
	for _, nb := range bg.Neighbors {
		v4, v6 = v4 || nb.Address.Is4(), v6 || nb.Address.Is6()
		ibgp = ibgp || (nb.RemoteAS != 0 && nb.RemoteAS == bg.LocalAS)
	}
	for _, vi := range b.cfg.Instances {
		an := vi.Announce
		if an == nil {
			continue
		}
		var has4, has6 bool
		for _, a := range vi.AnnouncedAddrs() {
			has4, has6 = has4 || a.Is4(), has6 || a.Is6()
		}
		if has4 && !v4 {
			b.sink.warnf(an.Pos, "vrrp_instance %q announces IPv4 addresses but bgp has no IPv4 neighbor; they are not announced", vi.Name).Hint =
				"routes go only to neighbors of their family: add an IPv4 neighbor"
		}
		if has6 && !v6 {
			b.sink.warnf(an.Pos, "vrrp_instance %q announces IPv6 addresses but bgp has no IPv6 neighbor; they are not announced", vi.Name).Hint =
				"routes go only to neighbors of their family: add an IPv6 neighbor"
		}
		if p, ok := an.Places["local_pref"]; ok && !ibgp {
			b.sink.warnf(p, "vrrp_instance %q sets local_pref but every neighbor is eBGP (remote_as differs from local_as); eBGP ignores it", vi.Name).Hint =
				"use med to steer an eBGP router, or remove local_pref"
		}
	}
}
