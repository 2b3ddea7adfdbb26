package check

import (
	"context"
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
	// Stagger the first probe over the first interval.
	wait := time.Duration(rand.Int64N(int64(interval)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
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
		// probe itself took longer: never two probes of one check at the same time.
		wait = max(interval-time.Since(start), 0)
	}
}
