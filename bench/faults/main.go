package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
)

type options struct {
	out        string
	short      bool
	run        string
	keep       bool
	keepalived string
	vigil      string
	impls      string
	update     string
}

func main() {
	var o options
	var serveName, clientAddr string
	flag.StringVar(&o.out, "out", "", "write the report to this file (RELIABILITY.md); empty: stdout only")
	flag.StringVar(&o.update, "update", "", "replace the rows this run measures in this report (RELIABILITY.md), keeping the others and saying which run measured which")
	flag.BoolVar(&o.short, "short", false, "run only the scenarios that take seconds (make test)")
	flag.StringVar(&o.run, "run", "", "run only the scenarios whose name matches this regular expression")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, daemon logs, client records)")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.StringVar(&o.vigil, "vigil", "", "vigil binary to test (default: go build ./cmd/vigil)")
	flag.StringVar(&o.impls, "impl", "", "run only these implementations (comma-separated: vigil,keepalived); default: each scenario's")
	flag.StringVar(&serveName, "serve", "", "internal: run as the service of node `NAME` (in its namespace)")
	flag.StringVar(&clientAddr, "client", "", "internal: run as the client of `ADDR` (in its namespace)")
	flag.Parse()
	switch {
	case serveName != "":
		if err := serve(serveName, servicePort); err != nil {
			fatalf("%v", err)
		}
		return
	case clientAddr != "":
		if err := client(clientAddr); err != nil {
			fatalf("%v", err)
		}
		return
	}
	broken, err := run(o)
	if err != nil {
		fatalf("%v", err)
	}
	if len(broken) > 0 {
		fmt.Fprintf(os.Stderr, "faults: %d rows break an invariant:\n", len(broken))
		for _, b := range broken {
			fmt.Fprintf(os.Stderr, "  %s\n", b)
		}
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("faults", format, args...) }

// logf is harness.Logf.
var logf = harness.Logf

// row is one scenario run on one implementation.
type row struct {
	sc   *Scenario
	impl string
	res  *Result
	took time.Duration
}

// run runs the chosen scenarios and returns the rows that break an invariant, as text.
func run(o options) ([]string, error) {
	var re *regexp.Regexp
	if o.run != "" {
		var err error
		if re, err = regexp.Compile(o.run); err != nil {
			return nil, fmt.Errorf("-run: %w", err)
		}
	}
	var chosen []*Scenario
	for _, sc := range scenarios.list {
		if (o.short && !sc.Short) || (re != nil && !re.MatchString(sc.Name)) {
			continue
		}
		chosen = append(chosen, sc)
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("no scenario matches")
	}
	if o.update != "" && o.out != "" {
		return nil, fmt.Errorf("-update and -out: give one")
	}
	var prior *priorReport
	if o.update != "" {
		// Read before anything runs: a file that cannot be updated fails at once, not after
		// half an hour of soak.
		var err error
		if prior, err = readPrior(o.update); err != nil {
			return nil, err
		}
	}
	setup, removeWork, err := harness.SetupLab("faults", o.keepalived, o.keep)
	if err != nil {
		if lab.Available() != nil {
			// Without root the suite cannot run at all: say so and do not fail make test,
			// as the namespace tests skip.
			logf("faults: skipped: %v", err)
			return nil, nil
		}
		return nil, err
	}
	defer removeWork()
	work := setup.Work
	// Children that drop to script_user re-execute vigil: let them reach it.
	if err := os.Chmod(work, 0o755); err != nil {
		return nil, err
	}
	// The commit before the build: what the binary is built from, should the tree move on while
	// the suite runs.
	env := harness.CollectMachine(setup.Root, setup.Keepalived)
	vigilBin := o.vigil
	if vigilBin == "" {
		logf("building vigil")
		if vigilBin, err = lab.BuildVigil(work); err != nil {
			return nil, err
		}
		logf("building the check plugins beside it")
		if err := buildPlugins(context.Background(), work); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	impls := map[string]*daemon.Impl{"vigil": daemon.Vigil(vigilBin), "keepalived": daemon.Keepalived(setup.Keepalived)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	began := time.Now()
	var rows []row
	k := 0
	for _, sc := range chosen {
		var names []string
		for _, name := range sc.impls() {
			if o.impls != "" && !slices.Contains(strings.Split(o.impls, ","), name) {
				continue
			}
			if impls[name] == nil {
				return nil, fmt.Errorf("scenario %s: unknown implementation %q", sc.Name, name)
			}
			names = append(names, name)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// One row per implementation, in order; side by side when the scenario says so.
		got := make([]row, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			k++
			one := func(k int) {
				logf("%s on %s", sc.Name, name)
				t0 := time.Now()
				res := runOne(ctx, sc, impls[name], k, filepath.Join(work, fmt.Sprintf("%02d-%s-%s", k, sc.Name, name)), self, o.short)
				got[i] = row{sc: sc, impl: name, res: res, took: time.Since(t0)}
				logf("%s on %s: %s", sc.Name, name, got[i].summary())
			}
			if sc.Together {
				n := k // k moves on before the goroutine runs
				wg.Go(func() { one(n) })
			} else {
				one(k)
			}
		}
		wg.Wait()
		rows = append(rows, got...)
	}
	env.LoadAfter = harness.Loadavg()
	leftovers := ownLeftovers(work)
	if leftovers != "" {
		logf("LEFTOVERS: %s", leftovers)
	}
	rep := &report{o: o, env: env, rows: rows, duration: time.Since(began), leftovers: leftovers, prior: prior}
	fmt.Print(rep.table())
	out := o.out // -out and -update are exclusive (checked above)
	if o.update != "" {
		out = o.update
	}
	if out != "" {
		if err := os.WriteFile(out, []byte(rep.markdown()), 0o644); err != nil {
			return nil, err
		}
		logf("wrote %s", out)
	}
	var broken []string
	for _, r := range rows {
		if r.impl == "keepalived" && r.sc.KeepalivedBreaks != "" && r.res.Err == nil {
			continue // known and said in the row's scenario description
		}
		for _, b := range r.res.Broken() {
			broken = append(broken, fmt.Sprintf("%s on %s: %s", r.sc.Name, r.impl, b))
		}
	}
	if leftovers != "" {
		broken = append(broken, "left behind: "+leftovers)
	}
	return broken, nil
}

// runOne builds the run's lab, runs the scenario in it and closes it, whatever happened.
func runOne(ctx context.Context, sc *Scenario, im *daemon.Impl, k int, work, self string, short bool) *Result {
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nodes := sc.Nodes
	if nodes <= 0 {
		nodes = 3
	}
	e, err := newEnv(ctx, im, fmt.Sprintf("flt%d", k), nodes, work, self, short)
	if err != nil {
		return &Result{Err: err}
	}
	defer e.close()
	res, err := sc.Run(ctx, e)
	if res == nil {
		res = &Result{Masters: -1, Converge: -1, Lost: -1, Moved: -1}
	}
	if err != nil {
		res.Err = err
	}
	return res
}

// ownLeftovers is what this run left behind: its labs' namespaces (vg-fltK-PID-*: other runs
// of the suite may be under way beside it) and processes started from its work directory.
func ownLeftovers(work string) string {
	all := harness.Leftovers("vg-flt", func(_ int, c string) bool { return strings.Contains(c, work) })
	if all == "" {
		return ""
	}
	mine := fmt.Sprintf("-%d-", os.Getpid())
	var out []string
	for _, p := range strings.Split(all, "; ") {
		if !strings.HasPrefix(p, "namespace ") || strings.Contains(p, mine) {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
