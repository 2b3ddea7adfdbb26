package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/core/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/lab"
)

// Forged VRRP from a node that runs no VRRP: an attacker on the segment, or another
// cluster's router. forge.go builds the packets; these scenarios send them at a running
// cluster (n1 master at 150, n2 and n3 backups) and watch who moves.

func init() {
	scenarios.add(
		&Scenario{
			Name: "forged-owner",
			Doc: `A fourth node sends one VRRPv3 advert with priority 255 (the address owner) and the
				cluster's own address list, as anyone on the segment can learn it from one advert.
				VRRPv3 has no authentication: the master steps down as RFC 5798 says it must, and the
				VIP has no holder until the real nodes' Master_Down_Timer runs out. Reported, not held
				to an invariant on n1 (docs/vrrp.md, "Forged adverts", says what an operator can do); n2 and
				n3 must not move, and exactly one master must remain.`,
			Short: true,
			Run:   runForgedOwner,
		},
		&Scenario{
			Name: "forged-owner-slow",
			Doc: `forged-owner with the longest advert interval VRRPv3 can carry, 40.95 s: the master
				steps down and every node adopts the owner's interval (RFC 5798 6.4.2: backups set
				Master_Adver_Interval from the advert), so the VIP has no holder for three of them,
				about two minutes, from one packet. Reported, not held to an invariant on n1; n2 and n3
				must not move.`,
			Timeout: 6 * time.Minute,
			Run:     runForgedOwnerSlow,
		},
		&Scenario{
			Name: "forged-owner-other-list",
			Doc: `The same advert with priority 255 but an address list with none of the cluster's
				addresses (another cluster's, or a forger's guess): no node may move.`,
			Short: true,
			Run:   runForgedOwnerOther,
		},
		&Scenario{
			Name: "forged-owner-nft",
			Doc: `forged-owner on nodes whose nftables accept VRRP only from the cluster's own addresses
				(docs/vrrp.md's advice): the kernel drops the forger's advert before either daemon reads it,
				and no node may move. (A forger on the segment can also forge a peer's source address;
				this stops strangers and other clusters, not that.)`,
			Short: true,
			Run:   runForgedOwnerNft,
		},
		&Scenario{
			Name: "forged-prio0-spoofed",
			Doc: `A fourth node forges one priority-0 advert (the master resigning) with the master's own
				source address, right after one of the master's adverts. The backups heed it (it comes
				from the master they follow) and set their timer to Skew_Time. The master would answer
				it at once (RFC 5798 6.4.3), but its kernel drops a packet from its own address as a
				martian: n2 takes over until the master's next advert, in both implementations.
				Reported, not held to an invariant on n2; n1 and n3 must not move, n1 must end with
				the VIP.`,
			Short: true,
			Run:   runForgedPrio0Spoofed,
		},
		&Scenario{
			Name: "forged-malformed",
			Doc: `A fourth node sends malformed and foreign VRRPv2 to a cluster whose instance has
				auth_type PASS, each kind for 5 s at 10 a second and priority 200 (a well-formed advert
				would take the master down): TTL 64, a bad checksum, a wrong password, the same VRID with
				another cluster's address list, truncated and oversized (1480-byte) adverts, one too
				short for a header; then priority-0 adverts at 1000 a second for 5 s, then 10 s of
				random garbage aimed at the VRID at 10,000 packets a second. No node may move; vigil
				must count each kind under its drop reason and log each reason at most once per 10 s.
				The notes give the drops by reason, the log lines per second and the vrrp process's
				CPU during the flood. make test's short run sends each kind for 1 s and floods for 3 s.`,
			KeepalivedBreaks: `its backups log each of these adverts as dropped, yet take over about a
				Master_Down_Interval after they start (the master's adverts keep coming), and it logs
				every dropped advert (hundreds of lines a second under the flood).`,
			Short:   true,
			Timeout: 5 * time.Minute,
			Run:     runForgedMalformed,
		},
		&Scenario{
			Name: "forged-malformed-v6",
			Doc: `forged-malformed over IPv6: the instance advertises 2001:db8::100 with VRRPv3 (from
				link-local addresses to ff02::12, next header 112) and holds 192.0.2.100 as an
				excluded address. A fourth node sends, from its link-local address, each kind for 5 s
				at 10 a second and priority 200: hop limit 64 and 1, a bad checksum, version 4,
				version 2, type 2, one too short for a header, a truncated advert, an address count
				above and below the addresses carried, another VRID, the same VRID with another
				cluster's addresses; then priority-0 adverts at 1000 a second for 5 s, then 10 s of
				random garbage aimed at the VRID at 10,000 packets a second. No node may move; vigil
				must count each kind under its drop reason (another VRID: unknown_vrid, counted and
				never logged) and log each reason at most once per 10 s. make test's short run sends
				each kind for 1 s and floods for 3 s.`,
			KeepalivedBreaks: `as over IPv4, its backups log the adverts it reads as dropped (wrong hop
				limit, version, type, address count, foreign addresses, the garbage), yet take over
				about a Master_Down_Interval after they start, the master's adverts still coming. Its
				socket has IPV6_CHECKSUM, so the kernel drops those whose checksum fails (bad
				checksum, truncated, too short) before keepalived reads them: they move no node and
				leave no count.`,
			Short:   true,
			Timeout: 5 * time.Minute,
			Run:     runForgedMalformed6,
		},
	)
}

