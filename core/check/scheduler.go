package check

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"
)

// Spec is one scheduled check.
type Spec struct {
	Name     string
	Prober   Prober
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	// InitFail starts the check down instead of up (keepalived's init_fail): an instance that
	// depends on it cannot become master before the check has passed rise times.
	InitFail bool
	// Align, when not empty, names a group of checks that probe at the same moments: checks
	// with the same Align and Interval start their probes on one shared grid, instead of
	// being spread over the interval like scripts. Plugin checks are all aligned: waking a
	// process costs more than what it then does for a probe, so probes that wake the check
	// process and a plugin together, and travel together, cost a fraction of the CPU time
	// of probes that come one by one (bench/pluginbench, BENCHMARKS.md).
	Align string
	// RetryDelay, when set, is keepalived's delay_before_retry for real_server checkers: after
	// a failed probe of a check that is still up (Fall counts retry+1), the next probe comes
	// after RetryDelay instead of Interval.
	RetryDelay time.Duration
	// Warmup, when set, is keepalived's warmup: the first probe comes at a random moment
	// within it instead of within the first interval.
	Warmup time.Duration
	// Note, when set, is something the operator should know about how this check runs,
	// logged once when it starts (a fallback, a disabled script).
	Note string
}

// Change is a check crossing its rise or fall threshold, or its dynamic weight changing.
type Change struct {
	Name string
	Up   bool
	Msg  string // the last probe's message
	// Weight is the dynamic weight the check reported last, nil while it has reported none.
	// A probe without one (a timeout, a plugin that crashed) keeps the weight reported
	// before: a failing check is handled by Up and the configured weight, and a weight that
	// blinked away with every timeout would move the priority for nothing. The weight is
	// not damped by rise and fall: a plugin that reports one should report a stable one.
	//
	// What VRRP makes of it (keepalived's vrrp_script has no dynamic weight): while the check
	// is up, a dynamic weight takes the place of the configured one's effect, so a check can
	// lower its node's priority step by step as its service degrades (e.g. -10 per 10 s of
	// replication lag) before it fails; while the check is down, the configured weight
	// applies exactly as for a vrrp_script (0: FAULT, negative: that penalty), so a plugin
	// can never soften what its failure does. Reverse tracking ignores dynamic weights.
	Weight *int
	// Metrics are those of the probe that caused the change.
	Metrics map[string]float64
}

// Threshold counts consecutive results: it flips to up after rise successes and to down
// after fall failures, so a single odd result never changes the state.
type Threshold struct {
	Rise, Fall int
	up         bool
	run        int // consecutive results that disagree with the current state
}

// NewThreshold starts up, or down when initFail is set.
func NewThreshold(rise, fall int, initFail bool) *Threshold {
	return &Threshold{Rise: max(rise, 1), Fall: max(fall, 1), up: !initFail}
}

// Up is the current state.
func (t *Threshold) Up() bool { return t.up }

// Add records one result and reports whether the state changed.
func (t *Threshold) Add(ok bool) bool {
	if ok == t.up {
		t.run = 0
		return false
	}
	t.run++
	need := t.Fall
	if ok {
		need = t.Rise
	}
	if t.run >= need {
		t.up, t.run = ok, 0
		return true
	}
	return false
}

// Run probes every spec on its interval, one probe in flight per check, with first runs
// spread over the first interval so that a hundred checks do not start at once. It sends the
// initial state of every check, then each change, until ctx ends.
func Run(ctx context.Context, specs []Spec, changes chan<- Change) {
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runOne(ctx, s, changes)
		}()
	}
	wg.Wait()
}

func runOne(ctx context.Context, s Spec, changes chan<- Change) {
	th := NewThreshold(s.Rise, s.Fall, s.InitFail)
	var weight *int // the dynamic weight sent last
	send := func(c Change) bool {
		select {
		case changes <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !send(Change{Name: s.Name, Up: th.Up(), Msg: "initial state"}) {
		return
	}
	interval := max(s.Interval, 10*time.Millisecond)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	// Stagger the first probe over the first interval, or start on the group's grid.
	wait := time.Duration(rand.Int64N(int64(interval)))
	if s.Warmup > 0 {
		wait = time.Duration(rand.Int64N(int64(s.Warmup)))
	} else if s.Align != "" {
		wait = time.Until(nextSlot(s.Align, interval, time.Now()))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, timeout)
		r := s.Prober.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		crossed := th.Add(r.OK)
		if r.Weight != nil && (weight == nil || *weight != *r.Weight) {
			w := *r.Weight
			weight, crossed = &w, true
		}
		if crossed && !send(Change{Name: s.Name, Up: th.Up(), Msg: r.Msg, Weight: weight, Metrics: r.Metrics}) {
			return
		}
		// The next probe starts one interval after this one started, or at once when the
		// probe itself took longer: never two probes of one check at the same time. An
		// aligned check starts on the first grid point half an interval or more after this
		// start (so a start a little late on its grid point still leads to the next one).
		wait = max(interval-time.Since(start), 0)
		if s.Align != "" {
			wait = max(time.Until(nextSlot(s.Align, interval, start.Add(interval/2))), 0)
		}
		if s.RetryDelay > 0 && !r.OK && th.Up() {
			wait = s.RetryDelay // a retry before the check goes down
		}
		timer.Reset(wait)
	}
}

// nextSlot is the first point at or after t of the grid that the checks aligned by align
// with this interval share: every interval, from a phase that a hash of the group's name
// chooses. The phase is computed, not kept, so that the checks agree on it without talking
// to each other. Taking the same hash modulo each interval makes the grids of intervals that
// divide each other (100 ms, 1 s, 2 s ...) meet, so that all due probes still go together.
func nextSlot(align string, interval time.Duration, t time.Time) time.Time {
	h := fnv.New64a()
	h.Write([]byte(align))
	phase := int64(h.Sum64() % uint64(interval))
	n := t.UnixNano() - phase
	k := n / int64(interval)
	if n%int64(interval) != 0 {
		k++
	}
	return time.Unix(0, k*int64(interval)+phase)
}
