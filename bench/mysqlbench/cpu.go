package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/procrun"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// The monitor account both ways of checking log in as. The password has no character that a
// shell, keepalived.conf or the mysql client would treat specially.
const (
	monitorUser = "monitor"
	monitorPass = "m0nPw7"
	probeQuery  = "SELECT 1"
	// probeTimeout is the deadline of every probe, as a check with timeout 1 gets it.
	probeTimeout = time.Second
)

// The two ways of probing.
const (
	wayPlugin = "vigil: mysql plugin"
	wayScript = "keepalived: sh + mysql client"
)

// cpuCase is one way of probing under one load.
type cpuCase struct {
	way  string
	load string
	// n probes back to back, or interval > 0: one check on that interval through
	// core/checksched's scheduler for window.
	n        int
	interval time.Duration
	window   time.Duration
	probe    checksched.Prober
	// pid of the long-lived process that serves the probes besides this one (the plugin).
	pid int
}

// cpuResult is one measured run of one case.
type cpuResult struct {
	probes  int
	elapsed time.Duration
	host    time.Duration // this process (getrusage RUSAGE_SELF)
	child   time.Duration // reaped scripts (RUSAGE_CHILDREN) or the plugin process (schedstat)
	server  time.Duration // mariadbd
	exited  int           // mariadbd threads that ended during the run
	lat     []time.Duration
}

func (r cpuResult) per(d time.Duration) time.Duration {
	if r.probes == 0 {
		return 0
	}
	return d / time.Duration(r.probes)
}

// idleResult is the CPU a window without probes costs: the plugin process and the server.
type idleResult struct {
	elapsed        time.Duration
	plugin, server time.Duration
}