// attacker adds a node to the lab's bridge that runs no VRRP, with a forger on its eth0:
// over IPv4 from its address, over IPv6 (v6) from its link-local one.
func attacker(ctx context.Context, e *Env, v6 bool) (*lab.Node, *forger, error) {
	nd, err := e.Lab.AddNode(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("attacker node: %w", err)
	}
	src := nd.Addr4.Addr()
	if v6 {
		// The kernel gives eth0 its link-local address when the link comes up.
		if err := e.waitFor(ctx, 10*time.Second, func() bool {
			src, err = linkLocal(ctx, nd)
			return err == nil
		}); err != nil {
			return nil, nil, fmt.Errorf("attacker node has no link-local address: %w", err)
		}
	}
	f, err := newForger(nd.NS, nd.Iface, src)
	if err != nil {
		return nil, nil, err
	}
	e.Defer(f.close)
	// A new bridge port forwards once the veth's carrier is up: a forgery sent before then
	// would be lost, and a scenario that sends one advert would test nothing.
	n1 := e.Nodes[0].Addr4.Addr().String()
	if err := e.waitFor(ctx, 10*time.Second, func() bool {
		_, err := nd.Exec(ctx, "ping", "-c", "1", "-W", "1", n1)
		return err == nil
	}); err != nil {
		return nil, nil, fmt.Errorf("attacker node cannot reach n1: %w", err)
	}
	return nd, f, nil
}

// linkLocal is the link-local address of nd's eth0.
func linkLocal(ctx context.Context, nd *lab.Node) (netip.Addr, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", nd.NS, "-6", "-o", "addr", "show", "dev", nd.Iface, "scope", "link").CombinedOutput()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ip addr in %s: %w: %s", nd.NS, err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no link-local address on %s in %s", nd.Iface, nd.NS)
}

func (e *Env) target(pass string) vrrpTarget {
	if e.Conf.IPv6 {
		return vrrpTarget{Version: 3, VRID: uint8(VRID(0)), Interval: e.Conf.Advert, Addrs: []netip.Addr{VIP6(0)}}
	}
	return vrrpTarget{Version: e.Conf.Version, VRID: uint8(VRID(0)), Interval: e.Conf.Advert,
		Addrs: []netip.Addr{VIP(0)}, AuthPass: pass}
}

func runForgedOwner(ctx context.Context, e *Env) (*Result, error) {
	return forgedOwner(ctx, e, ownerForgeries()[0], 1, 2)
}

func runForgedOwnerSlow(ctx context.Context, e *Env) (*Result, error) {
	fg := ownerForgeries()[0]
	inner := fg.payloads
	fg.payloads = func(t vrrpTarget, src netip.Addr) ([][]byte, error) {
		t.Interval = 4095 * 10 * time.Millisecond // the 12-bit field's most
		return inner(t, src)
	}
	return forgedOwnerBound(ctx, e, fg, 4*time.Minute, 1, 2)
}

