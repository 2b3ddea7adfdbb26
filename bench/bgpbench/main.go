// Command bgpbench measures how fast a routed virtual address moves when its node's check
// fails: on a routed namespace lab (internal/lab NewRouted) with FRR's bgpd as the router,
// two nodes announce one address, n1 preferred (a lower MED); n1's check is made to fail and
// the bench measures (a) the time until FRR no longer routes the address to n1 and (b) how
// long a client's stream of TCP connections to the address goes unanswered:
//
//	go run ./bench/bgpbench -out BENCHMARKS.md
//
// The sides compared are ExaBGP 4.2 with its healthcheck program (the usual companion of
// keepalived, which has no BGP) and vigil with its BGP speaker (vigil-bgp), in anycast and
// active/backup mode; vigil's side runs with -vigil (it needs bin/vigil-bgp). It needs root,
// iproute2, FRR (Debian's frr) and ExaBGP (Debian's exabgp). With -out it writes its block of
// BENCHMARKS.md (bench/internal/harness WriteBlock) and leaves the rest of the file alone.
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

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
)

type options struct {
	out      string
	trials   int
	interval time.Duration
	probe    time.Duration
	vigil    bool
	vigilBin string
	exabgp   bool
	keep     bool
	gshut    int
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the bgpbench block of this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.trials, "trials", 10, "check failures per side")
	flag.DurationVar(&o.interval, "interval", time.Second, "the check's interval, the same on every side (whole seconds: vigil's vrrp_script takes seconds)")
	flag.DurationVar(&o.probe, "probe", 10*time.Millisecond, "the client's time between TCP connects to the address")
	flag.BoolVar(&o.exabgp, "exabgp", true, "measure ExaBGP with exabgp-healthcheck")
	flag.BoolVar(&o.vigil, "vigil", false, "measure vigil too (anycast and active/backup); needs vigil-bgp beside vigil")
	flag.StringVar(&o.vigilBin, "vigil-bin", "", "vigil binary with vigil-bgp beside it (default: build both into the work directory)")
	flag.IntVar(&o.gshut, "graceful-shutdown", 3, "vigil's graceful_shutdown seconds (the router honours GRACEFUL_SHUTDOWN)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, daemon logs)")
	flag.Parse()
	if o.interval < time.Second || o.interval%time.Second != 0 {
		fatalf("-interval must be whole seconds, at least 1s")
	}
	if err := run(o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("bgpbench", format, args...) }

var logf = harness.Logf

func run(o options) error {
	if err := lab.Available(); err != nil {
		return err
	}
	if err := lab.FRRDaemonsAvailable("bgpd"); err != nil {
		return err
	}
	root, err := harness.ModuleRoot("bgpbench")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bgpbench-")
	if err != nil {
		return err
	}
	// The FRR daemons drop to the frr user and write their logs' neighbours here.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if o.keep {
		logf("work directory (kept): %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	var sides []side
	if o.exabgp {
		if _, err := exec.LookPath(exabgpBin); err != nil {
			return fmt.Errorf("ExaBGP is not installed (Debian package exabgp): %w", err)
		}
		sides = append(sides, &exaSide{})
	}
	if o.vigil {
		bin := o.vigilBin
		if bin == "" {
			if bin, err = buildVigil(work); err != nil {
				return err
			}
		}
		sides = append(sides, &vigilSide{bin: bin, mode: "anycast", gshut: o.gshut}, &vigilSide{bin: bin, mode: "master", gshut: o.gshut})
	}
	if len(sides) == 0 {
		return fmt.Errorf("nothing to measure: -exabgp=false and no -vigil")
	}
	env := harness.CollectMachine(root, "")
	env.Keepalived = exabgpVersion()

	ctx := context.Background()
	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	l, err := lab.NewRouted(ctx, "bgpb", 2, logDir)
	if err != nil {
		return err
	}
	b := &bench{lab: l, work: work, o: o}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			b.closeAll()
			if err := l.Close(); err != nil {
				logf("lab cleanup: %v", err)
			}
		})
	}
	defer cleanup()
	harness.CleanupOnSignal(cleanup)
	if err := b.setup(ctx); err != nil {
		return err
	}

	rep := &report{o: o, env: env, results: map[string][]result{}, failed: map[string]int{}}
	began := time.Now()
	for _, s := range sides {
		logf("%s: starting", s.name())
		if err := b.startSide(ctx, s); err != nil {
			logf("%s: %v", s.name(), err)
			rep.failed[s.name()] = o.trials
			b.stopSide(s)
			continue
		}
		for i := 0; i < o.trials; i++ {
			r, err := b.trial(ctx, s, i)
			if err != nil {
				logf("%s trial %d failed: %v", s.name(), i+1, err)
				rep.failed[s.name()]++
				if err := b.recover(ctx, s); err != nil {
					logf("%s: no recovery, next side: %v", s.name(), err)
					rep.failed[s.name()] += o.trials - i - 1
					break
				}
				continue
			}
			logf("%-16s trial %2d: not best at FRR %7.1f ms  withdrawn %7.1f ms  FRR log %7.1f ms  client outage %7.1f ms (%d probes lost)",
				s.name(), i+1, ms(r.notBest), ms(r.gone), ms(r.logged), ms(r.outage), r.lost)
			rep.results[s.name()] = append(rep.results[s.name()], r)
		}
		b.stopSide(s)
		rep.order = append(rep.order, s)
	}
	rep.duration = time.Since(began)
	rep.env.LoadAfter = harness.Loadavg()
	cleanup()
	rep.leftovers = harness.Leftovers(l.Name, func(_ int, c string) bool {
		return strings.Contains(c, work) || strings.Contains(c, "bgpbench-")
	})
	if rep.leftovers != "" {
		logf("LEFTOVERS: %s", rep.leftovers)
	}
	md := rep.markdown()
	if o.out == "" {
		fmt.Print(md)
		return nil
	}
	if err := harness.WriteBlock(o.out, "bgpbench", md); err != nil {
		return err
	}
	logf("wrote the bgpbench block of %s", o.out)
	fmt.Print(rep.table())
	return nil
}

// buildVigil builds vigil and vigil-bgp as make build does (static), side by side in dir:
// vigil finds its plugins beside its own binary in a dev tree.
func buildVigil(dir string) (string, error) {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	for _, c := range []string{"vigil", "vigil-bgp"} {
		logf("building %s", c)
		if _, err := lab.BuildCommand(bin, c); err != nil {
			return "", err
		}
	}
	return filepath.Join(bin, "vigil"), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
