package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// The soak: two nodes with 100 instances at advert_int 0.1 and a check every 100 ms, left
// alone for a long time (-soak, 30 minutes; a minute in the short form). Nothing may move,
// and no process may grow in descriptors or goroutines.

const (
	soakInstances = 100
	soakAdvert    = 100 * time.Millisecond
	// soakShort is the short form's soak, part of make test.
	soakShort = time.Minute
	// soakWarm passes the start-up (the GARP bursts of garp_master_delay, 5 s, the first
	// check results) before the first sample: what a start allocates is not a leak.
	soakWarm = 8 * time.Second
)

// soakLong is the full run's soak: a flag of its own, which also stretches the scenario's
// time bound to fit.
type soakFlag struct {
	d  time.Duration
	sc *Scenario
}

func (f *soakFlag) String() string {
	if f == nil {
		return ""
	}
	return f.d.String()
}

func (f *soakFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 10*time.Second {
		return fmt.Errorf("want a duration of 10s or more")
	}
	f.d = d
	f.sc.Timeout = soakTimeout(d)
	return nil
}

// soakTimeout bounds a soak of d: the lab, the start of 100 instances, the warm-up and the
// measurement around it.
func soakTimeout(d time.Duration) time.Duration { return d + 4*time.Minute }

func init() {
	long := &Scenario{
		Name: "soak",
		Doc: `Two nodes, 100 vrrp_instances at advert_int 0.1 (VRIDs 51-150), vigil's and keepalived's labs side by side at the same time, every instance tracking
			one shared vrrp_script (/bin/true, weight -10: a failed run lowers a priority and moves
			nothing) that vigil runs every 100 ms and keepalived every second (its minimum: keepalived
			2.2.7 refuses an interval below 1 s); then left alone for -soak (30 minutes). Every few
			seconds each long-lived process of each daemon is sampled (see Method). Must hold: no
			transition anywhere after the start, one master, and no process growing by more than 4
			descriptors or 10 goroutines from the first quarter of the samples to the last.`,
		Method: soakMethod,
		KeepalivedBreaks: `on a loaded machine its backups' timers expire now and then and they take over
			for a moment (the "timer expired" false failovers operators complain of); seen with 100
			instances at advert_int 0.1 at a load average of 25 on 2 cores.`,
		Nodes: 2,
		// Half an hour each is long, and the two face the same load only side by side.
		Together: true,
		Run:      func(ctx context.Context, e *Env) (*Result, error) { return runSoak(ctx, e, soakLen.d, 10*time.Second) },
	}
	long.Timeout = soakTimeout(30 * time.Minute)
	soakLen.d, soakLen.sc = 30*time.Minute, long
	flag.Var(&soakLen, "soak", "length of the full run's soak (the soak scenario)")
	scenarios.add(
		&Scenario{
			Name: "soak-short",
			Doc: `The soak for one minute, sampled every 2 s, vigil only: part of make test, which
				guards vigil. keepalived's row is the full soak's: on a heavily loaded CI machine
				keepalived's backups were seen to take over now and then, which would turn CI red for
				keepalived's sake.`,
			Short:   true,
			Impls:   []string{"vigil"},
			Method:  soakMethod,
			Nodes:   2,
			Timeout: soakTimeout(soakShort),
			Run:     func(ctx context.Context, e *Env) (*Result, error) { return runSoak(ctx, e, soakShort, 2*time.Second) },
		},
		long,
	)
}

const soakMethod = `**Soak** (soak, soak-short). From 8 s after the cluster settled (past the second GARP
burst, garp_master_delay 5 s, and the first check results), each long-lived process of each daemon is sampled
every 10 s (2 s in soak-short): vigil's core and its check and vrrp children (and plugin processes, if any),
keepalived's parent and its VRRP child; check and notify scripts come and go and are left out. Descriptors: the
entries of /proc/PID/fd; RSS: VmRSS; threads: Threads in /proc/PID/status; goroutines: vigil status --json, in
which core and each child count their own (runtime.NumGoroutine), asked after /proc is read so that the
request's own connection is not counted. Slope: least squares over the samples, per hour. Growth: the mean of
the last quarter of the samples minus that of the first. Bounds: 4 descriptors and 10 goroutines per process.
Why: in a steady state the descriptors and goroutines of a process are a fixed set (a socket or two per
interface and instance group, the gRPC connections between core and its children, the control socket, one
goroutine per instance, per stream and per timer); what comes and goes is per request: a check run in flight
holds its child's pipes (up to 3 descriptors) and the goroutines of os/exec and of its deadline (about 4), a
gRPC call a few more. A quarter mean smooths a sample taken during such a run; a one-time step (a socket opened
lazily) stays under the bounds, while a leak of one descriptor or goroutine per check run (10 a second) grows by
hundreds in a minute, and one per minute by over 20 in 30 minutes. RSS and threads are reported, not bounded:
the Go runtime grows its heap and its threads to the peak need and gives memory back lazily.`

// soakLen is the -soak flag. It is main's: package main's flags are registered by the
// files that use them, before main parses them.
var soakLen soakFlag

func soakConf(impl string) Conf {
	interval := "0.1"
	if impl == "keepalived" {
		interval = "1"
	}
	return Conf{
		Instances: soakInstances,
		Advert:    soakAdvert,
		Instance:  "track_script {\n    chk_soak weight -10\n}",
		Top: fmt.Sprintf(`vrrp_script chk_soak {
    script "/bin/true"
    interval %s
    timeout 1
    fall 3
    rise 1
}`, interval),
	}
}

func runSoak(ctx context.Context, e *Env, d, every time.Duration) (*Result, error) {
	if err := e.StartCluster(ctx, soakConf(e.Impl.Name)); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, soakWarm); err != nil {
		return nil, err
	}
	e.Logf("soak: %s, sampling every %s", d, every)
	s := newSampler()
	if err := s.run(ctx, e.Daemons, d, every); err != nil {
		return nil, err
	}
	r, err := e.Measure(ctx, start, 0, 0, 0, 1)
	if err != nil {
		return r, err
	}
	r.Note("%d samples over %s", s.samples(), d)
	if ts := e.Transitions(1, start); len(ts) > 0 {
		// Takeovers come in bursts when the master's process stalls: count the seconds.
		secs := map[int64]bool{}
		for _, t := range ts {
			if t.State == "MASTER" {
				secs[t.At.Unix()] = true
			}
		}
		r.Note("n2 took over %d times, in %d distinct seconds", countState(ts, time.Now(), "MASTER"), len(secs))
	}
	for _, l := range s.summary() {
		r.Note("%s", l)
	}
	for _, g := range s.grown() {
		r.Fail("%s", g)
	}
	for l := range s.restarted {
		r.Fail("%s restarted during the soak", l)
	}
	return r, nil
}