func (e *env) cpuBench(ctx context.Context, rep *report, cl *cleaner) error {
	o := e.o
	db, err := mariadb.Start(ctx, mariadb.Options{Dir: e.work, Log: logf})
	if err != nil {
		return err
	}
	cl.add(func() {
		if err := db.Stop(); err != nil {
			logf("stop mariadb: %v", err)
		}
	})
	if err := db.CreateUser(ctx, monitorUser, monitorPass, ""); err != nil {
		return err
	}
	serverPID := db.PID()
	rep.cpuServer = db.Addr()

	h := plugin.New(plugin.Options{Dir: e.pluginDir, Logger: hclog.NewNullLogger()})
	cl.add(func() { h.Close() })
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	params := []sdk.Param{
		{Key: "address", Values: []string{db.Addr()}},
		{Key: "user", Values: []string{monitorUser}},
		{Key: "password", Values: []string{monitorPass}},
		{Key: "query", Values: []string{probeQuery}},
	}
	if _, err := h.ConfigureCheck(cctx, "mysql", check.ConfigureRequest{Name: "chk", Params: params}); err != nil {
		return fmt.Errorf("configure the mysql plugin: %w", err)
	}
	pr := plugin.Prober{Host: h, Plugin: "mysql", Check: "chk"}
	if r := pr.Probe(cctx); !r.OK {
		return fmt.Errorf("first probe through the mysql plugin: %s", r.Msg)
	}
	pluginPID, err := childByExe(filepath.Join(e.pluginDir, "vigil-check-mysql"))
	if err != nil {
		return err
	}
	script := filepath.Join(e.work, fmt.Sprintf("check_mysql_%d.sh", db.Port))
	if err := writeScript(script, e.mysql, db.Host, db.Port); err != nil {
		return err
	}
	rep.script = scriptBody(e.mysql, db.Host, db.Port)
	sh := newScriptProber(script)
	if r := sh.Probe(cctx); !r.OK {
		return fmt.Errorf("first probe with %s: %s", script, r.Msg)
	}

	var cases []cpuCase
	cases = append(cases,
		cpuCase{way: wayPlugin, load: loadSeq, n: o.probes, probe: pr, pid: pluginPID},
		cpuCase{way: wayScript, load: loadSeq, n: o.forks, probe: sh},
	)
	for _, s := range []struct {
		iv     time.Duration
		window time.Duration
	}{{time.Second, o.window1}, {100 * time.Millisecond, o.window10}} {
		load := fmt.Sprintf("1 check every %s", seconds(s.iv)+" s")
		cases = append(cases,
			cpuCase{way: wayPlugin, load: load, interval: s.iv, window: s.window, probe: pr, pid: pluginPID},
			cpuCase{way: wayScript, load: load, interval: s.iv, window: s.window, probe: sh},
		)
	}
	rep.cpuCases = cases
	rep.cpuResults = make([][]cpuResult, len(cases))
	logf("CPU per probe: %d runs of %d cases against mariadbd pid %d on %s", o.runs, len(cases), serverPID, db.Addr())
	for r := range o.runs {
		for i := range cases {
			c := (i + r) % len(cases) // rotate the order from run to run
			k := cases[c]
			res, err := measureCPU(ctx, k, serverPID)
			if err != nil {
				return fmt.Errorf("run %d, %s, %s: %w", r+1, k.way, k.load, err)
			}
			logf("run %d: %-30s %-22s %4d probes: prober %7.1f µs/probe (host %7.1f, child %7.1f), server %6.1f µs/probe, p50 %7.1f µs",
				r+1, k.way, k.load, res.probes, us(res.per(res.host+res.child)), us(res.per(res.host)), us(res.per(res.child)), us(res.per(res.server)), us(median(res.lat)))
			rep.cpuResults[c] = append(rep.cpuResults[c], res)
		}
		idle, err := measureIdle(ctx, o.idle, pluginPID, serverPID)
		if err != nil {
			return err
		}
		logf("run %d: idle %s: plugin %.2f ms/s, server %.2f ms/s", r+1, o.idle, msPerSec(idle.plugin, idle.elapsed), msPerSec(idle.server, idle.elapsed))
		rep.idle = append(rep.idle, idle)
	}
	if np, err := childByExe(filepath.Join(e.pluginDir, "vigil-check-mysql")); err != nil || np != pluginPID {
		return fmt.Errorf("the plugin process changed during the runs (%d -> %d, %v): results are void", pluginPID, np, err)
	}
	if db.PID() != serverPID {
		return fmt.Errorf("mariadbd changed during the runs: results are void")
	}
	// One kept connection: the plugin's probes must not have piled up sessions.
	if n, err := db.Connections(ctx, monitorUser); err == nil {
		rep.pluginSessions = n
	}
	if err := h.Close(); err != nil {
		logf("plugin host: %v", err)
	}
	if err := db.Stop(); err != nil {
		return fmt.Errorf("stop mariadb: %w", err)
	}
	return nil
}

const loadSeq = "back to back"

// scriptBody is keepalived's usual MySQL check: a shell script running the client, whose
// exit status is the verdict.
func scriptBody(mysql, host string, port int) string {
	return fmt.Sprintf("#!/bin/sh\n%s -h %s -P %d -u %s -p%s -e \"%s\" >/dev/null 2>&1\n", mysql, host, port, monitorUser, monitorPass, probeQuery)
}

// writeScript writes the check script, owned by root and writable by nobody else, as
// keepalived's enable_script_security wants it.
func writeScript(path, mysql, host string, port int) error {
	if err := os.WriteFile(path, []byte(scriptBody(mysql, host, port)), 0o755); err != nil {
		return fmt.Errorf("check script: %w", err)
	}
	return nil
}

// measureCPU runs k after a few unmeasured probes and returns what it cost.
func measureCPU(ctx context.Context, k cpuCase, serverPID int) (cpuResult, error) {
	if k.interval == 0 {
		if _, err := backToBack(ctx, k.probe, max(k.n/20, 5)); err != nil {
			return cpuResult{}, err
		}
	}
	runtime.GC() // the garbage of one case is not paid by the next
	self0, kids0 := rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	plug0, srv0 := snap(k.pid), snap(serverPID)
	t0 := time.Now()
	var lat []time.Duration
	var err error
	if k.interval == 0 {
		lat, err = backToBack(ctx, k.probe, k.n)
	} else {
		lat, err = scheduled(ctx, k)
	}
	elapsed := time.Since(t0)
	self := rusage(syscall.RUSAGE_SELF) - self0
	kids := rusage(syscall.RUSAGE_CHILDREN) - kids0
	plug, _ := cpuSince(k.pid, plug0)
	srv, exited := cpuSince(serverPID, srv0)
	if err != nil {
		return cpuResult{}, err
	}
	if len(lat) == 0 {
		return cpuResult{}, errors.New("no probe ran")
	}
	return cpuResult{probes: len(lat), elapsed: elapsed, host: self, child: kids + plug, server: srv, exited: exited, lat: lat}, nil
}

