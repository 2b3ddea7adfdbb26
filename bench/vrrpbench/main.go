// Command vrrpbench measures vigil and keepalived side by side, in one run, on one network
// namespace lab, and writes the results to BENCHMARKS.md:
//
//	go run ./bench/vrrpbench -out BENCHMARKS.md
//
// It needs root (namespaces, raw sockets), iproute2, ping (iputils) and keepalived. Every
// trial alternates the two implementations so that slow drifts of the shared machine hit both
// alike. See the "Method" section it writes for what is measured and how.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/bench/internal/many"
	"github.com/vigil-ha/vigil/internal/lab"
)

type bench struct {
	lab  *lab.Lab
	cap  *capture
	work string
}

type options struct {
	out        string
	trials     int
	advert     time.Duration
	cpuRuns    int
	instances  int
	cpuAdvert  time.Duration
	window     time.Duration
	warm       time.Duration
	keepalived string
	keep       bool
	skipFO     bool
	skipCPU    bool
	stormRuns  int
	stormWarm  time.Duration
	skipStorm  bool
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the report to this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.trials, "trials", 15, "failover trials per implementation")
	flag.DurationVar(&o.advert, "advert", 100*time.Millisecond, "advert_int of the failover trials (VRRPv3)")
	flag.IntVar(&o.cpuRuns, "cpu-runs", 3, "steady-state CPU/memory runs per implementation")
	flag.IntVar(&o.instances, "instances", 255, "vrrp_instances in the CPU/memory runs (1..255)")
	flag.DurationVar(&o.cpuAdvert, "cpu-advert", 10*time.Millisecond, "advert_int of the CPU/memory runs (VRRPv3)")
	flag.DurationVar(&o.window, "window", 20*time.Second, "CPU measurement window")
	flag.DurationVar(&o.warm, "warm", 8*time.Second, "wait after the backup starts before the CPU window (past the GARP bursts)")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, daemon logs)")
	flag.BoolVar(&o.skipFO, "skip-failover", false, "skip the failover trials (metrics 1 and 2)")
	flag.BoolVar(&o.skipCPU, "skip-cpu", false, "skip the CPU/memory runs (metrics 3 and 4)")
	flag.IntVar(&o.stormRuns, "storm-runs", 3, "simultaneous-start runs per implementation (metric 5)")
	flag.DurationVar(&o.stormWarm, "storm-warm", 4*time.Second, "wait after both nodes start before the simultaneous-start window")
	flag.BoolVar(&o.skipStorm, "skip-storm", false, "skip the simultaneous-start runs (metric 5)")
	flag.Parse()
	if o.instances < 1 || o.instances > 255 {
		fatalf("-instances must be 1..255")
	}
	if err := run(o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("vrrpbench", format, args...) }

// logf is harness.Logf.
var logf = harness.Logf

