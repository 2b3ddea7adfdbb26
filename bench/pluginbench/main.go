// Command pluginbench measures what one health-check probe costs through vigil's plugin
// boundary, beside keepalived's way of running a check (fork and exec of a script per probe),
// and writes the results into BENCHMARKS.md:
//
//	go run ./bench/pluginbench -out BENCHMARKS.md
//
// The plugin is a trivial check built with the SDK (this program itself, started again as
// vigil-check-trivial: it answers OK at once), probed through core/plugin's Host and Prober as
// the check scheduler probes it. The scripts are a "#!/bin/sh" script that exits 0 and
// /bin/true, run by core/procrun's Check as vigil-check-exec runs a vrrp_script (scriptProbe), from this
// process: the cost of forking a script per probe, without the plugin boundary that vigil-check-exec
// adds on top (the plugin case measures that boundary). Each is measured one probe at
// a time and with N probes in flight, in several runs whose order rotates, so that slow drifts
// of the shared machine hit all alike. Beside them, keepalived itself runs vrrp_scripts in a
// one-node namespace lab (keepalived.go; as root, else that case is skipped). Nothing leaves
// the machine.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/bench/internal/harness"
	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/procrun"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

type options struct {
	out      string
	runs     int
	probes   int
	forks    int
	inFlight []int // the concurrent cases; 1 (one at a time) always runs
	checks   int
	interval time.Duration
	window   time.Duration
	profile  string
	// the keepalived case (keepalived.go)
	keepalived string
	kaScripts  int
	kaWindow   time.Duration
}

func main() {
	// Started by the plugin host: be the trivial check plugin.
	if os.Getenv(sdk.Handshake().MagicCookieKey) != "" {
		check.Serve(trivial{})
		return
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The host side runs as vigil's check process does, with one processor (cmd/vigil).
		runtime.GOMAXPROCS(1)
	}
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the pluginbench block of this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.runs, "runs", 5, "runs of every case; the report gives medians over them")
	flag.IntVar(&o.probes, "probes", 4000, "plugin probes per case and run")
	flag.IntVar(&o.forks, "forks", 1000, "script probes per case and run")
	levels := flag.String("inflight", "4,32", "probes in flight in the concurrent cases, comma-separated (one at a time always runs)")
	flag.IntVar(&o.checks, "checks", 16, "checks in the scheduled cases (0: none)")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "probe interval of the scheduled cases")
	flag.DurationVar(&o.window, "window", 3*time.Second, "measurement window of the scheduled cases")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "the keepalived binary of the keepalived case (needs root)")
	flag.IntVar(&o.kaScripts, "ka-scripts", 50, "vrrp_scripts (interval 1s) in the keepalived case (0: skip it)")
	flag.DurationVar(&o.kaWindow, "ka-window", 5*time.Second, "measurement window of the keepalived case, with scripts and again without")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of this process (the host side) to this file")
	flag.Parse()
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			fatalf("-inflight: %q is not a number of probes >= 2", f)
		}
		o.inFlight = append(o.inFlight, n)
	}
	if o.runs < 1 || o.probes < 100 || o.forks < 100 || o.kaScripts < 0 || o.kaWindow < time.Second {
		fatalf("want -runs >= 1, -probes >= 100, -forks >= 100, -ka-scripts >= 0, -ka-window >= 1s")
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			fatalf("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("%v", err)
		}
	}
	err := run(o)
	if o.profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) { harness.Fatalf("pluginbench", format, args...) }

// logf is harness.Logf.
var logf = harness.Logf

// trivial is the check under test: no I/O, so that what is measured is the boundary.
type trivial struct{}

var _ check.Checker = trivial{}

func (trivial) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "trivial", Version: "1.0.0", Description: "answers OK at once"}, nil
}

func (trivial) Configure(context.Context, check.ConfigureRequest) (check.ConfigureResponse, error) {
	return check.ConfigureResponse{}, nil
}

func (trivial) Check(context.Context, check.CheckRequest) (check.CheckResponse, error) {
	return check.CheckResponse{Status: check.OK}, nil
}

// kase is one way of probing under one load: n probes back to back, parallel at a time, or,
// with sched, several checks on their interval through core/checksched's scheduler.
type kase struct {
	name     string
	load     string // how the probes come, for the report
	vs       string // the load of the script cases to compare a plugin case with ("": load)
	parallel int
	n        int
	sched    *schedule
	probe    func(ctx context.Context) checksched.Result
	// pid of the long-lived process that serves the probes besides this one, 0 for none.
	pid func() int
}

// schedule is a scheduled case: checks copies of the probe, every interval, for window.
type schedule struct {
	checks           int
	interval, window time.Duration
	align            string
}

