// Command mysqlbench measures vigil's MySQL health check beside keepalived's usual one (a
// vrrp_script that forks a shell and the mysql client per probe), in one run, and writes the
// results into its block of BENCHMARKS.md:
//
//	go run ./bench/mysqlbench -out BENCHMARKS.md
//
// Two measurements:
//
//   - CPU per probe against a throwaway MariaDB on 127.0.0.1: the mysql check plugin through
//     core/plugin's Host and Prober (one kept connection), against the shell + mysql client
//     run by core/procrun as vigil-check-exec runs a vrrp_script; the prober side and the
//     database server are counted apart.
//   - Failover time in a namespace lab: n1 and n2 each run their own MariaDB and the same
//     VRRP instance tracking it (vigil: vrrp_check with the plugin; keepalived: vrrp_script
//     with the shell + client); mariadbd on the master is killed and a client on n3 times
//     the first query through the VIP that n2 answers.
//
// It needs root (namespaces), iproute2, keepalived, mariadb-server and mariadb-client. The
// trials alternate the implementations so that slow drifts of the shared machine hit both
// alike. Every process it starts is stopped by PID (process group) and every namespace
// deleted, also on errors and on Ctrl-C; the end of the run checks that nothing is left.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

type options struct {
	out        string
	runs       int
	probes     int
	forks      int
	window1    time.Duration
	window10   time.Duration
	idle       time.Duration
	trials     int
	intervals  []time.Duration
	fall       int
	advert     time.Duration
	keepalived string
	keep       bool
	skipCPU    bool
	skipFO     bool
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the mysqlbench block of this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.runs, "runs", 3, "CPU runs of every case, in rotating order; the report gives medians over them")
	flag.IntVar(&o.probes, "probes", 2000, "plugin probes per back-to-back run")
	flag.IntVar(&o.forks, "forks", 150, "script probes per back-to-back run")
	flag.DurationVar(&o.window1, "window-1", 10*time.Second, "window of the 1 probe/s cases")
	flag.DurationVar(&o.window10, "window-10", 5*time.Second, "window of the 10 probes/s cases")
	flag.DurationVar(&o.idle, "idle", 5*time.Second, "window of the idle case (no probes), per run")
	flag.IntVar(&o.trials, "trials", 7, "failover trials per implementation and interval")
	ivs := flag.String("intervals", "1s,100ms", "check intervals of the failover trials (keepalived runs only those of whole seconds)")
	flag.IntVar(&o.fall, "fall", 2, "fall of the check in the failover trials")
	flag.DurationVar(&o.advert, "advert", 100*time.Millisecond, "advert_int of the failover trials (VRRPv3)")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, daemon logs)")
	flag.BoolVar(&o.skipCPU, "skip-cpu", false, "skip the CPU per probe runs")
	flag.BoolVar(&o.skipFO, "skip-failover", false, "skip the failover trials")
	flag.Parse()
	for _, f := range strings.Split(*ivs, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 10*time.Millisecond {
			fatalf("-intervals: %q is not a duration of 10ms or more", f)
		}
		o.intervals = append(o.intervals, d)
	}
	if o.runs < 1 || o.probes < 100 || o.forks < 20 || o.trials < 1 || o.fall < 1 {
		fatalf("want -runs >= 1, -probes >= 100, -forks >= 20, -trials >= 1, -fall >= 1")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cl := &cleaner{}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("%s: stopping and cleaning up", s)
		cancel()
		// run returns when its current step honours the context; if that takes too long (a
		// second signal, or a step blocked elsewhere) clean up from here and leave.
		select {
		case <-sigs:
		case <-time.After(20 * time.Second):
		}
		cl.run()
		os.Exit(130)
	}()
	err := run(ctx, o, cl)
	cl.run()
	cancel()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("mysqlbench", format, args...) }

// logf is harness.Logf.
var logf = harness.Logf