func run(o options) error {
	setup, removeWork, err := harness.SetupLab("vrrpbench", o.keepalived, o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	kaBin, root, work := setup.Keepalived, setup.Root, setup.Work
	ctx := context.Background()

	vigilBin := filepath.Join(work, "vigil")
	logf("building vigil")
	build := exec.Command("go", "build", "-o", vigilBin, "./cmd/vigil")
	build.Dir = root
	// Static, as make build ships it: a cgo build maps libc and the dynamic loader into each
	// of vigil's processes (about 1 MiB of RSS apiece) that the installed binary does not.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build ./cmd/vigil: %w\n%s", err, out)
	}
	impls := []*daemon.Impl{daemon.Vigil(vigilBin), daemon.Keepalived(kaBin)}

	// Both implementations must accept the very configurations they are given.
	for _, c := range []string{failoverConf(foPrioHigh, "MASTER", o.advert), many.Conf(o.instances, foPrioHigh, "MASTER", o.cpuAdvert)} {
		p := filepath.Join(work, "check.conf")
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return err
		}
		for _, im := range impls {
			if err := im.ConfigTest(ctx, p); err != nil {
				return err
			}
		}
	}

	env := harness.CollectMachine(root, kaBin)

	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	l, err := lab.New(ctx, "bench", 3, logDir)
	if err != nil {
		return err
	}
	b := &bench{lab: l, work: work}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if b.cap != nil {
				b.cap.close()
			}
			if err := l.Close(); err != nil {
				logf("lab cleanup: %v", err)
			}
		})
	}
	defer cleanup()
	harness.CleanupOnSignal(cleanup)

	rep := newReport(o, env)
	began := time.Now()
	if !o.skipFO {
		if b.cap, err = openCapture(l.Switch, "br0"); err != nil {
			return err
		}
		logf("failover: %d trials per implementation, advert_int %s, VRRPv3", o.trials, o.advert)
		for i := 0; i < o.trials; i++ {
			for _, im := range order(impls, i) {
				r, err := b.failoverTrial(ctx, im, o.advert)
				if err != nil {
					logf("failover %s trial %d failed: %v", im.Name, i+1, err)
					rep.failed[im.Name+"/failover"]++
					continue
				}
				logf("failover %-10s trial %2d: gap %7.2f ms  detect %+6.2f ms  garp %+6.2f ms  client reply %6.2f ms  bridge reply %6.2f ms",
					im.Name, i+1, ms(r.gap), ms(r.detect), ms(r.garp), ms(r.reply), ms(r.bridgeRepl))
				rep.addFailover(im.Name, r)
			}
		}
		// The steady state runs without the capture: 25,500 frames/s would load the cores.
		c := b.cap
		b.cap = nil
		c.close()
	}
	if !o.skipCPU {
		logf("steady state: %d instances, advert_int %s, %d runs per implementation, %s window", o.instances, o.cpuAdvert, o.cpuRuns, o.window)
		for i := 0; i < o.cpuRuns; i++ {
			for _, im := range order(impls, i) {
				r, err := b.cpuRun(ctx, im, o.instances, o.cpuAdvert, o.warm, o.window)
				if err != nil {
					logf("cpu %s run %d failed: %v", im.Name, i+1, err)
					rep.failed[im.Name+"/cpu"]++
					continue
				}
				logf("cpu %-10s run %d: master %5.1f%% (%d procs, %d threads, RSS %.1f MiB, tx %.0f/s)  backup %5.1f%% (RSS %.1f MiB, tx %.0f/s)  VIPs %d/%d  takeovers %d/%d  raw drops %d/%d",
					im.Name, i+1, r.master.cpuPct, r.master.procs, r.master.threads, float64(r.master.rssKB)/1024, r.master.txPerSec,
					r.backup.cpuPct, float64(r.backup.rssKB)/1024, r.backup.txPerSec, r.masterVIPs, r.backupVIPs, r.master.takeovers, r.backup.takeovers, r.master.rawDrops, r.backup.rawDrops)
				rep.addCPU(im.Name, r)
			}
		}
	}
	if !o.skipStorm {
		logf("simultaneous start: %d instances, advert_int %s, %d runs per implementation, %s warm-up, %s window", o.instances, o.cpuAdvert, o.stormRuns, o.stormWarm, o.window)
		for i := 0; i < o.stormRuns; i++ {
			for _, im := range order(impls, i) {
				r, err := b.stormRun(ctx, im, o.instances, o.cpuAdvert, o.stormWarm, o.window)
				if err != nil {
					logf("storm %s run %d failed: %v", im.Name, i+1, err)
					rep.failed[im.Name+"/storm"]++
					continue
				}
				logf("storm %-10s run %d: backup %.1f transitions to MASTER/s (%d during start-up, last %d of %d s quiet)  master %.1f/s  CPU master %5.1f%% backup %5.1f%%  RSS %.1f/%.1f MiB  VIPs %d/%d  master tx %.0f/s  backup raw drops %d",
					im.Name, i+1, r.BackupPerSec, r.Startup, r.QuietSeconds, r.WindowSeconds, r.MasterPerSec, r.Master.CPUPct, r.Backup.CPUPct,
					float64(r.Master.RSSKB)/1024, float64(r.Backup.RSSKB)/1024, r.MasterVIPs, r.BackupVIPs, r.MasterTxPerSec, r.BackupRawDrops)
				rep.addStorm(im.Name, r)
			}
		}
	}
	rep.duration = time.Since(began)
	rep.env.LoadAfter = harness.Loadavg()

	cleanup()
	rep.leftovers = leftovers(l.Name)
	if rep.leftovers != "" {
		logf("LEFTOVERS: %s", rep.leftovers)
	}

	text := rep.markdown(o.out)
	if o.out == "" {
		fmt.Print(text)
		return nil
	}
	if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
		return err
	}
	logf("wrote %s", o.out)
	fmt.Print(rep.table())
	return nil
}

// order alternates which implementation goes first.
func order(impls []*daemon.Impl, i int) []*daemon.Impl {
	if i%2 == 0 {
		return impls
	}
	return []*daemon.Impl{impls[1], impls[0]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// leftovers reports namespaces of this lab and vigil/keepalived processes started from the
// work directory that are still there.
func leftovers(labName string) string {
	return harness.Leftovers(labName, func(_ int, c string) bool {
		return strings.Contains(c, "vrrpbench-") && (strings.Contains(c, "vigil") || strings.Contains(c, "keepalived"))
	})
}
