package main

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
)

// frrTimeLayout is how bgpd stamps its log lines with `log timestamp precision 6`.
const frrTimeLayout = "2006/01/02 15:04:05.000000"

// withdrawLogged finds bgpd's log line (debug bgp updates in) of the withdrawal of vip from
// peer and returns its timestamp less t0, or -1 when there is none. bgpd stamps in local
// time, as time.Now does.
func withdrawLogged(log string, peer netip.Addr, vip netip.Prefix, t0 time.Time) time.Duration {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, peer.String()) || !strings.Contains(line, vip.String()) || !strings.Contains(line, "withdrawn") {
			continue
		}
		if len(line) < len(frrTimeLayout) {
			continue
		}
		t, err := time.ParseInLocation(frrTimeLayout, line[:len(frrTimeLayout)], time.Local)
		if err != nil || t.Before(t0.Truncate(time.Microsecond)) {
			continue
		}
		return t.Sub(t0)
	}
	return -1
}

type report struct {
	o         options
	env       harness.Machine
	order     []side
	results   map[string][]result
	failed    map[string]int
	duration  time.Duration
	leftovers string
}

// stat is the median, min and max of v, ignoring negative values (not measured).
func stat(v []time.Duration) (med, lo, hi time.Duration, n int) {
	var w []time.Duration
	for _, d := range v {
		if d >= 0 {
			w = append(w, d)
		}
	}
	if len(w) == 0 {
		return -1, -1, -1, 0
	}
	slices.Sort(w)
	return w[len(w)/2], w[0], w[len(w)-1], len(w)
}

func (r *report) column(name string, get func(result) time.Duration) string {
	var v []time.Duration
	for _, x := range r.results[name] {
		v = append(v, get(x))
	}
	med, lo, hi, n := stat(v)
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f, n=%d)", ms(med), ms(lo), ms(hi), n)
}

func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| side | check fails → n1 not best at FRR, ms | → n1's route withdrawn at FRR, ms | → withdrawal in FRR's log, ms | client outage, ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	for _, s := range r.order {
		n := s.name()
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n,
			r.column(n, func(x result) time.Duration { return x.notBest }),
			r.column(n, func(x result) time.Duration { return x.gone }),
			r.column(n, func(x result) time.Duration { return x.logged }),
			r.column(n, func(x result) time.Duration { return x.outage }))
	}
	return b.String()
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	e, o := r.env, r.o
	w("### BGP: check failure to a routed address moving (bench/bgpbench)\n\n")
	w("Two nodes announce one address to an FRR router over eBGP; n1's check fails; how long until the router\n")
	w("stops routing to n1, and how long a client's connections go unanswered. Written by `bench/bgpbench`:\n\n")
	w("```sh\ngo run ./bench/bgpbench %s   # as root; needs FRR and ExaBGP (apt-get install frr exabgp)\n```\n\n", strings.Join(os.Args[1:], " "))
	w("- date: %s UTC (run took %s); vigil %s, %s; %s; FRR bgpd as the router\n", e.Date.Format("2006-01-02 15:04"), r.duration.Round(time.Second), e.VigilRev, e.GoVersion, e.Keepalived)
	w("- machine: nproc %s, CPU %s, kernel %s; load average %s before, %s after (shared machine)\n", e.NProc, e.CPU, e.Kernel, e.LoadBefore, e.LoadAfter)
	w("- %d trials per side; check interval %s, rise 1, fall 1; client connects every %s\n", o.trials, o.interval, o.probe)
	if len(r.failed) > 0 {
		var ks []string
		for k, n := range r.failed {
			ks = append(ks, fmt.Sprintf("%s: %d", k, n))
		}
		slices.Sort(ks)
		w("- **failed trials** (not in the figures; see the run's log): %s\n", strings.Join(ks, ", "))
	} else {
		w("- failed trials: none\n")
	}
	if r.leftovers != "" {
		w("- **left behind after the run**: %s\n", r.leftovers)
	} else {
		w("- left behind after the run: nothing\n")
	}
	w("\nMedians (min–max, n) in milliseconds from the check's failure:\n\n")
	b.WriteString(r.table())
	w("\n**Method.** `internal/lab` NewRouted: client — router — n1, n2, each on a link of its own (no shared L2).\n")
	w("The router runs FRR 8.4 bgpd (AS %d, eBGP to both nodes, AS %d; GRACEFUL_SHUTDOWN lowers LOCAL_PREF to 0,\n", routerAS, nodeAS)
	w("RFC 8326; `debug bgp updates in`, timestamps in µs). Both nodes announce %s (on lo) with MED 255 −\n", lab.RoutedVIP(1, false))
	w("priority, n1 priority %d, n2 %d, so n1 is preferred. Each node serves TCP port %d with its name. The\n", prios[0], prios[1], port)
	w("check on every side is `test ! -e FILE`. A trial: after a random part of the check interval, n1's\n")
	w("service stops answering (connections closed unanswered) and its fail file appears, together (t0). The\n")
	w("bench polls `show bgp ipv4 unicast PREFIX json` every 10 ms (each poll takes a few ms: the first two\n")
	w("columns are that coarse) and reads bgpd's log line of n1's withdrawal (third column, bgpd's clock, the\n")
	w("same as the bench's). The client connects to the address every %s from its namespace; the outage is\n", o.probe)
	w("from n1's last answer to n2's first. Then the file goes, and the next trial waits until n1 is best again.\n\n")
	w("- %s: `exabgp-healthcheck --interval %d --fast-interval %d --rise 1 --fall 1 --withdraw-on-down\n", e.Keepalived, int(o.interval.Seconds()), int(o.interval.Seconds()))
	w("  --up-metric MED --no-ip-setup` as ExaBGP's process on each node.\n")
	w("- vigil anycast: one VRRP instance per node (alone on its link), `vrrp_script` of weight 0 (failure is\n")
	w("  FAULT, which withdraws), `announce { mode anycast; med priority }`, graceful_shutdown %d.\n", o.gshut)
	w("- vigil active/backup: the same with `mode master`, VRRP between the nodes by unicast_peer through the\n")
	w("  router, advert_int 1: n2 announces once it is MASTER, so its path appears only after n1's FAULT.\n")
	w("  n1's FAULT sends a priority 0 advert, and n2 then waits Skew_Time, (256 − %d) / 256 × advert_int =\n", prios[1])
	w("  %.0f ms (RFC 5798), before it becomes MASTER and announces: the client's outage is the withdrawal plus\n", (256-float64(prios[1]))/256*1000)
	w("  that, while in the other two the router holds n2's path already.\n\n")
	w("The check's interval dominates the spread: the failure falls at a random point of it, so figures from\n")
	w("0 to one interval are expected on every side; compare medians over many trials only.\n")
	return b.String()
}