// result is one measured run of one case.
type result struct {
	cpuPerProbe  time.Duration // this process + reaped children + the plugin process
	hostPerProbe time.Duration // this process only
	wallPerProbe time.Duration
	p50, p99     time.Duration
}

func run(o options) error {
	start := time.Now()
	loadBefore := loadavg()
	work, err := os.MkdirTemp("", "pluginbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// The plugin directory must pass the host's safety checks: private, not writable by others.
	dir := filepath.Join(work, "plugins")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(self, filepath.Join(dir, plugin.Executable(sdk.KindCheck, "trivial")), 0o755); err != nil {
		return err
	}
	script := filepath.Join(work, "chk.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return err
	}

	h := plugin.New(plugin.Options{Dir: dir, Logger: hclog.NewNullLogger()})
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.ConfigureCheck(ctx, "trivial", check.ConfigureRequest{Name: "chk"}); err != nil {
		return fmt.Errorf("configure the trivial plugin: %w", err)
	}
	pr := plugin.Prober{Host: h, Plugin: "trivial", Check: "chk"}
	if r := pr.Probe(ctx); !r.OK {
		return fmt.Errorf("first probe of the trivial plugin: %s", r.Msg)
	}
	pid, err := pluginPID(dir)
	if err != nil {
		return err
	}
	// As many configured copies of each script as probes can be in flight at once.
	copies := max(1, o.checks)
	for _, par := range o.inFlight {
		copies = max(copies, par)
	}
	sh := scriptProbe(script, copies)
	tru := scriptProbe("/bin/true", copies)
	noPID := func() int { return 0 }
	plugPID := func() int { return pid }
	var cases []kase
	for _, par := range append([]int{1}, o.inFlight...) {
		load := "one at a time"
		if par > 1 {
			load = fmt.Sprintf("%d in flight", par)
		}
		cases = append(cases,
			kase{name: casePlugin, load: load, parallel: par, n: o.probes, probe: pr.Probe, pid: plugPID},
			kase{name: caseSh, load: load, parallel: par, n: o.forks, probe: sh, pid: noPID},
			kase{name: caseTrue, load: load, parallel: par, n: o.forks, probe: tru, pid: noPID},
		)
	}
	if o.checks > 0 {
		// As vigil runs them: each check on its interval, the scripts spread over it, the
		// plugin checks either spread too or aligned on one grid (what vigil does).
		load := fmt.Sprintf("%d checks every %s", o.checks, o.interval)
		sched := func(align string) *schedule {
			return &schedule{checks: o.checks, interval: o.interval, window: o.window, align: align}
		}
		cases = append(cases,
			kase{name: casePlugin, load: load + ", aligned", vs: load + ", spread", sched: sched(plugin.AlignGroup), probe: pr.Probe, pid: plugPID},
			kase{name: casePlugin, load: load + ", spread", sched: sched(""), probe: pr.Probe, pid: plugPID},
			kase{name: caseSh, load: load + ", spread", sched: sched(""), probe: sh, pid: noPID},
			kase{name: caseTrue, load: load + ", spread", sched: sched(""), probe: tru, pid: noPID},
		)
	}
	results := make([][]result, len(cases))
	for r := range o.runs {
		for i := range cases {
			// Rotate the order from run to run.
			c := (i + r) % len(cases)
			k := cases[c]
			res, err := measure(k, min(k.n/10, 200))
			if err != nil {
				return fmt.Errorf("run %d, %s, %s: %w", r+1, k.name, k.load, err)
			}
			logf("run %d: %-26s %-36s CPU %6.1f µs/probe (host %6.1f), p50 %7.1f µs, p99 %7.1f µs",
				r+1, k.name, k.load, us(res.cpuPerProbe), us(res.hostPerProbe), us(res.p50), us(res.p99))
			results[c] = append(results[c], res)
		}
	}
	if np, err := pluginPID(dir); err != nil || np != pid {
		return fmt.Errorf("the plugin process changed during the runs (%d -> %d, %v): results are void", pid, np, err)
	}
	ka := runKeepalived(o, work)
	if ka.skipped != "" {
		logf("keepalived case skipped: %s", ka.skipped)
	}
	rep := report{o: o, cases: cases, results: results, ka: ka, took: time.Since(start), loadBefore: loadBefore, loadAfter: loadavg(), date: start}
	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := writeBlock(o.out, md); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// The cases, by what probes.
const (
	casePlugin = "plugin probe"
	caseSh     = "fork+exec #!/bin/sh script"
	caseTrue   = "fork+exec /bin/true"
)

// measure runs k.n probes of k after warm unmeasured ones, or k's schedule.
func measure(k kase, warm int) (result, error) {
	run := func(n int) ([]time.Duration, error) { return loop(k, n) }
	if k.sched != nil {
		run = func(int) ([]time.Duration, error) { return scheduled(k) }
	} else if _, err := loop(k, warm); err != nil {
		return result{}, err
	}
	runtime.GC() // garbage of one case is not paid by the next
	pid := k.pid()
	self0, kids0, plug0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN), procCPU(pid)
	t0 := time.Now()
	lat, err := run(k.n)
	wall := time.Since(t0)
	self := rusage(syscall.RUSAGE_SELF) - self0
	kids := rusage(syscall.RUSAGE_CHILDREN) - kids0
	plug := procCPU(pid) - plug0
	if err != nil {
		return result{}, err
	}
	if len(lat) == 0 {
		return result{}, errors.New("no probe ran")
	}
	slices.Sort(lat)
	n := time.Duration(len(lat))
	return result{
		cpuPerProbe:  (self + kids + plug) / n,
		hostPerProbe: self / n,
		wallPerProbe: wall / n,
		p50:          lat[len(lat)/2],
		p99:          lat[len(lat)*99/100],
	}, nil
}

// scheduled runs k.sched.checks checks of k's probe through core/checksched's scheduler for the
// window and returns the latencies of the probes that ran. The window includes the first
// interval, in which the spread checks start one by one.
func scheduled(k kase) ([]time.Duration, error) {
	s := k.sched
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	var firstErr string
	end := time.Now().Add(s.window) // the window's deadline
	specs := make([]checksched.Spec, s.checks)
	for i := range specs {
		specs[i] = checksched.Spec{
			Name: fmt.Sprintf("chk%d", i), Interval: s.interval, Timeout: 5 * time.Second, Rise: 1, Fall: 1, Align: s.align,
			Prober: proberFunc(func(ctx context.Context) checksched.Result {
				t := time.Now()
				r := k.probe(ctx)
				d := time.Since(t)
				if !r.OK && (ctx.Err() != nil || !time.Now().Before(end)) {
					// Cut short by the end of the window: not a probe that ran. (By the
					// clock too: a probe can find the window's deadline passed before the
					// window's timer has cancelled its context.)
					return checksched.Result{}
				}
				mu.Lock()
				lat = append(lat, d)
				if !r.OK {
					failed++
					firstErr = cmp.Or(firstErr, r.Msg)
				}
				mu.Unlock()
				return checksched.Result{OK: r.OK}
			}),
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	changes := make(chan checksched.Change, s.checks)
	go func() {
		for range changes {
		}
	}()
	checksched.Run(ctx, specs, changes)
	close(changes)
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d probes failed; the first: %s", failed, len(lat), firstErr)
	}
	return lat, nil
}

type proberFunc func(ctx context.Context) checksched.Result

// scriptProbe runs path once per probe the way vigil-check-exec runs a vrrp_script: through
// core/procrun's Check, the plugin's own way (its settings, one run of a command at a time),
// exit status 0 the success. It keeps n configured copies of the command, as n checks of the
// plugin would be, so that up to n probes can be in flight.
func scriptProbe(path string, n int) func(ctx context.Context) checksched.Result {
	free := make(chan *procrun.Check, n)
	for range n {
		free <- procrun.NewCheck(path, []string{path}, procrun.CheckOptions{})
	}
	return func(ctx context.Context) checksched.Result {
		c := <-free
		defer func() { free <- c }()
		r := c.Run(ctx)
		if r.Success() {
			return checksched.Result{OK: true}
		}
		return checksched.Result{Msg: r.Describe()}
	}
}

func (f proberFunc) Probe(ctx context.Context) checksched.Result { return f(ctx) }

// loop runs n probes, k.parallel at a time, and returns their latencies.
func loop(k kase, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Pointer[string]
	var wg sync.WaitGroup
	for range k.parallel {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				// The deadline a check with timeout 5 gets from the scheduler.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t := time.Now()
				r := k.probe(ctx)
				lat[i] = time.Since(t)
				cancel()
				if !r.OK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &r.Msg)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return nil, fmt.Errorf("%d of %d probes failed; the first: %s", f, n, *firstErr.Load())
	}
	return lat, nil
}

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of a live process in nanoseconds: the sum over its threads of
// /proc/PID/task/TID/schedstat, which counts exactly where /proc/PID/stat counts 10 ms ticks.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// pluginPID finds the plugin process among this process's children by its executable.
func pluginPID(dir string) (int, error) {
	want := filepath.Join(dir, plugin.Executable(sdk.KindCheck, "trivial"))
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != me {
			continue
		}
		if exe, _ := os.Readlink("/proc/" + e.Name() + "/exe"); exe == want {
			return pid, nil
		}
	}
	return 0, errors.New("the plugin process is not among this process's children")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