// cleaner runs cleanup steps once, newest first, from run's end or from the signal handler,
// whichever comes first; the other waits for it.
type cleaner struct {
	mu    sync.Mutex
	steps []func()
	done  bool
}

func (c *cleaner) add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, f)
}

func (c *cleaner) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	for i := len(c.steps) - 1; i >= 0; i-- {
		c.steps[i]()
	}
}

// env is what the whole run shares: binaries and the work directory.
type env struct {
	o          options
	work       string
	vigil      string
	pluginDir  string
	keepalived string
	mysql      string
	foScript   string // the failover trials' check script (port 3306)
}

func run(ctx context.Context, o options, cl *cleaner) error {
	if err := lab.Available(); err != nil && !o.skipFO {
		return fmt.Errorf("failover trials: %w (or -skip-failover)", err)
	}
	if err := mariadb.Available(); err != nil {
		return err
	}
	mysqlBin, err := exec.LookPath("mysql")
	if err != nil {
		return fmt.Errorf("the mysql client (apt-get install mariadb-client): %w", err)
	}
	kaBin := ""
	if !o.skipFO {
		if kaBin, err = exec.LookPath(o.keepalived); err != nil {
			return fmt.Errorf("keepalived (apt-get install keepalived, or -skip-failover): %w", err)
		}
	}
	root, err := harness.ModuleRoot("mysqlbench")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mysqlbench-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	// The plugin host refuses plugins below directories that others may write to; 0755 also
	// lets vigil's children, should they drop privileges, read their binary.
	if err := os.Chmod(work, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if o.keep {
		logf("work directory (kept): %s", work)
	} else {
		cl.add(func() { os.RemoveAll(work) })
	}
	e := &env{o: o, work: work, keepalived: kaBin, mysql: mysqlBin, pluginDir: filepath.Join(work, "plugins")}
	if err := os.Mkdir(e.pluginDir, 0o755); err != nil {
		return fmt.Errorf("plugin directory: %w", err)
	}
	logf("building vigil and the mysql plugin (CGO_ENABLED=0)")
	e.vigil = filepath.Join(work, "vigil")
	for _, b := range []struct{ out, pkg string }{
		{e.vigil, "./cmd/vigil"},
		{filepath.Join(e.pluginDir, "vigil-check-mysql"), "./plugins/vigil-check-mysql"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}

	rep := &report{o: o, date: time.Now(), loadBefore: loadavg(), vigilRev: vigilRev(root), goVersion: runtime.Version(), foFailed: map[string]int{}}
	rep.mariadb = cmdLine("mariadbd", "--version")
	rep.client = cmdLine(mysqlBin, "--version")
	if kaBin != "" {
		out, _ := exec.Command(kaBin, "-v").CombinedOutput()
		rep.keepalived = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	began := time.Now()
	if !o.skipCPU {
		if err := e.cpuBench(ctx, rep, cl); err != nil {
			return fmt.Errorf("CPU per probe: %w", err)
		}
	}
	if !o.skipFO {
		if err := e.failoverBench(ctx, rep, cl); err != nil {
			return fmt.Errorf("failover: %w", err)
		}
	}
	rep.took = time.Since(began)
	rep.loadAfter = loadavg()

	// Everything this run started must be gone before the report says so.
	cl.run()
	rep.leftovers = leftovers(work)
	if rep.leftovers != "" {
		logf("LEFTOVERS: %s", rep.leftovers)
	}
	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := harness.WriteBlock(o.out, "mysqlbench", md); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	if rep.leftovers != "" {
		return errors.New("processes or namespaces were left behind: " + rep.leftovers)
	}
	return nil
}

// leftovers lists the lab's namespaces and the processes started from the work directory
// (vigil, its children and plugin, keepalived, mariadbd, whose data lives there) that are
// still there.
func leftovers(work string) string {
	return harness.Leftovers(fmt.Sprintf("vg-%s-%d", labName, os.Getpid()), func(pid int, c string) bool {
		return strings.Contains(c, work) && pid != os.Getpid()
	})
}
