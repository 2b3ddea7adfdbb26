// Command pluginbench measures what one health-check probe costs through vigil's plugin
// boundary, beside keepalived's way of running a check (fork and exec of a script per probe),
// and writes the results into BENCHMARKS.md:
//
//	go run ./bench/pluginbench -out BENCHMARKS.md
//
// The plugin is a trivial check built with the SDK (this program itself, started again as
// vigil-check-trivial: it answers OK at once), probed through core/plugin's Host and Prober as
// the check scheduler probes it. The scripts are a "#!/bin/sh" script that exits 0 and
// /bin/true, run by core/check.Script as vrrp_script runs them. Each is measured one probe at
// a time and with N probes in flight, in several runs whose order rotates, so that slow drifts
// of the shared machine hit all alike. No root needed; nothing leaves the machine.
package main

import (
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

	corecheck "github.com/vigil-ha/vigil/core/check"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

type options struct {
	out      string
	runs     int
	probes   int
	forks    int
	inFlight int
	profile  string
}

func main() {
	// Started by the plugin host: be the trivial check plugin.
	if os.Getenv(sdk.Handshake().MagicCookieKey) != "" {
		check.Serve(trivial{})
		return
	}
	var o options
	flag.StringVar(&o.out, "out", "", "write the results into the pluginbench block of this file (BENCHMARKS.md); empty: stdout only")
	flag.IntVar(&o.runs, "runs", 5, "runs of every case; the report gives medians over them")
	flag.IntVar(&o.probes, "probes", 4000, "plugin probes per case and run")
	flag.IntVar(&o.forks, "forks", 1000, "script probes per case and run")
	flag.IntVar(&o.inFlight, "inflight", 32, "probes in flight in the concurrent cases")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of this process (the host side) to this file")
	flag.Parse()
	if o.runs < 1 || o.probes < 100 || o.forks < 100 || o.inFlight < 2 {
		fatalf("want -runs >= 1, -probes >= 100, -forks >= 100, -inflight >= 2")
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

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pluginbench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

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

// kase is one way of probing, measured one at a time and with probes in flight.
type kase struct {
	name     string
	parallel int
	n        int
	probe    func(ctx context.Context) bool
	// pid of the long-lived process that serves the probes besides this one, 0 for none.
	pid func() int
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
	sh := corecheck.Script{Argv: []string{script}}
	tru := corecheck.Script{Argv: []string{"/bin/true"}}
	probe := func(p corecheck.Prober) func(ctx context.Context) bool {
		return func(ctx context.Context) bool { return p.Probe(ctx).OK }
	}
	noPID := func() int { return 0 }
	cases := []kase{
		{name: "plugin probe", parallel: 1, n: o.probes, probe: probe(pr), pid: func() int { return pid }},
		{name: "fork+exec #!/bin/sh script", parallel: 1, n: o.forks, probe: probe(sh), pid: noPID},
		{name: "fork+exec /bin/true", parallel: 1, n: o.forks, probe: probe(tru), pid: noPID},
		{name: "plugin probe", parallel: o.inFlight, n: o.probes, probe: probe(pr), pid: func() int { return pid }},
		{name: "fork+exec #!/bin/sh script", parallel: o.inFlight, n: o.forks, probe: probe(sh), pid: noPID},
		{name: "fork+exec /bin/true", parallel: o.inFlight, n: o.forks, probe: probe(tru), pid: noPID},
	}
	results := make([][]result, len(cases))
	for r := range o.runs {
		for i := range cases {
			// Rotate the order from run to run.
			c := (i + r) % len(cases)
			k := cases[c]
			res, err := measure(k, min(k.n/10, 200))
			if err != nil {
				return fmt.Errorf("run %d, %s, %d in flight: %w", r+1, k.name, k.parallel, err)
			}
			logf("run %d: %-28s %2d in flight: CPU %6.1f µs/probe (host %6.1f), p50 %7.1f µs, p99 %7.1f µs",
				r+1, k.name, k.parallel, us(res.cpuPerProbe), us(res.hostPerProbe), us(res.p50), us(res.p99))
			results[c] = append(results[c], res)
		}
	}
	if np, err := pluginPID(dir); err != nil || np != pid {
		return fmt.Errorf("the plugin process changed during the runs (%d -> %d, %v): results are void", pid, np, err)
	}
	rep := report{o: o, cases: cases, results: results, took: time.Since(start), loadBefore: loadBefore, loadAfter: loadavg(), date: start}
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

// measure runs k.n probes of k after warm unmeasured ones.
func measure(k kase, warm int) (result, error) {
	if _, err := loop(k, warm); err != nil {
		return result{}, err
	}
	runtime.GC() // garbage of one case is not paid by the next
	pid := k.pid()
	self0, kids0, plug0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN), procCPU(pid)
	t0 := time.Now()
	lat, err := loop(k, k.n)
	wall := time.Since(t0)
	self := rusage(syscall.RUSAGE_SELF) - self0
	kids := rusage(syscall.RUSAGE_CHILDREN) - kids0
	plug := procCPU(pid) - plug0
	if err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	n := time.Duration(k.n)
	return result{
		cpuPerProbe:  (self + kids + plug) / n,
		hostPerProbe: self / n,
		wallPerProbe: wall / n,
		p50:          lat[len(lat)/2],
		p99:          lat[len(lat)*99/100],
	}, nil
}

// loop runs n probes, k.parallel at a time, and returns their latencies.
func loop(k kase, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range k.parallel {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				// The deadline a check with timeout 5 gets from the scheduler.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t := time.Now()
				ok := k.probe(ctx)
				lat[i] = time.Since(t)
				cancel()
				if !ok {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return nil, fmt.Errorf("%d of %d probes failed", f, n)
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