func measureIdle(ctx context.Context, window time.Duration, pluginPID, serverPID int) (idleResult, error) {
	p0, s0 := snap(pluginPID), snap(serverPID)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return idleResult{}, ctx.Err()
	case <-time.After(window):
	}
	el := time.Since(t0)
	p, _ := cpuSince(pluginPID, p0)
	s, _ := cpuSince(serverPID, s0)
	return idleResult{elapsed: el, plugin: p, server: s}, nil
}

// backToBack runs n probes one after the other, each with the deadline of a check.
func backToBack(ctx context.Context, p checksched.Prober, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		t := time.Now()
		r := p.Probe(pctx)
		lat = append(lat, time.Since(t))
		cancel()
		if !r.OK {
			return nil, fmt.Errorf("probe %d failed: %s", len(lat), r.Msg)
		}
	}
	return lat, nil
}

// scheduled runs one check of k's probe through core/checksched's scheduler for the window, as
// vigil's check process runs it (plugin checks aligned on their grid, scripts at a random
// phase), and returns the latencies of the probes that ran.
func scheduled(ctx context.Context, k cpuCase) ([]time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var failed []string
	align := ""
	if k.way == wayPlugin {
		align = plugin.AlignGroup
	}
	spec := checksched.Spec{
		Name: "chk", Interval: k.interval, Timeout: probeTimeout, Rise: 1, Fall: 1, Align: align,
		Prober: proberFunc(func(pctx context.Context) checksched.Result {
			t := time.Now()
			r := k.probe.Probe(pctx)
			d := time.Since(t)
			if !r.OK && pctx.Err() != nil && ctx.Err() == nil {
				// Cut short by the end of the window: not a probe that ran.
				return checksched.Result{}
			}
			mu.Lock()
			lat = append(lat, d)
			if !r.OK {
				failed = append(failed, r.Msg)
			}
			mu.Unlock()
			return r
		}),
	}
	wctx, cancel := context.WithTimeout(ctx, k.window)
	defer cancel()
	changes := make(chan checksched.Change, 4)
	go func() {
		for range changes {
		}
	}()
	checksched.Run(wctx, []checksched.Spec{spec}, changes)
	close(changes)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		return nil, fmt.Errorf("%d of %d probes failed, first: %s", len(failed), len(lat), failed[0])
	}
	return lat, nil
}

type proberFunc func(ctx context.Context) checksched.Result

func (f proberFunc) Probe(ctx context.Context) checksched.Result { return f(ctx) }

// scriptProber runs the check script once per probe the way vigil-check-exec runs a
// vrrp_script: through core/procrun's Check, the plugin's own way (its settings, one run at a
// time), exit status 0 the success.
type scriptProber struct{ check *procrun.Check }

func newScriptProber(path string) scriptProber {
	return scriptProber{procrun.NewCheck(path, []string{path}, procrun.CheckOptions{})}
}

func (s scriptProber) Probe(ctx context.Context) checksched.Result {
	r := s.check.Run(ctx)
	if r.Success() {
		return checksched.Result{OK: true}
	}
	return checksched.Result{Msg: r.Describe()}
}

// childByExe finds the process among this process's children that runs exe.
func childByExe(exe string) (int, error) {
	me := os.Getpid()
	for _, s := range proc.All() {
		if s.PPID != me {
			continue
		}
		if p, _ := os.Readlink("/proc/" + strconv.Itoa(s.PID) + "/exe"); p == exe {
			return s.PID, nil
		}
	}
	return 0, fmt.Errorf("no child of this process runs %s", exe)
}

func median(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func msPerSec(d, over time.Duration) float64 {
	if over <= 0 {
		return 0
	}
	return float64(d) / float64(time.Millisecond) / over.Seconds()
}
