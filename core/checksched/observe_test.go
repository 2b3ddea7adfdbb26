package checksched

import (
	"context"
	"testing"
	"time"
)

// TestObserveHearsEveryProbe: the observer (the check process's metrics) hears each probe's
// outcome, in order, with the check's name and a duration, whether or not the probe crossed
// a threshold.
func TestObserveHearsEveryProbe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan Change, 16)
	s := NewScheduler(ctx, changes)
	type heard struct {
		name, outcome string
		took          time.Duration
	}
	obs := make(chan heard, 16)
	s.Observe(func(name string, r Result, took time.Duration) { obs <- heard{name, Outcome(r), took} })
	g := newGate()
	s.Update([]Spec{{Name: "db", Key: "k", Prober: g, Interval: 10 * time.Millisecond, Rise: 3, Fall: 3, Warmup: time.Millisecond}})
	for i, ok := range []bool{true, false, true} {
		g.answer(t, i+1, ok)
		select {
		case h := <-obs:
			want := map[bool]string{true: "success", false: "failure"}[ok]
			if h.name != "db" || h.outcome != want || h.took < 0 {
				t.Errorf("probe %d: heard %+v, want db %s", i+1, h, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("probe %d not observed", i+1)
		}
	}
	s.Stop()
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		r    Result
		want string
	}{{Result{OK: true}, "success"}, {Result{}, "failure"}, {Result{NoResult: true}, "no_result"}, {Result{OK: true, NoResult: true}, "no_result"}} {
		if got := Outcome(c.r); got != c.want {
			t.Errorf("Outcome(%+v) = %s, want %s", c.r, got, c.want)
		}
	}
}
