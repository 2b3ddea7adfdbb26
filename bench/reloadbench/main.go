// Command reloadbench measures a hot reload that adds a VIP on a master, vigil beside
// keepalived, on one network namespace lab, and writes its block into BENCHMARKS.md:
//
//	go run ./bench/reloadbench -out BENCHMARKS.md
//
// It needs root (namespaces, raw sockets), iproute2 and keepalived. For each trial the master
// node's configuration file gets one more VIP on VI_1 (a temporary file renamed over it);
// vigil picks the change up itself (file watch) or by SIGHUP, keepalived by SIGHUP. It
// measures the time from the rename to the first echo reply from the new VIP at a client
// namespace, and counts the state changes both nodes log on every instance meanwhile.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
)

const (
	prioMaster = 150
	prioBackup = 100
)

type options struct {
	out          string
	trials       int
	blocks       int
	instances    int
	advert       time.Duration
	interval     time.Duration
	settle       time.Duration
	noSkipTrials int
	keepalived   string
	keep         bool
}

type bench struct {
	o          options
	lab        *lab.Lab
	work       string
	vigil      string
	keepalived string
	mac1       string // n1's eth0
	nextVIP    int    // last octet of the last 198.51.100.N used
	warmedUp   bool
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the block into this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.trials, "trials", 5, "trials per block (one block = one start of both daemons)")
	flag.IntVar(&o.blocks, "blocks", 2, "blocks per variant; the variants' blocks alternate")
	flag.IntVar(&o.instances, "instances", 4, "vrrp_instances per node (VRIDs 51..)")
	flag.DurationVar(&o.advert, "advert", 100*time.Millisecond, "advert_int (VRRPv3)")
	flag.DurationVar(&o.interval, "interval", time.Millisecond, "echo request interval of the client")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after the first reply, counting state changes")
	flag.IntVar(&o.noSkipTrials, "noskip-trials", 2, "trials per implementation without vrrp_skip_check_adv_addr (0: none)")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, daemon logs)")
	flag.Parse()
	if o.instances < 2 || o.instances > 100 || o.trials < 1 || o.blocks < 1 {
		fatalf("need -instances 2..100, -trials >= 1, -blocks >= 1")
	}
	if (o.trials*o.blocks*3 + 2*o.noSkipTrials) > 240 {
		fatalf("too many trials for 198.51.100.0/24")
	}
	if mdi := 4 * (3*o.advert + time.Duration(256-prioBackup)*o.advert/256); o.settle < mdi {
		o.settle = mdi // long enough for a backup that stopped counting the master's adverts
	}
	if err := run(o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("reloadbench", format, args...) }

// logf is harness.Logf.
var logf = harness.Logf

func run(o options) error {
	setup, removeWork, err := harness.SetupLab("reloadbench", o.keepalived, o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	kaBin, root, work := setup.Keepalived, setup.Root, setup.Work
	ctx := context.Background()
	b := &bench{o: o, work: work, keepalived: kaBin}

	logf("building vigil")
	if b.vigil, err = lab.BuildVigil(work); err != nil {
		return err
	}
	for _, impl := range []string{"vigil", "keepalived"} {
		for _, skip := range []bool{true, false} {
			if err := b.configTest(ctx, impl, conf(o, prioMaster, "MASTER", skip, nil)); err != nil {
				return err
			}
		}
	}
	env := harness.CollectMachine(root, kaBin)

	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	began := time.Now()
	l, err := lab.New(ctx, "rlbench", 3, logDir)
	if err != nil {
		return err
	}
	b.lab = l
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if err := l.Close(); err != nil {
				logf("lab cleanup: %v", err)
			}
		})
	}
	defer cleanup()
	harness.CleanupOnSignal(cleanup)

	mac, err := l.Nodes[0].Exec(ctx, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		return err
	}
	b.mac1 = strings.TrimSpace(mac)
	if _, err := l.Nodes[2].Exec(ctx, "ip", "route", "add", "198.51.100.0/24", "dev", "eth0"); err != nil {
		return err
	}

	variants := []variant{
		{name: "vigil, file watch", impl: "vigil"},
		{name: "vigil, SIGHUP", impl: "vigil", sighup: true},
		{name: "keepalived, SIGHUP", impl: "keepalived", sighup: true},
	}
	rep := newReport(o, env, variants)
	logf("%d blocks of %d trials per variant, %d instances, advert_int %s, settle %s",
		o.blocks, o.trials, o.instances, o.advert, o.settle)
	for r := 0; r < o.blocks; r++ {
		for i := range variants {
			v := variants[(i+r)%len(variants)]
			b.runBlock(ctx, rep, v, true, o.trials)
		}
	}
	if o.noSkipTrials > 0 {
		logf("without vrrp_skip_check_adv_addr: %d trials each", o.noSkipTrials)
		for _, v := range []variant{variants[0], variants[2]} {
			b.runBlock(ctx, rep, v, false, o.noSkipTrials)
		}
	}
	rep.duration = time.Since(began)
	cleanup()
	rep.leftovers = harness.Leftovers(l.Name, func(_ int, c string) bool {
		return strings.Contains(c, work) && (strings.Contains(c, "vigil") || strings.Contains(c, "keepalived"))
	})
	if rep.leftovers != "" {
		logf("LEFTOVERS: %s", rep.leftovers)
	}

	block := rep.markdown()
	fmt.Print(block)
	if o.out == "" {
		return nil
	}
	if err := writeBlock(o.out, block); err != nil {
		return err
	}
	logf("wrote %s", o.out)
	return nil
}

// runBlock starts both daemons of v, runs n trials and stops them.
func (b *bench) runBlock(ctx context.Context, rep *report, v variant, skip bool, n int) {
	bl, err := b.startBlock(ctx, v, skip)
	if err != nil {
		logf("%s: start failed: %v", v.name, err)
		rep.fail(v, skip, n)
		return
	}
	defer bl.stop(ctx, b)
	if !b.warmedUp {
		// In two trial runs the run's first trial was 60-90 ms slow, the client (this process)
		// itself pausing as long. One trial, not counted, warms it up.
		b.warmedUp = true
		r, err := b.trial(ctx, bl)
		logf("%-20s warm-up trial, not counted: %.1f ms, client pause %.1f ms, err %v", v.name, ms(r.latency), ms(r.pause), err)
	}
	for i := 0; i < n; i++ {
		r, err := b.trial(ctx, bl)
		if err != nil {
			logf("%s trial failed: %v", v.name, err)
			rep.fail(v, skip, 1)
			continue
		}
		logf("%-20s skip=%-5v %7.1f ms (request sent at %+6.1f ms)  VI_1 %v  others %v  client pause %.1f ms  VI_2 gap %.1f ms lost %d/%d  reloads %d  %s %s",
			v.name, skip, ms(r.latency), ms(r.reqSent), r.changed, r.unchanged, ms(r.pause), ms(r.gap), r.lost, r.lostOf, r.reloads, r.lastReload, r.vipsProblems)
		rep.add(v, skip, r)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
