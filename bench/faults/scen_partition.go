package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A partition of the three-node cluster and its heal: n1 (150, master) is taken out of the
// bridge with its carrier kept, so that it sees nothing and stays master; n2 (100) takes
// over on the other side; then n1 is put back: two masters until the first advert crosses.

func init() {
	scenarios.add(&Scenario{
		Name: "partition-heal",
		Doc: `n1, the master, is taken out of the bridge (carrier kept: it stays master, alone); n2
			takes over for n2, n3 and the client. Once that has converged, n1 is put back: two
			masters until the first advert crosses, which must happen within one advert interval of
			the heal (n2 must have left MASTER within two advert intervals: see the notes), and n1
			must keep the VIP. keepalived #1884: the master that stays never changes state, so its
			notify_master does not run again and whatever it told (a database, a cloud API) still
			points at n2; notify_master_rx_lower_pri is keepalived's answer, and it must run on n1
			after the heal. Every node has higher_prio_send_advert, so that n2 answers n1's advert
			before stepping down and n1 hears it whichever advert crosses first. n1 and n3 must not
			move.`,
		Short: true,
		Run:   runPartitionHeal,
	})
}

// healTolerance is how long after the heal the split brain may last: one advert interval for
// the first advert to cross (each master sends one per interval, and either one ends it: n1's
// makes n2 step down, n2's makes n1 answer at once), plus one more for the rest: two daemons
// and a notify script scheduled on a loaded machine. A daemon that waited for a timer instead
// (a Master_Down_Interval, over three advert intervals) is what this bound catches.
const healTolerance = 2

func runPartitionHeal(ctx context.Context, e *Env) (*Result, error) {
	// notify_master_rx_lower_pri runs its script without arguments: the script finds its
	// node by its network namespace.
	rxLog := filepath.Join(e.Work, "rx-lower-pri")
	rxScript := filepath.Join(e.Work, "rx-lower-pri.sh")
	body := fmt.Sprintf("#!/bin/sh\necho \"$(ip netns identify $$) $(date +%%s.%%N)\" >> %s\n", rxLog)
	if err := os.WriteFile(rxScript, []byte(body), 0o755); err != nil {
		return nil, err
	}
	c := Conf{Instance: fmt.Sprintf("higher_prio_send_advert\nnotify_master_rx_lower_pri %s", rxScript)}
	if err := e.StartCluster(ctx, c); err != nil {
		return nil, err
	}
	fault := time.Now()
	if err := e.Isolate(ctx, 0, true); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, fault, 0, 0, 0, 2)
	if err != nil {
		return r, err
	}
	if h, _ := e.Holders(ctx); len(h) != 1 || h[0] != 1 {
		r.Fail("n2 did not take over during the partition (holders %v)", h)
	}
	if ok, _ := e.Nodes[0].HasAddr(ctx, VIP(0)); !ok {
		r.Fail("n1 gave up the VIP while alone")
	}

	heal := time.Now()
	if err := e.Isolate(ctx, 0, false); err != nil {
		return r, err
	}
	r2, err := e.Measure(ctx, heal, 0, 0, 0, 2)
	if err != nil {
		return r, err
	}
	r.Check(r2.Masters == 1, "after the heal: %d masters", r2.Masters)
	r.Moved += r2.Moved
	r.Failures = append(r.Failures, r2.Failures...)
	holder := "none"
	if h, _ := e.Holders(ctx); len(h) == 1 {
		holder = e.Nodes[h[0]].Name
		if h[0] != 0 {
			r.Fail("%s holds the VIP after the heal, not n1", holder)
		}
	}

	// The end of the split brain: n2's notify of leaving MASTER (it runs after the change,
	// so this is an upper bound).
	var left time.Time
	for _, t := range e.Transitions(1, heal) {
		if t.State != "MASTER" {
			left = t.At
			break
		}
	}
	bound := healTolerance * e.Conf.Advert
	if left.IsZero() {
		r.Fail("n2 never left MASTER after the heal")
	} else {
		took := left.Sub(heal)
		r.Check(took <= bound, "split brain lasted %s after the heal (bound %s: one advert interval, and one more for scheduling)", dur(took), dur(bound))
		r.Note("after the heal: n2 left MASTER after %s (its notify)", dur(took))
	}
	r.Note("after the heal: master %s, converged in %s, outage %s, %s", holder, dur(r2.Converge), dur(r2.Outage), r2.Notes[0])

	// keepalived #1884: the staying master's notify.
	runs := rxRuns(rxLog, e.Nodes[0].NS, heal)
	r.Check(runs > 0, "notify_master_rx_lower_pri never ran on n1 after the heal (keepalived #1884)")
	r.Note("notify_master_rx_lower_pri ran %d times on n1 after the heal", runs)
	return r, nil
}

// rxRuns counts the lines the rx-lower-pri script wrote for namespace ns at or after since.
func rxRuns(file, ns string, since time.Time) int {
	b, _ := os.ReadFile(file)
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != ns {
			continue
		}
		secs, err := strconv.ParseFloat(f[1], 64)
		if err == nil && !time.Unix(0, int64(secs*1e9)).Before(since) {
			n++
		}
	}
	return n
}
