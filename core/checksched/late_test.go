package checksched

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// lateProber answers OK after a pause longer than the probe's timeout, unless its context
// ended first (then it fails, as a prober whose caller stopped waiting). It counts probes.
type lateProber struct {
	pause time.Duration
	n     atomic.Int32
}

func (p *lateProber) Probe(ctx context.Context) Result {
	p.n.Add(1)
	select {
	case <-time.After(p.pause):
		return Result{OK: true, Msg: "connected"}
	case <-ctx.Done():
		return Result{Msg: "timed out"}
	}
}

// TestLateAnswerCounts: with Late, the scheduler takes a plugin's answer that came after
// the probe's timeout (a process that ran late), so a healthy service stays up; without
// it, the same answers go down. The pause is 50 ms past a 50 ms timeout, Late is a second.
func TestLateAnswerCounts(t *testing.T) {
	for _, late := range []time.Duration{time.Second, 0} {
		p := &lateProber{pause: 100 * time.Millisecond}
		spec := Spec{Name: "c", Prober: p, Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond,
			Rise: 1, Fall: 1, Late: late}
		ctx, cancel := context.WithCancel(context.Background())
		changes := make(chan Change, 100)
		done := make(chan struct{})
		go func() { defer close(done); Run(ctx, []Spec{spec}, changes) }()
		deadline := time.Now().Add(30 * time.Second) // a failure bound
		for p.n.Load() < 6 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		close(changes)
		var downs int
		for c := range changes {
			if !c.Initial && !c.Up {
				downs++
			}
		}
		switch {
		case p.n.Load() < 6:
			t.Fatalf("late %s: only %d probes ran", late, p.n.Load())
		case late > 0 && downs > 0:
			t.Errorf("late %s: %d downs; a late OK must count as OK", late, downs)
		case late == 0 && downs == 0:
			t.Errorf("without Late the answers past the timeout must fail: the test proves nothing")
		}
	}
}
