package checksched

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sdkcheck "github.com/vigil-ha/vigil/sdk/check"
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
	// FirstDecides starts the check neither up nor down, as keepalived 2.2.7 starts a tracked
	// vrrp_script (vrrp_scheduler.c sets its result one success short of rise, and takes its
	// first failure as a failure whatever fall says): no state is sent until the first probe,
	// whose result alone is the check's state, then rise and fall count as usual. An instance
	// tracking it therefore never counts on a service that was never seen up (a dead service
	// at start with fall 3 would otherwise count as up for three intervals, long enough to
	// take mastership). The first probe comes at once instead of being staggered, as
	// keepalived runs such a script at once. InitFail, or a state carried over a restart
	// (Scheduler.Update), takes precedence: the state is then known. FromConfig sets it on
	// vrrp_scripts and vrrp_checks; real_server checkers start up, as keepalived's do.
	FirstDecides bool
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
	// Late, when set, is how much longer than Timeout the scheduler waits for a plugin's
	// answer: the plugin still gets Timeout (sdkcheck.WithProbeDeadline), and its verdict,
	// even one that comes late because the plugin or this process ran late, is what counts
	// (PluginLate says why).
	Late time.Duration
	// SuccessResetsWeight, set on real_server checkers, makes a success that reports no
	// weight drop the weight reported before (Change.Weight nil: the configured weight
	// again), as keepalived's MISC_CHECK with misc_dynamic goes back to the real server's
	// weight on exit 0 after an exit of 2..255. A VRRP check keeps its last weight instead
	// (see Change.Weight).
	SuccessResetsWeight bool
	// Note, when set, is something the operator should know about how this check runs,
	// logged once when it starts (a fallback, a disabled script).
	Note string
	// Key is a canonical text of everything that defines the check (its kind, plugin and
	// params, command and user, interval, timeout, rise, fall, init_fail ...): a reload keeps
	// a running check whose Name and Key are unchanged (Scheduler.Update), and does not even
	// configure it on its plugin again (FromConfigReusing). Empty means the check cannot be
	// compared, and a reload always restarts it: FromConfig leaves it empty for a check
	// that runs failing because its plugin refused it or is missing, so that a reload tries
	// again.
	Key string
}

// Change is a check crossing its rise or fall threshold, or its dynamic weight changing.
type Change struct {
	Name string
	Up   bool
	Msg  string // the last probe's message
	// Initial is set on the state a check sends when it starts, before any probe crossed a
	// threshold (Msg then says "initial state", for people only).
	Initial bool
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
	// can never soften what its failure does. Reverse tracking ignores dynamic weights. All of
	// that is decided in the vrrp process (fsm.Effective, the one owner of reverse): here Up
	// and Weight are what the check reported, never turned around, and rise and fall count
	// raw results whether an instance tracks the check with reverse or not, as keepalived
	// counts its vrrp_script's.
	Weight *int
	// Metrics are those of the probe that caused the change.
	Metrics map[string]float64
}

// Threshold counts consecutive results: it flips to up after rise successes and to down
// after fall failures, so a single odd result never changes the state.
type Threshold struct {
	Rise, Fall int
	up         bool
	unknown    bool // no result yet, and no state assumed: the first result decides
	run        int  // consecutive results that disagree with the current state
}

// NewThreshold starts up, or down when initFail is set.
func NewThreshold(rise, fall int, initFail bool) *Threshold {
	return &Threshold{Rise: max(rise, 1), Fall: max(fall, 1), up: !initFail}
}

// NewUnknownThreshold starts neither up nor down: the first result added is the state,
// whatever rise and fall say (see Spec.FirstDecides).
func NewUnknownThreshold(rise, fall int) *Threshold {
	return &Threshold{Rise: max(rise, 1), Fall: max(fall, 1), unknown: true}
}

// Up is the current state (false while Known is not).
func (t *Threshold) Up() bool { return t.up }

// Known reports whether the threshold has a state: always, except before the first result
// of one made by NewUnknownThreshold.
func (t *Threshold) Known() bool { return !t.unknown }