func runForgedOwnerOther(ctx context.Context, e *Env) (*Result, error) {
	return forgedOwner(ctx, e, ownerForgeries()[1], 0, 1, 2)
}

func runForgedOwnerNft(ctx context.Context, e *Env) (*Result, error) {
	var peers []string
	for _, nd := range e.Nodes {
		peers = append(peers, nd.Addr4.Addr().String())
	}
	rules := fmt.Sprintf(`table inet vrrp_peers {
    chain input {
        type filter hook input priority filter; policy accept;
        ip protocol vrrp ip saddr != { %s } drop
    }
}
`, strings.Join(peers, ", "))
	for _, nd := range e.Nodes {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", nd.NS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("nft in %s: %w: %s", nd.Name, err, out)
		}
	}
	return forgedOwner(ctx, e, ownerForgeries()[0], 0, 1, 2)
}

func runForgedPrio0Spoofed(ctx context.Context, e *Env) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	_, f, err := attacker(ctx, e, false)
	if err != nil {
		return nil, err
	}
	n1 := e.Nodes[0].Addr4.Addr()
	msg, err := e.target("").advert(n1, 0, []netip.Addr{VIP(0)}, "")
	if err != nil {
		return nil, err
	}
	if err := f.waitAdvert(ctx, n1, 5*e.Conf.Advert); err != nil {
		return nil, err
	}
	fault := time.Now()
	if err := f.send(ipv4(n1, 255, msg)); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, 0, 0, 0, 2)
	if err != nil {
		return r, err
	}
	for i := range e.Nodes {
		for _, tr := range e.Transitions(i, fault) {
			r.Note("%s went %s after %s", e.Nodes[i].Name, tr.State, dur(tr.At.Sub(fault)))
		}
	}
	if h, _ := e.Holders(ctx); len(h) == 1 && h[0] != 0 {
		r.Fail("%s holds the VIP at the end, not n1", e.Nodes[h[0]].Name)
	}
	return r, nil
}

// forgedOwner sends one advert of fg from a fourth node and measures; still are the nodes
// that must not move.
func forgedOwner(ctx context.Context, e *Env, fg forgery, still ...int) (*Result, error) {
	return forgedOwnerBound(ctx, e, fg, 0, still...)
}

// forgedOwnerBound is forgedOwner with Measure's convergence bound (0: its default).
func forgedOwnerBound(ctx context.Context, e *Env, fg forgery, bound time.Duration, still ...int) (*Result, error) {
	if err := e.StartCluster(ctx, Conf{}); err != nil {
		return nil, err
	}
	_, f, err := attacker(ctx, e, false)
	if err != nil {
		return nil, err
	}
	pl, err := fg.payloads(e.target(""), f.src)
	if err != nil {
		return nil, err
	}
	fault := time.Now()
	if err := f.send(packets(f.src, fg.ttl, pl)[0]); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, bound, 0, still...)
	if err != nil {
		return r, err
	}
	moves := e.Transitions(0, fault)
	if len(moves) > 0 {
		var states []string
		for _, t := range moves {
			states = append(states, fmt.Sprintf("%s after %s", t.State, dur(t.At.Sub(fault))))
		}
		r.Note("n1 moved: %s", strings.Join(states, ", "))
	} else {
		r.Note("n1 did not move")
	}
	if h, _ := e.Holders(ctx); len(h) == 1 && h[0] != 0 {
		r.Fail("%s holds the VIP at the end, not n1", e.Nodes[h[0]].Name)
	}
	return r, nil
}

// The malformed scenario's pacing: each forgery for span at forgeRate a second, a pause of
// gap after it (so that a takeover it causes shows up in its phase), the priority-0 storm at
// stormRate, the garbage at floodRate for flood. make test's short run keeps every kind
// but sends it for a second (too short for keepalived's takeovers to show).
const (
	forgeRate = 10
	stormRate = 1000
	floodRate = 10000
	passwd    = "s3cret"
)

type pacing struct{ span, gap, flood time.Duration }

func (e *Env) pacing() pacing {
	if e.Short {
		return pacing{span: time.Second, gap: time.Second, flood: 3 * time.Second}
	}
	return pacing{span: 5 * time.Second, gap: 5 * time.Second, flood: 10 * time.Second}
}

