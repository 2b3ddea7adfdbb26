package checksched

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestThreshold(t *testing.T) {
	th := NewThreshold(2, 3, false)
	steps := []struct {
		ok      bool
		changed bool
		up      bool
	}{
		{false, false, true}, {false, false, true}, {true, false, true}, // a success resets the run
		{false, false, true}, {false, false, true}, {false, true, false}, // three failures: down
		{true, false, false}, {true, true, true}, // two successes: up
	}
	for i, s := range steps {
		if got := th.Add(s.ok); got != s.changed || th.Up() != s.up {
			t.Fatalf("step %d: Add(%v) = %v, up %v; want %v, up %v", i, s.ok, got, th.Up(), s.changed, s.up)
		}
	}
	if NewThreshold(1, 1, true).Up() {
		t.Error("init_fail starts up")
	}
}

func TestScriptProbe(t *testing.T) {
	ctx := context.Background()
	if r := (Script{Argv: []string{"true"}}).Probe(ctx); !r.OK {
		t.Errorf("true: %+v", r)
	}
	if r := (Script{Argv: []string{"sh", "-c", "exit 3"}}).Probe(ctx); r.OK || r.Msg != "exit status 3" {
		t.Errorf("exit 3: %+v", r)
	}
	// A script that starts a child and hangs: the whole process group dies at the deadline.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The sleep outlives the failure bound below by far: a probe that waits for the script
	// (or for its child holding the output open) instead of killing the group at the deadline
	// fails the bound; a loaded machine only delays a correct one by seconds.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := (Script{Argv: []string{"sh", "-c", "sleep 300 & echo $! > " + pidFile + "; wait"}}).Probe(tctx)
	if r.OK || r.Msg != "timed out" || time.Since(start) > 120*time.Second {
		t.Fatalf("hung script: %+v after %s", r, time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range string(b) {
		if c >= '0' && c <= '9' {
			pid = pid*10 + int(c-'0')
		}
	}
	// Gone, or a zombie waiting for init to reap it: either way no longer running. SIGKILL
	// takes effect when the kernel next runs the process, later on a loaded machine: the
	// deadline only bounds the wait.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the script's child %d survived the timeout: %s", pid, st)
			break
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestRunReportsChanges(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ok")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changes := make(chan Change, 10)
	go Run(ctx, []Spec{{Name: "f", Prober: Script{Argv: []string{"test", "-e", flag}}, Interval: 20 * time.Millisecond, Rise: 2, Fall: 2}}, changes)
	next := func() Change {
		select {
		case c := <-changes:
			return c
		case <-ctx.Done():
			t.Fatal("no change reported")
		}
		return Change{}
	}
	if c := next(); !c.Up || c.Name != "f" {
		t.Fatalf("initial: %+v", c)
	}
	os.Remove(flag)
	if c := next(); c.Up {
		t.Fatalf("after removing the file: %+v", c)
	}
	os.WriteFile(flag, nil, 0o644)
	if c := next(); !c.Up {
		t.Fatalf("after restoring the file: %+v", c)
	}
}

// seq answers with its results in turn, then repeats the last.
type seq struct {
	mu      sync.Mutex
	results []Result
}

func (s *seq) Probe(context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.results[0]
	if len(s.results) > 1 {
		s.results = s.results[1:]
	}
	return r
}

func TestRunDynamicWeight(t *testing.T) {
	w := func(v int) *int { return &v }
	ok := func(weight *int) Result {
		return Result{OK: true, Msg: "ok", Weight: weight, Metrics: map[string]float64{"n": 1}}
	}
	fail := Result{Msg: "timed out"}
	p := &seq{results: []Result{
		ok(nil), ok(w(10)), ok(w(10)), // the first weight is a change; the same again is not
		fail, fail, // down after fall 2; a probe without a weight keeps the last one
		ok(w(10)), ok(w(10)), // up after rise 2
		ok(w(-20)), // a new weight is a change without a crossing
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changes := make(chan Change, 20)
	go Run(ctx, []Spec{{Name: "c", Prober: p, Interval: 10 * time.Millisecond, Rise: 2, Fall: 2}}, changes)
	type got struct {
		up     bool
		weight int
	}
	want := []got{{true, -1}, {true, 10}, {false, 10}, {true, 10}, {true, -20}}
	for i, wnt := range want {
		select {
		case c := <-changes:
			g := got{c.Up, -1}
			if c.Weight != nil {
				g.weight = *c.Weight
			}
			if g != wnt {
				t.Fatalf("change %d: %+v (weight %v); want %+v", i, c, g.weight, wnt)
			}
			if i > 0 && c.Metrics["n"] != 1 && c.Up {
				t.Errorf("change %d lost the probe's metrics: %+v", i, c)
			}
		case <-ctx.Done():
			t.Fatalf("change %d never came; want %+v", i, wnt)
		}
	}
	// The last result repeats: no more changes.
	select {
	case c := <-changes:
		t.Fatalf("unexpected change: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRunSuccessResetsWeight: a real_server checker that reported a dynamic weight and
// then succeeds without one is back at its configured weight (Weight nil), as keepalived's
// misc_dynamic MISC_CHECK is after an exit of 0; a failure without one keeps it.
func TestRunSuccessResetsWeight(t *testing.T) {
	w := func(v int) *int { return &v }
	p := &seq{results: []Result{
		{OK: true, Weight: w(10)}, // exit 12
		{OK: true},                // exit 0: the configured weight again
		{OK: true, Weight: w(3)},  // exit 5
		{Msg: "exit 1"},           // down (fall 1); the weight stays
		{Msg: "exit 1"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changes := make(chan Change, 20)
	go Run(ctx, []Spec{{Name: "c", Prober: p, Interval: 10 * time.Millisecond, Rise: 1, Fall: 1, SuccessResetsWeight: true}}, changes)
	want := []string{"up", "up 10", "up", "up 3", "down 3"}
	for i, wnt := range want {
		select {
		case c := <-changes:
			g := map[bool]string{true: "up", false: "down"}[c.Up]
			if c.Weight != nil {
				g += fmt.Sprintf(" %d", *c.Weight)
			}
			if g != wnt {
				t.Fatalf("change %d: %q; want %q", i, g, wnt)
			}
		case <-ctx.Done():
			t.Fatalf("change %d never came; want %q", i, wnt)
		}
	}
}

func TestNextSlot(t *testing.T) {
	const iv = 2 * time.Second
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	a := nextSlot("plugin:mysql", iv, t0)
	if a.Before(t0) || a.Sub(t0) >= iv {
		t.Fatalf("slot %s is not within one interval from %s", a, t0)
	}
	// Every later time maps onto the same grid, and the grid point itself is a slot.
	for _, d := range []time.Duration{0, time.Millisecond, 999 * time.Millisecond, 7*iv + 1} {
		s := nextSlot("plugin:mysql", iv, t0.Add(d))
		if off := s.Sub(a) % iv; off != 0 || s.Before(t0.Add(d)) || s.Sub(t0.Add(d)) >= iv {
			t.Errorf("slot after %s: %s, %s off the grid", t0.Add(d), s, off)
		}
	}
	if s := nextSlot("plugin:mysql", iv, a); !s.Equal(a) {
		t.Errorf("a grid point is not its own slot: %s -> %s", a, s)
	}
	// Another group has its own phase, so that groups do not all fire together.
	if b := nextSlot("plugin:http", iv, t0); b.Sub(a)%iv == 0 {
		t.Errorf("plugin:http shares plugin:mysql's phase (%s, %s)", a, b)
	}
	// Intervals that divide each other share grid points: every slot of the longer interval
	// is a slot of the shorter one.
	for _, short := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		for _, d := range []time.Duration{0, 333 * time.Millisecond, 5 * time.Second} {
			long := nextSlot("plugin:mysql", iv, t0.Add(d))
			if s := nextSlot("plugin:mysql", short, long); !s.Equal(long) {
				t.Errorf("slot %s of %s is not a slot of %s (next: %s)", long, iv, short, s)
			}
		}
	}
}

// TestUnknownThreshold: a threshold that starts unknown takes its first result as its state,
// whatever rise and fall say (keepalived's vrrp_script), then counts as usual.
func TestUnknownThreshold(t *testing.T) {
	for _, first := range []bool{false, true} {
		th := NewUnknownThreshold(2, 3)
		if th.Known() {
			t.Fatal("an unknown threshold is known before any result")
		}
		if !th.Add(first) || !th.Known() || th.Up() != first {
			t.Fatalf("first result %v: known %v, up %v; want it to be the state", first, th.Known(), th.Up())
		}
		// From here on rise 2 and fall 3 count.
		need := map[bool]int{true: 3, false: 2}[first] // results to flip
		for i := 1; i < need; i++ {
			if th.Add(!first) {
				t.Fatalf("first %v: flipped after %d opposite results, want %d", first, i, need)
			}
		}
		if !th.Add(!first) || th.Up() == first {
			t.Fatalf("first %v: did not flip after %d opposite results", first, need)
		}
	}
}

// TestFirstDecides: a FirstDecides check sends no initial state; its first probe runs at
// once (not after the interval, an hour here) and its result is the first state sent, up or
// down, whatever rise and fall say. init_fail still starts it down, with an initial state.
func TestFirstDecides(t *testing.T) {
	for _, ok := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		changes := make(chan Change, 4)
		s := NewScheduler(ctx, changes)
		g := newGate()
		s.Update([]Spec{{Name: "svc", Key: "k", Prober: g, Interval: time.Hour, Timeout: time.Minute, Rise: 2, Fall: 3, FirstDecides: true}})
		g.answer(t, 1, ok)
		if c := next(t, changes, 10*time.Second); c.Initial || c.Up != ok || c.Msg != "probe 1" {
			t.Errorf("service up %v: first state %+v; want the first probe's result, not an initial state", ok, c)
		}
		s.Stop()
		cancel()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan Change, 4)
	s := NewScheduler(ctx, changes)
	defer s.Stop()
	s.Update([]Spec{{Name: "svc", Key: "k", Prober: newGate(), Interval: time.Hour, Rise: 2, Fall: 3, FirstDecides: true, InitFail: true}})
	if c := next(t, changes, 10*time.Second); !c.Initial || c.Up {
		t.Errorf("init_fail: first state %+v; want an initial state, down", c)
	}
}

// TestFirstDecidesRestart: a FirstDecides check restarted by an Update (its definition
// changed) starts in the state it had, sent as its initial state, once it had one; restarted
// before its first result it starts unknown again and sends nothing until its first probe.
func TestFirstDecidesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan Change, 4)
	s := NewScheduler(ctx, changes)
	defer s.Stop()
	spec := func(key string, p Prober) Spec {
		return Spec{Name: "svc", Key: key, Prober: p, Interval: time.Hour, Timeout: time.Minute, Rise: 2, Fall: 3, FirstDecides: true}
	}
	g1 := newGate()
	s.Update([]Spec{spec("k1", g1)})
	g1.answer(t, 1, false)
	if c := next(t, changes, 10*time.Second); c.Up {
		t.Fatalf("first state %+v", c)
	}
	g2 := newGate()
	if d := s.Update([]Spec{spec("k2", g2)}); diffString(d) != "kept [] added [] removed [] restarted [svc]" {
		t.Fatalf("update: %s", diffString(d))
	}
	if c := next(t, changes, 10*time.Second); !c.Initial || c.Up {
		t.Fatalf("restarted after a failure: %+v; want an initial state, down", c)
	}

	// Restarted while its first probe of a new definition still runs: unknown again.
	s2 := NewScheduler(ctx, changes)
	defer s2.Stop()
	g3 := newGate()
	s2.Update([]Spec{{Name: "other", Key: "a", Prober: g3, Interval: time.Hour, Timeout: time.Minute, Rise: 2, Fall: 3, FirstDecides: true}})
	<-g3.calls // its first probe has started, and is never answered
	g4 := newGate()
	s2.Update([]Spec{{Name: "other", Key: "b", Prober: g4, Interval: time.Hour, Timeout: time.Minute, Rise: 2, Fall: 3, FirstDecides: true}})
	g4.answer(t, 1, true)
	if c := next(t, changes, 10*time.Second); c.Name != "other" || c.Initial || !c.Up {
		t.Fatalf("restarted before its first result: %+v; want its first probe's result", c)
	}
}

// lastGate answers with its results in turn and closes reached when it answers the last one,
// which it repeats from then on.
type lastGate struct {
	mu      sync.Mutex
	results []Result
	reached chan struct{}
}

func (g *lastGate) Probe(context.Context) Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.results[0]
	if len(g.results) > 1 {
		g.results = g.results[1:]
	} else if g.reached != nil {
		close(g.reached)
		g.reached = nil
	}
	return r
}

// TestNoResultWithinBudget: probes that could not be run (a plugin restarting) count neither
// way while the check's failure budget lasts: fifty of them, then one real failure, do not
// take a check with fall 2 down, and the success after them keeps it up.
func TestNoResultWithinBudget(t *testing.T) {
	results := make([]Result, 0, 52)
	for range 50 {
		results = append(results, Result{NoResult: true, Msg: "plugin restarting"})
	}
	results = append(results, Result{Msg: "refused"}, Result{OK: true, Msg: "ok"})
	g := &lastGate{results: results, reached: make(chan struct{})}
	reached := g.reached
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	changes := make(chan Change, 100)
	// A budget of two hours: the fifty probes come 10 ms apart.
	spec := Spec{Name: "c", Prober: g, Interval: 10 * time.Millisecond, Timeout: time.Hour, Rise: 1, Fall: 2}
	if b := FailureBudget(spec); b != 2*time.Hour {
		t.Fatalf("budget %s, want 2h", b)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(runCtx, []Spec{spec}, changes) }()
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal("the probes did not all run")
	}
	stop()
	<-done
	close(changes)
	for c := range changes {
		if !c.Initial {
			t.Errorf("change %+v: probes without a result were counted", c)
		}
	}
}

// TestNoResultPastBudget: a check whose probes keep having no result (a plugin that never
// comes back) goes down once the budget has passed, saying why.
func TestNoResultPastBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	changes := make(chan Change, 100)
	spec := Spec{Name: "c", Prober: &seq{results: []Result{{NoResult: true, Msg: "plugin restarting"}}},
		Interval: 10 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 1, Fall: 3}
	go Run(ctx, []Spec{spec}, changes)
	for {
		select {
		case c := <-changes:
			if c.Initial {
				continue
			}
			if c.Up || !strings.Contains(c.Msg, "plugin restarting") || !strings.Contains(c.Msg, "failure budget of 60ms") {
				t.Fatalf("change %+v; want down past the budget, saying so", c)
			}
			return
		case <-ctx.Done():
			t.Fatal("a check without results did not go down past its budget")
		}
	}
}
