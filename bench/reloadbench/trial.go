package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// block is one implementation running on n1 (master) and n2 (backup) for several trials.
type block struct {
	v      variant
	skip   bool // vrrp_skip_check_adv_addr in both files
	d1, d2 *daemon
	extra  []netip.Addr // VIPs the trials of this block added to VI_1 on n1
}

type trialResult struct {
	latency      time.Duration // rename -> first echo reply from the new VIP at the client
	reqSent      time.Duration // rename -> sending of the request that got that reply
	changed      []transition  // logged by either node on VI_1 during the trial
	unchanged    []transition  // logged by either node on VI_2..VI_n during the trial
	gap          time.Duration // longest time without an echo reply from VI_2's VIP
	lost, lostOf int           // requests to VI_2's VIP without a reply, of those sent
	pause        time.Duration // the client's longest pause between requests, rename -> first reply
	reloads      int           // reloads n1 logged during the trial
	lastReload   string        // vigil: what `vigil status` says of the last reload
	vipsOK       bool          // after the trial: n1 holds every VIP, n2 none
	vipsProblems string
}

func (b *bench) startBlock(ctx context.Context, v variant, skip bool) (*block, error) {
	n1, n2 := b.lab.Nodes[0], b.lab.Nodes[1]
	dir, err := os.MkdirTemp(b.work, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(v.name)+"-")
	if err != nil {
		return nil, err
	}
	bl := &block{v: v, skip: skip}
	if bl.d1, err = b.startDaemon(v.impl, n1, dir, conf(b.o, prioMaster, "MASTER", skip, nil)); err != nil {
		return nil, err
	}
	if err := waitFor(10*time.Second, func() bool { return b.holdsAll(ctx, nil) == "" }); err != nil {
		bl.stop(ctx, b)
		return nil, fmt.Errorf("n1 never held its VIPs: %w\n%s", err, tail(bl.d1.proc.Output(), 2000))
	}
	if bl.d2, err = b.startDaemon(v.impl, n2, dir, conf(b.o, prioBackup, "BACKUP", skip, nil)); err != nil {
		bl.stop(ctx, b)
		return nil, err
	}
	// n2 comes up as backup and hears n1; then let everything settle.
	time.Sleep(10*b.o.advert + time.Second)
	if p := b.holdsAll(ctx, nil); p != "" {
		bl.stop(ctx, b)
		return nil, fmt.Errorf("after n2 started: %s", p)
	}
	return bl, nil
}

func (bl *block) stop(ctx context.Context, b *bench) {
	for _, d := range []*daemon{bl.d1, bl.d2} {
		if d != nil {
			d.stop()
		}
	}
	// A killed daemon leaves its addresses: remove every VIP, so the next block starts clean.
	for _, nd := range b.lab.Nodes[:2] {
		for a, pfx := range addrs(ctx, nd) {
			if a != nd.Addr4.Addr() && pfx.IsValid() {
				_, _ = nd.Exec(ctx, "ip", "addr", "del", pfx.String(), "dev", "eth0")
			}
		}
	}
}

// holdsAll says what is wrong when n1 does not hold every VIP (base ones plus extra) or n2
// holds any; empty when all is as it should be.
func (b *bench) holdsAll(ctx context.Context, extra []netip.Addr) string {
	var probs []string
	want := append([]netip.Addr(nil), extra...)
	for i := 1; i <= b.o.instances; i++ {
		want = append(want, baseVIP(i))
	}
	on1, on2 := addrs(ctx, b.lab.Nodes[0]), addrs(ctx, b.lab.Nodes[1])
	for _, a := range want {
		if _, ok := on1[a]; !ok {
			probs = append(probs, "n1 lacks "+a.String())
		}
		if _, ok := on2[a]; ok {
			probs = append(probs, "n2 holds "+a.String())
		}
	}
	return strings.Join(probs, ", ")
}