// Add records one result and reports whether the state changed (the first result of an
// unknown threshold always does: it gives the first state).
func (t *Threshold) Add(ok bool) bool {
	if t.unknown {
		t.up, t.unknown, t.run = ok, false, 0
		return true
	}
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
// initial state of every check, then each change, until ctx ends; it returns when every check
// has stopped (at once for no specs).
func Run(ctx context.Context, specs []Spec, changes chan<- Change) {
	s := NewScheduler(ctx, changes)
	defer s.cancel()
	s.Update(specs)
	// Nobody else can Update s: waiting for the checks alone keeps Run's old behaviour of
	// returning at once without specs, where Wait would wait for ctx.
	s.wg.Wait()
}

// Scheduler runs checks as Run does, and takes a new set of checks at any time (Update), for
// a configuration reload: what did not change keeps running undisturbed. Its methods are
// safe for concurrent use.
type Scheduler struct {
	ctx     context.Context
	cancel  context.CancelFunc
	changes chan<- Change

	// observe, when set (Observe), is told every probe's result and duration: the check
	// process's metrics.
	observe ProbeObserver

	mu     sync.Mutex // held through a whole Update, so that Updates apply one at a time
	tasks  map[string]*task
	closed bool // set by Wait once ctx has ended: no goroutine starts any more
	wg     sync.WaitGroup
}

// task is one running check.
type task struct {
	spec   Spec
	cancel context.CancelFunc
	done   chan struct{}
	// up is the state the check last sent (known once it sent one), for a restart.
	up, known atomic.Bool
}

// Diff is what an Update did, by check name, in the order of the specs given (Removed in
// name order).
type Diff struct {
	// Kept are checks whose Name and Key were unchanged: their goroutine, threshold state
	// (up or down, the run of results towards rise or fall) and probe timing go on as they
	// were, and no change is sent for them.
	Kept []string
	// Added are new checks: each sends its initial state, as at start (a FirstDecides check
	// sends its first probe's result instead).
	Added []string
	// Removed are checks no longer given: they stopped, and nothing more is sent for them.
	// A later Update that gives one again starts it afresh.
	Removed []string
	// Restarted are checks whose definition changed (or has no Key): the old one stopped,
	// the new one started with a fresh threshold in the state the old one was in (so that
	// editing a failed check does not raise the priority until it fails again, and move
	// mastership twice), and sends that as its initial state. A new
	// definition is never applied to a running check in place: the old state was counted
	// against the old rise, fall or probe, and carrying it over would mix the two.
	Restarted []string
}

// NewScheduler returns a scheduler without checks that sends changes on changes; its checks
// run until ctx ends or Stop.
func NewScheduler(ctx context.Context, changes chan<- Change) *Scheduler {
	ctx, cancel := context.WithCancel(ctx)
	return &Scheduler{ctx: ctx, cancel: cancel, changes: changes, tasks: map[string]*task{}}
}

// Update makes specs the running checks (see Diff for what happens to each). The checks it
// stops have returned when it returns: none of their probes runs any more, and nothing more
// from them is sent, though a change they sent before may still wait in the channel. Once
// the scheduler has stopped, Update does nothing and returns an empty Diff.
func (s *Scheduler) Update(specs []Spec) Diff {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d Diff
	if s.closed || s.ctx.Err() != nil {
		return d
	}
	next := make(map[string]bool, len(specs))
	var start []Spec
	var startIDs, stop []string
	carry := map[string]*task{} // restarted: the old task, for its state
	seen := map[string]int{}
	for _, sp := range specs {
		id := taskID(sp.Name, seen)
		next[id] = true
		old := s.tasks[id]
		switch {
		case old == nil:
			d.Added = append(d.Added, sp.Name)
		case sp.Key != "" && sp.Key == old.spec.Key && reusable(old.spec):
			d.Kept = append(d.Kept, sp.Name)
			continue
		default:
			d.Restarted = append(d.Restarted, sp.Name)
			stop = append(stop, id)
			carry[id] = old
		}
		start, startIDs = append(start, sp), append(startIDs, id)
	}
	for id, t := range s.tasks {
		if !next[id] {
			d.Removed = append(d.Removed, t.spec.Name)
			stop = append(stop, id)
		}
	}
	slices.Sort(d.Removed)
	// Stop first, all at once, and wait: a restarted check's last change then comes before
	// its new initial state, and a removed check probes nothing after Update returns.
	for _, id := range stop {
		s.tasks[id].cancel()
	}
	for _, id := range stop {
		<-s.tasks[id].done
		delete(s.tasks, id)
	}
	for i, sp := range start {
		var initial *bool
		if old := carry[startIDs[i]]; old != nil && old.known.Load() {
			up := old.up.Load()
			initial = &up
		}
		s.tasks[startIDs[i]] = s.launch(sp, initial)
	}
	return d
}

// taskID names the task of a spec: its name, and for the nth spec of one name (which
// FromConfig never makes, but Run always accepted) the name with n.
func taskID(name string, seen map[string]int) string {
	seen[name]++
	if n := seen[name]; n > 1 {
		return name + "\x00" + strconv.Itoa(n)
	}
	return name
}

// ProbeObserver is told the result of each probe of check name and how long it took.
type ProbeObserver func(name string, r Result, took time.Duration)

// Observe makes f hear of every probe (Outcome names the result). Call it before the first
// Update: checks started before it are not observed.
func (s *Scheduler) Observe(f ProbeObserver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe = f
}

// Outcome names a probe's result for people and metrics: success, failure, or no_result
// (the plugin that runs it was starting or restarting: the service was not asked).
func Outcome(r Result) string {
	switch {
	case r.NoResult:
		return "no_result"
	case r.OK:
		return "success"
	}
	return "failure"
}

func (s *Scheduler) launch(sp Spec, initial *bool) *task {
	ctx, cancel := context.WithCancel(s.ctx)
	t := &task{spec: sp, cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(t.done)
		defer cancel()
		runOne(ctx, sp, s.changes, initial, func(up bool) { t.up.Store(up); t.known.Store(true) }, s.observe)
	}()
	return t
}

// Running returns the spec of the running check name when its Key is key (and not empty):
// the Reuse that FromConfigReusing needs to leave unchanged checks as they are.
func (s *Scheduler) Running(name, key string) (Spec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tasks[name]; t != nil && key != "" && t.spec.Key == key && reusable(t.spec) {
		return t.spec, true
	}
	return Spec{}, false
}

// Wait returns once the scheduler's context has ended (or Stop) and every check has
// returned.
func (s *Scheduler) Wait() {
	<-s.ctx.Done()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// Stop stops every check and waits for them.
func (s *Scheduler) Stop() {
	s.cancel()
	s.Wait()
}

// runOne runs one check; initial, when set, is the state it starts in (instead of init_fail's),
// sent is told each state it sends, and observe (when set) each probe's result.
func runOne(ctx context.Context, s Spec, changes chan<- Change, initial *bool, sent func(up bool), observe ProbeObserver) {
	th := NewThreshold(s.Rise, s.Fall, s.InitFail)
	switch {
	case initial != nil:
		th.up = *initial
	case s.FirstDecides && !s.InitFail:
		th = NewUnknownThreshold(s.Rise, s.Fall)
	}
	var weight *int // the dynamic weight sent last
	// A pending check is configured on its plugin beside its probes (see pending).
	defer startPending(ctx, s)()
	send := func(c Change) bool {
		select {
		case changes <- c:
			sent(c.Up)
			return true
		case <-ctx.Done():
			return false
		}
	}
	// A check that starts unknown says nothing until its first probe: an initial "up" or
	// "down" would be a guess that the instances tracking it act on.
	if th.Known() && !send(Change{Name: s.Name, Up: th.Up(), Msg: "initial state", Initial: true}) {
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
	} else if !th.Known() {
		wait = 0 // nothing is known until it runs
	} else if s.Align != "" {
		wait = time.Until(nextSlot(s.Align, interval, time.Now()))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	budget := FailureBudget(s)
	var (
		noResults   int       // probes in a row that had no result (Result.NoResult), not yet counted
		noResultFor time.Time // when the first of them started; zero when the last probe had a result
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, timeout+s.Late)
		if s.Late > 0 {
			pctx = sdkcheck.WithProbeDeadline(pctx, start.Add(timeout))
		}
		r := s.Prober.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if observe != nil {
			observe(s.Name, r, time.Since(start))
		}
		var crossed bool
		switch {
		case r.NoResult:
			// Nothing was asked of the service: counted neither way while the budget lasts.
			// Past it, every probe that had no result counts as a failure, those held back
			// included, so that the check goes down about when fall failures would have
			// taken it down.
			if noResultFor.IsZero() {
				noResultFor = start
			}
			noResults++
			if time.Since(noResultFor) >= budget {
				for ; noResults > 0; noResults-- {
					crossed = th.Add(false) || crossed
				}
				r.Msg = Message(fmt.Sprintf("%s (no result for %s, past the check's failure budget of %s: counted as failures)",
					r.Msg, time.Since(noResultFor).Round(time.Millisecond), budget))
			}
		default:
			noResults, noResultFor = 0, time.Time{}
			crossed = th.Add(r.OK)
		}
		switch {
		case r.Weight != nil && (weight == nil || *weight != *r.Weight):
			weight, crossed = Weight[int](r.Weight), true
		case r.Weight == nil && r.OK && s.SuccessResetsWeight && weight != nil:
			weight, crossed = nil, true
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
		if s.RetryDelay > 0 && !r.OK && !r.NoResult && th.Up() {
			wait = s.RetryDelay // a retry before the check goes down
		}
		timer.Reset(wait)
	}
}

// FailureBudget is how long a check's probes may have no result (Result.NoResult: its plugin
// starting or restarting) before they count as failures: the time fall failures in a row take
// to bring the check down when each probe uses its whole timeout, fall times the longer of
// the interval and the timeout (for a real_server checker, fall is retry+1 and a retry comes
// delay_before_retry after a failure: that delay counts when it is the longer). A plugin that
// is back within it costs the check nothing; one that is not takes the check down about when
// failed probes would have.
func FailureBudget(s Spec) time.Duration {
	interval := max(s.Interval, 10*time.Millisecond)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	return time.Duration(max(s.Fall, 1)) * max(interval, timeout, s.RetryDelay)
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