// phase is one kind of forged traffic sent during [from, to).
type phase struct {
	name     string
	want     packet.Reason
	sent     uint64
	from, to time.Time
}

func runForgedMalformed(ctx context.Context, e *Env) (*Result, error) {
	c := Conf{Version: 2, Instance: fmt.Sprintf("authentication {\n    auth_type PASS\n    auth_pass %s\n}", passwd)}
	return forgedMalformed(ctx, e, c, passwd, forgeries())
}

func runForgedMalformed6(ctx context.Context, e *Env) (*Result, error) {
	return forgedMalformed(ctx, e, Conf{Version: 3, IPv6: true}, "", forgeries6())
}

// forgedMalformed starts a cluster with c, sends each of fgs from a fourth node (over IPv6
// with c.IPv6), then the priority-0 storm and the garbage flood, and measures.
func forgedMalformed(ctx context.Context, e *Env, c Conf, pass string, fgs []forgery) (*Result, error) {
	if err := e.StartCluster(ctx, c); err != nil {
		return nil, err
	}
	_, f, err := attacker(ctx, e, c.IPv6)
	if err != nil {
		return nil, err
	}
	t := e.target(pass)
	pc := e.pacing()
	fault := time.Now()
	dropsBefore := make([]map[string]uint64, len(e.Nodes))
	for i := range e.Nodes {
		dropsBefore[i] = e.drops(ctx, i)
	}
	logBefore := make([]int, len(e.Nodes))
	for i, d := range e.Daemons {
		logBefore[i] = len(d.Output())
	}

	var phases []phase
	send := func(name string, want packet.Reason, pkts [][]byte, rate int, span time.Duration) error {
		p := phase{name: name, want: want, from: time.Now()}
		p.sent = f.sendEvery(ctx, pkts, rate, span)
		if err := sleepCtx(ctx, pc.gap); err != nil {
			return err
		}
		p.to = time.Now()
		phases = append(phases, p)
		e.Logf("%s: sent %d", name, p.sent)
		return nil
	}
	for _, fg := range fgs {
		pl, err := fg.payloads(t, f.src)
		if err != nil {
			return nil, err
		}
		rate := forgeRate
		if fg.want == "" { // the priority-0 storm
			rate = stormRate
		}
		if err := send(fg.name, fg.want, packets(f.src, fg.ttl, pl), rate, pc.span); err != nil {
			return nil, err
		}
	}
	// The flood: CPU of each node's vrrp process over it.
	vrrp := make([]int, len(e.Nodes))
	cpu0 := make([]uint64, len(e.Nodes))
	for i, d := range e.Daemons {
		vrrp[i] = d.Children()["vrrp"]
		if s, err := proc.ReadStat(vrrp[i]); err == nil {
			cpu0[i] = s.Ticks
		}
	}
	flood := packets(f.src, 255, garbage(t, 4096, uint64(fault.UnixNano())))
	floodStart := time.Now()
	if err := send("garbage", "", flood, floodRate, pc.flood); err != nil {
		return nil, err
	}
	floodPhase := phases[len(phases)-1]
	var cpu []string
	for i := range e.Nodes {
		s, err := proc.ReadStat(vrrp[i])
		if err != nil || vrrp[i] == 0 {
			cpu = append(cpu, fmt.Sprintf("%s ? (%v)", e.Nodes[i].Name, err))
			continue
		}
		secs := time.Duration(s.Ticks-cpu0[i]) * proc.Tick()
		cpu = append(cpu, fmt.Sprintf("%s %.2f s", e.Nodes[i].Name, secs.Seconds()))
	}
	floodEnd := floodStart.Add(pc.flood)

	r, err := e.Measure(ctx, fault, 0, 0, 0, 1, 2)
	if err != nil {
		return r, err
	}
	// Which phase moved whom: keepalived's backups are known to take over.
	for i := range e.Nodes {
		for _, tr := range e.Transitions(i, fault) {
			in := "after the last phase"
			for _, p := range phases {
				if !tr.At.Before(p.from) && tr.At.Before(p.to) {
					in = "during " + p.name
				}
			}
			r.Note("%s went %s %s", e.Nodes[i].Name, tr.State, in)
		}
	}
	r.Note("sent: %s", sentList(phases))
	r.Note("vrrp process CPU over the %s flood (%d packets): %s", pc.flood, floodPhase.sent, strings.Join(cpu, ", "))

	// Log lines per second over the whole attack, each node, and the busiest second.
	var logs []string
	for i, d := range e.Daemons {
		out := d.Output()[logBefore[i]:]
		n, busiest := logRate(out, e.Impl.Name, fault, floodEnd.Add(pc.gap))
		span := floodEnd.Add(pc.gap).Sub(fault).Seconds()
		logs = append(logs, fmt.Sprintf("%s %d lines (%.1f/s, busiest second %d)", e.Nodes[i].Name, n, float64(n)/span, busiest))
		if e.Impl.Name == "vigil" {
			// One "advert dropped" line per reason per 10 s: a flood must not flood the log.
			dropLines := strings.Count(out, "advert dropped")
			reasons := len(diffDrops(e.drops(ctx, i), dropsBefore[i]))
			bound := reasons * (int(span/10) + 2)
			r.Check(dropLines <= bound, "%s logged %d drop lines for %d reasons over %.0f s (at most %d)", e.Nodes[i].Name, dropLines, reasons, span, bound)
		}
	}
	r.Note("log: %s", strings.Join(logs, ", "))

	if e.Impl.Name != "vigil" {
		return r, nil
	}
	// Every forgery counted under its reason, on every node.
	for i := range e.Nodes {
		got := diffDrops(e.drops(ctx, i), dropsBefore[i])
		for _, p := range phases {
			if p.want != "" && got[string(p.want)] == 0 {
				r.Fail("%s counted no %s drop for %s", e.Nodes[i].Name, p.want, p.name)
			}
		}
		var total uint64
		for _, n := range got {
			total += n
		}
		if i == 1 {
			r.Note("n2's drops by reason: %s (total %d of %d sent)", formatCounts(got), total, sentTotal(phases))
		}
	}
	return r, nil
}