// trial adds one new VIP to VI_1 in n1's file and measures.
func (b *bench) trial(ctx context.Context, bl *block) (trialResult, error) {
	var res trialResult
	n3 := b.lab.Nodes[2]
	b.nextVIP++
	vip := netip.AddrFrom4([4]byte{198, 51, 100, byte(b.nextVIP)})
	// The client reaches the VIP on the link, through n1's MAC (a static entry: the time
	// measured is the daemon's, not ARP's retry timer after an unanswered request).
	if _, err := n3.Exec(ctx, "ip", "neigh", "replace", vip.String(), "lladdr", b.mac1, "dev", "eth0", "nud", "permanent"); err != nil {
		return res, err
	}
	pNew, err := startPinger(ctx, n3.NS, vip, uint16(0x5200+b.nextVIP), b.o.interval)
	if err != nil {
		return res, err
	}
	defer pNew.close()
	pOld, err := startPinger(ctx, n3.NS, baseVIP(2), uint16(0x6200+b.nextVIP), b.o.interval)
	if err != nil {
		return res, err
	}
	defer pOld.close()
	time.Sleep(150 * time.Millisecond)
	if _, got, _ := pNew.stats(time.Time{}, time.Now()); got > 0 {
		return res, fmt.Errorf("%s answers before the edit", vip)
	}
	if _, got, _ := pOld.stats(time.Time{}, time.Now()); got == 0 {
		return res, fmt.Errorf("%s does not answer before the edit", baseVIP(2))
	}

	before1, before2 := len(bl.d1.transitions()), len(bl.d2.transitions())
	reloads := bl.d1.reloads()
	extra := append(append([]netip.Addr(nil), bl.extra...), vip)
	text := conf(b.o, prioMaster, "MASTER", bl.skip, extra)
	t0, err := bl.d1.rewrite(text)
	if err != nil {
		return res, err
	}
	if bl.v.sighup {
		if err := bl.d1.proc.Signal(syscall.SIGHUP); err != nil {
			return res, err
		}
	}
	bl.extra = extra
	first, sent, ok := pNew.firstAfter(t0, 10*time.Second)
	if !ok {
		return res, fmt.Errorf("%s never answered within 10s\n%s", vip, tail(bl.d1.proc.Output(), 2000))
	}
	res.latency = first.Sub(t0)
	res.reqSent = sent.Sub(t0)
	res.pause = pNew.sendPause(t0, first)
	time.Sleep(b.o.settle)
	end := time.Now()
	_, _, res.gap = pOld.stats(t0, end)
	// Requests of the last 100 ms may still be on their way back.
	res.lost, res.lostOf = pOld.lost(t0, end.Add(-100*time.Millisecond))

	for _, ts := range [][]transition{bl.d1.transitions()[before1:], bl.d2.transitions()[before2:]} {
		for _, t := range ts {
			if t.inst == "VI_1" {
				res.changed = append(res.changed, t)
			} else {
				res.unchanged = append(res.unchanged, t)
			}
		}
	}
	res.reloads = bl.d1.reloads() - reloads
	if bl.v.impl == "vigil" {
		if st, err := b.status(bl.d1); err == nil && st.LastReload != nil && st.LastReload.Time.After(t0.Add(-time.Second)) {
			r := st.LastReload
			res.lastReload = fmt.Sprintf("%s, ok=%v", r.Trigger, r.OK)
			if r.Report != nil {
				res.lastReload += fmt.Sprintf(", changed %v, kept %v", r.Report.VRRP.Changed, r.Report.VRRP.Kept)
			}
		} else {
			res.lastReload = fmt.Sprintf("no reload reported (%v)", err)
		}
	}
	res.vipsProblems = b.holdsAll(ctx, extra)
	res.vipsOK = res.vipsProblems == ""
	return res, nil
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// addrs maps the IPv4 addresses on nd's eth0 to their prefixes (one `ip addr`).
func addrs(ctx context.Context, nd *lab.Node) map[netip.Addr]netip.Prefix {
	m := map[netip.Addr]netip.Prefix{}
	out, _ := nd.Exec(ctx, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil {
			m[p.Addr()] = p
		}
	}
	return m
}
