package plugin

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/procrun"
	"github.com/vigil-ha/vigil/sdk/check"
)

// BenchmarkProbe is one probe of a trivial check through the plugin boundary, as the
// scheduler runs it: host Prober -> gRPC (mTLS, unix socket) -> plugin -> back. Besides
// ns/op it reports latency percentiles and the CPU time of both processes per probe. These
// are quick checks while working on the host; bench/pluginbench is the side-by-side run, with
// medians over several runs and scheduled checks, that BENCHMARKS.md reports.
func BenchmarkProbe(b *testing.B) {
	h := New(Options{Dir: pluginDir, Logger: hclog.NewNullLogger()})
	defer h.Close()
	ctx := context.Background()
	if _, err := h.ConfigureCheck(ctx, "test", check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}}); err != nil {
		b.Fatal(err)
	}
	p := Prober{Host: h, Plugin: "test", Check: "good"}
	if r := p.Probe(ctx); !r.OK {
		b.Fatal(r.Msg)
	}
	pid := h.procs[key{"check", "test"}].cur.pid
	measure(b, pid, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.Probe(ctx).OK
	})
}

// BenchmarkProbeParallel is BenchmarkProbe with 32 probes in flight at a time, as when many
// checks share one plugin: the HTTP/2 connection then batches frames, and CPU per probe drops.
func BenchmarkProbeParallel(b *testing.B) {
	h := New(Options{Dir: pluginDir, Logger: hclog.NewNullLogger()})
	defer h.Close()
	ctx := context.Background()
	if _, err := h.ConfigureCheck(ctx, "test", check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}}); err != nil {
		b.Fatal(err)
	}
	p := Prober{Host: h, Plugin: "test", Check: "good"}
	if r := p.Probe(ctx); !r.OK {
		b.Fatal(r.Msg)
	}
	pid := h.procs[key{"check", "test"}].cur.pid
	const inFlight = 32
	measureParallel(b, pid, inFlight, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.Probe(ctx).OK
	})
}

// BenchmarkForkExecParallel is BenchmarkForkExec with 32 scripts running at a time.
func BenchmarkForkExecParallel(b *testing.B) {
	const inFlight = 32
	run := scripts("/bin/true", inFlight)
	measureParallel(b, 0, inFlight, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return run(ctx)
	})
}

// BenchmarkForkExec is keepalived's way, for comparison: fork and exec of a script per
// probe (/bin/true), run from this process the way vigil-check-exec runs a vrrp_script
// (scripts), without the plugin boundary in front of it.
func BenchmarkForkExec(b *testing.B) {
	run := scripts("/bin/true", 1)
	measure(b, 0, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return run(ctx)
	})
}

// scripts runs path as vigil-check-exec runs a vrrp_script: through core/procrun's Check, the
// plugin's own way (own process group, deadline, leftovers killed, output captured, one run
// of a command at a time); exit status 0 is success. It keeps n configured copies of the
// command, as n checks of the plugin would be, so that n probes can be in flight.
func scripts(path string, n int) func(ctx context.Context) bool {
	free := make(chan *procrun.Check, n)
	for range n {
		free <- procrun.NewCheck(path, []string{path}, procrun.CheckOptions{})
	}
	return func(ctx context.Context) bool {
		c := <-free
		defer func() { free <- c }()
		return c.Run(ctx).Success()
	}
}

// BenchmarkForkExecScript is keepalived's usual case: a shell script (#!/bin/sh, exit 0).
func BenchmarkForkExecScript(b *testing.B) {
	script := b.TempDir() + "/chk.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	run := scripts(script, 1)
	measure(b, 0, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return run(ctx)
	})
}

// measure runs probe b.N times and reports p50/p99 latency and CPU per probe: this process
// and its reaped children (getrusage), plus the plugin process pid when not 0 (/proc).
func measure(b *testing.B, pid int, probe func() bool) {
	measureParallel(b, pid, 1, probe)
}

// measureParallel is measure with n probes in flight at a time.
func measureParallel(b *testing.B, pid, n int, probe func() bool) {
	lat := make([]time.Duration, b.N)
	self0, kids0, plug0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN), procCPU(pid)
	b.ResetTimer()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				t := time.Now()
				if !probe() {
					failed.Store(true)
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if failed.Load() {
		b.Fatal("a probe failed")
	}
	self := rusage(syscall.RUSAGE_SELF) - self0
	kids := rusage(syscall.RUSAGE_CHILDREN) - kids0
	plug := procCPU(pid) - plug0
	slices.Sort(lat)
	nf := float64(b.N)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64((self+kids+plug).Nanoseconds())/nf, "cpu-ns/op")
	b.ReportMetric(float64(self.Nanoseconds())/nf, "host-cpu-ns/op")
	b.ReportMetric(float64((kids+plug).Nanoseconds())/nf, "child-cpu-ns/op")
}

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of a running process: the sum over its threads of
// /proc/PID/task/TID/schedstat, in nanoseconds (/proc/PID/stat counts 10 ms ticks).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}