// drops are vigil's advert drops by reason on node i (`vigil status --json`); nil for
// keepalived, which has no such counters.
func (e *Env) drops(ctx context.Context, i int) map[string]uint64 {
	d := e.Daemons[i]
	if e.Impl.Name != "vigil" || d == nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, e.Impl.Bin, "status", "--json", "-control", filepath.Join(d.Dir, "vigil.sock")).Output()
	if err != nil {
		e.Logf("vigil status on %s: %v", e.Nodes[i].Name, err)
		return nil
	}
	var st struct {
		Drops map[string]uint64 `json:"advert_drops"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		e.Logf("vigil status on %s: %v", e.Nodes[i].Name, err)
		return nil
	}
	return st.Drops
}

func diffDrops(after, before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		if v > before[k] {
			out[k] = v - before[k]
		}
	}
	return out
}

func sentList(ps []phase) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s %d", p.name, p.sent)
	}
	return strings.Join(parts, ", ")
}

func sentTotal(ps []phase) uint64 {
	var n uint64
	for _, p := range ps {
		n += p.sent
	}
	return n
}

// logRate counts the log lines stamped in [from, to) and the most in one second. vigil's
// lines start with an RFC 3339 time, keepalived's (-l, console) with ctime's "Mon Jan _2
// 15:04:05 2006:"; continuation lines without a time count with the line before them.
func logRate(out, impl string, from, to time.Time) (n, busiest int) {
	perSec := map[int64]int{}
	var last time.Time
	for line := range strings.Lines(out) {
		if at, ok := lineTime(line, impl); ok {
			last = at
		}
		if last.IsZero() || last.Before(from.Truncate(time.Second)) || !last.Before(to) {
			continue
		}
		n++
		perSec[last.Unix()]++
	}
	for _, c := range perSec {
		busiest = max(busiest, c)
	}
	return n, busiest
}

func lineTime(line, impl string) (time.Time, bool) {
	if impl == "keepalived" {
		if len(line) < 24 {
			return time.Time{}, false
		}
		t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", line[:24], time.Local)
		return t, err == nil
	}
	f, _, _ := strings.Cut(line, " ")
	t, err := time.Parse(time.RFC3339Nano, f)
	return t, err == nil
}
