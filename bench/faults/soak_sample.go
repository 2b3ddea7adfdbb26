package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/bench/internal/daemon"
	"github.com/vigil-ha/vigil/bench/internal/proc"
	"github.com/vigil-ha/vigil/core/control"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// The soak's samplers: every few seconds, what each long-lived process of a daemon holds
// (/proc: RSS, threads, open descriptors; vigil's goroutines from its status, which each
// process counts itself), kept as series per process and metric; at the end, the least
// squares slope of each series and whether it grew.

// metric is one sampled figure.
type metric int

const (
	mFDs metric = iota
	mGoroutines
	mRSS // KiB
	mThreads
	nMetrics
)

func (m metric) String() string {
	return [...]string{"fds", "goroutines", "RSS", "threads"}[m]
}

// growthBound is how much a series may grow from its first quarter to its last (means)
// before the soak says it grows, for the metrics that must not (descriptors, goroutines);
// see soakMethod for why these bounds.
var growthBound = [nMetrics]float64{mFDs: 4, mGoroutines: 10}

// series is one metric of one process over the soak.
type series struct {
	at  []time.Duration // since the first sample
	val []float64
}

func (s *series) add(at time.Duration, v float64) {
	s.at = append(s.at, at)
	s.val = append(s.val, v)
}

// slopePerHour is the least squares slope of the series, per hour; 0 with fewer than two
// samples.
func (s *series) slopePerHour() float64 {
	n := float64(len(s.val))
	if n < 2 {
		return 0
	}
	var mx, my float64
	for i := range s.val {
		mx += s.at[i].Hours()
		my += s.val[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range s.val {
		dx := s.at[i].Hours() - mx
		sxy += dx * (s.val[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// growth is the mean of the last quarter of the samples minus that of the first: a step
// or a trend, but not the jitter of one sample.
func (s *series) growth() float64 {
	q := len(s.val) / 4
	if q < 1 {
		return 0
	}
	mean := func(v []float64) float64 {
		sum := 0.0
		for _, x := range v {
			sum += x
		}
		return sum / float64(len(v))
	}
	return mean(s.val[len(s.val)-q:]) - mean(s.val[:q])
}

func (s *series) first() float64 { return s.val[0] }
func (s *series) last() float64  { return s.val[len(s.val)-1] }

// soakProc is one long-lived process of a daemon: "n1 core", "n2 vrrp", "n1 keepalived".
type soakProc struct {
	label string
	pid   int
	m     [nMetrics]*series // nil: not sampled (goroutines of keepalived)
}

// sampler samples the daemons of a soak.
type sampler struct {
	start time.Time
	procs map[string]*soakProc
	// restarted lists the processes whose PID changed between samples (a restarted child):
	// their series mix two processes.
	restarted map[string]bool
}

func newSampler() *sampler {
	return &sampler{procs: map[string]*soakProc{}, restarted: map[string]bool{}}
}

// targets are the long-lived processes of d by label: vigil's core and children by role
// (and its plugins by name), keepalived's parent and VRRP child. Short-lived processes (a
// check script, a notify script) are left out: they come and go between samples.
func targets(d *daemon.Daemon) map[string]int {
	node := d.Node.Name
	out := map[string]int{}
	if d.Impl.Name == "keepalived" {
		out[node+" keepalived"] = d.PID()
		if c, ok := d.Children()["vrrp"]; ok {
			out[node+" keepalived vrrp"] = c
		}
		return out
	}
	out[node+" core"] = d.PID()
	for role, pid := range d.Children() {
		out[node+" "+role] = pid
	}
	for _, s := range proc.Tree(d.PID()) {
		args := proc.Cmdline(s.PID)
		if len(args) == 0 || s.Zombie {
			continue
		}
		b := filepath.Base(args[0])
		if !strings.HasPrefix(b, "vigil-check-") && !strings.HasPrefix(b, "vigil-notify-") {
			continue
		}
		// A plugin's child between fork and exec (a script it starts) still shows the
		// plugin's command line: not the plugin.
		if slices.Equal(proc.Cmdline(s.PPID), args) {
			continue
		}
		out[node+" "+b] = s.PID
	}
	return out
}

// goroutines asks vigil's control socket for the goroutine counts by label; nil for
// keepalived, or when the status cannot be had.
func goroutines(ctx context.Context, d *daemon.Daemon) (map[string]int, error) {
	if d.Impl.Name != "vigil" {
		return nil, nil
	}
	body, err := control.Get(ctx, filepath.Join(d.Dir, "vigil.sock"), "/status")
	if err != nil {
		return nil, err
	}
	var st supervisor.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("vigil status: %w", err)
	}
	node := d.Node.Name
	out := map[string]int{node + " core": st.Goroutines}
	for _, p := range st.Processes {
		if p.Goroutines > 0 {
			out[node+" "+p.Role] = p.Goroutines
		}
	}
	return out, nil
}

// sample takes one sample of every daemon. /proc is read before the status is asked for,
// so that the status request's own connection is not counted among core's descriptors.
func (s *sampler) sample(ctx context.Context, ds []*daemon.Daemon) error {
	now := time.Now()
	if s.start.IsZero() {
		s.start = now
	}
	at := now.Sub(s.start)
	for _, d := range ds {
		if d == nil {
			continue
		}
		if d.Exited() {
			return fmt.Errorf("%s on %s exited:\n%s", d.Impl.Name, d.Node.Name, daemon.Tail(d.Output(), 1500))
		}
		use := map[string]proc.Usage{}
		pids := targets(d)
		for label, pid := range pids {
			u, err := proc.ReadUsage(pid)
			if err != nil {
				continue // gone between the listing and the reading: the next sample sees
			}
			use[label] = u
		}
		gr, err := goroutines(ctx, d)
		if err != nil {
			return err
		}
		for label, u := range use {
			p := s.procs[label]
			if p == nil {
				p = &soakProc{label: label, pid: pids[label]}
				for m := range nMetrics {
					if m != mGoroutines || d.Impl.Name == "vigil" {
						p.m[m] = &series{}
					}
				}
				s.procs[label] = p
			}
			if p.pid != pids[label] {
				s.restarted[label] = true
				p.pid = pids[label]
			}
			p.m[mFDs].add(at, float64(u.FDs))
			p.m[mRSS].add(at, float64(u.RSSKB))
			p.m[mThreads].add(at, float64(u.Threads))
			if p.m[mGoroutines] != nil {
				if g, ok := gr[label]; ok {
					p.m[mGoroutines].add(at, float64(g))
				}
			}
		}
	}
	return nil
}

// run samples every every until ctx ends or d passes.
func (s *sampler) run(ctx context.Context, ds []*daemon.Daemon, d, every time.Duration) error {
	end := time.Now().Add(d)
	for {
		if err := s.sample(ctx, ds); err != nil {
			return err
		}
		next := time.Now().Add(every)
		if next.After(end) {
			return nil
		}
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			return err
		}
	}
}

// labels are the sampled processes in order.
func (s *sampler) labels() []string {
	out := make([]string, 0, len(s.procs))
	for l := range s.procs {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// samples is the number of samples of the series with most.
func (s *sampler) samples() int {
	n := 0
	for _, p := range s.procs {
		n = max(n, len(p.m[mFDs].val))
	}
	return n
}

// grown lists the series of bounded metrics that grew beyond their bound, as text.
func (s *sampler) grown() []string {
	var out []string
	for _, l := range s.labels() {
		p := s.procs[l]
		for _, m := range []metric{mFDs, mGoroutines} {
			sr := p.m[m]
			if sr == nil || len(sr.val) == 0 {
				continue
			}
			if g := sr.growth(); g > growthBound[m] {
				out = append(out, fmt.Sprintf("%s: %s grew by %.1f (first quarter to last; bound %.0f), %.0f → %.0f, %+.1f/h",
					l, m, g, growthBound[m], sr.first(), sr.last(), sr.slopePerHour()))
			}
		}
	}
	return out
}

// summary is one line per process: the last value and the slope per hour of each metric.
func (s *sampler) summary() []string {
	var out []string
	for _, l := range s.labels() {
		p := s.procs[l]
		var parts []string
		for m := range nMetrics {
			sr := p.m[m]
			if sr == nil || len(sr.val) == 0 {
				continue
			}
			if m == mRSS {
				parts = append(parts, fmt.Sprintf("RSS %.1f MiB (%+.1f MiB/h)", sr.last()/1024, sr.slopePerHour()/1024))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.0f (%+.1f/h)", m, sr.last(), sr.slopePerHour()))
		}
		line := l + ": " + strings.Join(parts, ", ")
		if s.restarted[l] {
			line += " (RESTARTED during the soak)"
		}
		out = append(out, line)
	}
	return out
}
