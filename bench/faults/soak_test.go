package main

import (
	"math"
	"testing"
	"time"
)

func TestSeriesSlopeAndGrowth(t *testing.T) {
	mk := func(f func(i int) float64, n int, every time.Duration) *series {
		s := &series{}
		for i := range n {
			s.add(time.Duration(i)*every, f(i))
		}
		return s
	}
	for _, c := range []struct {
		name          string
		s             *series
		slope, growth float64
		slopeTol      float64
	}{
		{"flat", mk(func(int) float64 { return 17 }, 30, 2*time.Second), 0, 0, 1e-9},
		// One descriptor per minute: 60 an hour; the last 7 samples' mean is 23 above the
		// first 7's.
		{"leak", mk(func(i int) float64 { return 10 + float64(i) }, 30, time.Minute), 60, 23, 1e-6},
		// A sample's jitter (a check run in flight every other sample) is no growth; its slope
		// over 80 s is that of one step in the last sample, small against a leak's.
		{"jitter", mk(func(i int) float64 { return 13 + float64(i%2)*2 }, 40, 2*time.Second), 0, 0, 100},
		{"one sample", mk(func(int) float64 { return 5 }, 1, time.Second), 0, 0, 1e-9},
	} {
		if got := c.s.slopePerHour(); math.Abs(got-c.slope) > c.slopeTol {
			t.Errorf("%s: slope %v/h, want %v", c.name, got, c.slope)
		}
		if got := c.s.growth(); math.Abs(got-c.growth) > 1e-9 {
			t.Errorf("%s: growth %v, want %v", c.name, got, c.growth)
		}
	}
}

func TestGrownFlagsOnlyBoundedMetrics(t *testing.T) {
	s := newSampler()
	p := &soakProc{label: "n1 core"}
	for m := range nMetrics {
		p.m[m] = &series{}
	}
	for i := range 40 {
		at := time.Duration(i) * time.Minute
		p.m[mFDs].add(at, 17)
		p.m[mGoroutines].add(at, float64(100+i)) // a goroutine a minute
		p.m[mRSS].add(at, float64(20000+100*i))  // RSS grows, reported but not bounded
		p.m[mThreads].add(at, 8)
	}
	s.procs[p.label] = p
	g := s.grown()
	if len(g) != 1 {
		t.Fatalf("grown: %q, want the goroutines only", g)
	}
}

func TestExpectedTakeovers(t *testing.T) {
	// advert 0.1 s, backup priority 100: Master_Down_Interval 0.361 s, three adverts lost in
	// a row take over; 600 adverts a minute.
	down := 3*100*time.Millisecond + 156*100*time.Millisecond/256
	for _, c := range []struct{ p, want float64 }{{0.1, 600 * 0.9 * 0.001}, {0.3, 600 * 0.7 * 0.027}} {
		if got := expectedTakeovers(c.p, time.Minute, 100*time.Millisecond, down); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("p %v: %v, want %v", c.p, got, c.want)
		}
	}
}
