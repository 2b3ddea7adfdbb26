package loglimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeClock is a clock the test moves by hand; its timers fire in Advance, in order.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d, firing the timers due on the way at their time.
func (c *fakeClock) Advance(d time.Duration) {
	end := c.Now().Add(d)
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.stopped = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

type entry map[string]any

func setup(t *testing.T, burst int, period time.Duration) (*Limiter, *fakeClock, hclog.Logger, func() []entry) {
	t.Helper()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &buf}, JSONFormat: true, Level: hclog.Info})
	clock := &fakeClock{now: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)}
	l := New(Options{Burst: burst, Period: period, Clock: clock})
	lines := func() []entry {
		mu.Lock()
		defer mu.Unlock()
		var out []entry
		for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if s == "" {
				continue
			}
			var e entry
			if err := json.Unmarshal([]byte(s), &e); err != nil {
				t.Fatalf("not JSON: %q: %v", s, err)
			}
			out = append(out, e)
		}
		buf.Reset()
		return out
	}
	return l, clock, log, lines
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

var states = []string{"BACKUP", "MASTER"}

// flap logs n transitions of instance VI_1, one every step, alternating BACKUP and MASTER,
// starting from BACKUP->MASTER; it returns the last "to".
func flap(l *Limiter, clock *fakeClock, log hclog.Logger, n int, step time.Duration) string {
	to := ""
	for i := range n {
		from, t := states[i%2], states[(i+1)%2]
		l.Log(log, "VI_1", hclog.Info, "state change", "instance", "VI_1", "from", from, "to", t, "n", i)
		to = t
		clock.Advance(step)
	}
	return to
}

// TestFlapIsSummarised: 100 transitions in 10 s (one per 100 ms) with a burst of 5 per 10 s
// give the 5 first lines, then one summary with the 95 left out and the last state; the
// next period, quiet, writes nothing and forgets the key; a change after it is written as
// usual.
func TestFlapIsSummarised(t *testing.T) {
	l, clock, log, lines := setup(t, 5, 10*time.Second)
	last := flap(l, clock, log, 100, 100*time.Millisecond)
	got := lines()
	if len(got) != 5 {
		t.Fatalf("during the flap: %d lines, want the 5 first: %v", len(got), got)
	}
	for i, e := range got {
		if e["n"] != float64(i) || e[SuppressedKey] != nil {
			t.Errorf("line %d: %v, want transition %d unsummarised", i, e, i)
		}
	}
	// The summary comes one period after the first line left out (at 500 ms).
	clock.Advance(500 * time.Millisecond)
	got = lines()
	if len(got) != 1 {
		t.Fatalf("at the end of the period: %d lines, want one summary: %v", len(got), got)
	}
	s := got[0]
	if s["@message"] != "state change" || s[SuppressedKey] != float64(95) || s["to"] != last || s["n"] != float64(99) || s["instance"] != "VI_1" {
		t.Errorf("summary %v: want the last transition (n=99, to=%s) with suppressed=95", s, last)
	}
	if s[LastAtKey] != "2026-12-07T20:00:09.9Z" {
		t.Errorf("summary last_at %v, want the time of the last transition left out", s[LastAtKey])
	}
	// A quiet period: no line, and the key is forgotten.
	clock.Advance(10 * time.Second)
	if got := lines(); len(got) != 0 {
		t.Errorf("quiet period wrote %v", got)
	}
	if n := l.Keys(); n != 0 {
		t.Errorf("%d keys followed after a quiet period, want 0", n)
	}
	// A steady change after the quiet logs at once.
	if !l.Log(log, "VI_1", hclog.Info, "state change", "to", "BACKUP") || len(lines()) != 1 {
		t.Error("a change after a quiet period was not written at once")
	}
}

// TestLongFlapOneSummaryPerPeriod: a flap that lasts 60 s writes the burst, then one
// summary per period, whose counts add up to every transition left out.
func TestLongFlapOneSummaryPerPeriod(t *testing.T) {
	l, clock, log, lines := setup(t, 5, 10*time.Second)
	flap(l, clock, log, 600, 100*time.Millisecond)
	clock.Advance(10 * time.Second) // the last summary
	got := lines()
	var summaries int
	var left float64
	for _, e := range got {
		if n, ok := e[SuppressedKey].(float64); ok {
			summaries++
			left += n
		}
	}
	if len(got)-summaries != 5 || summaries != 6 || left != 595 {
		t.Errorf("%d lines, %d of them summaries of %v transitions; want 5 lines and 6 summaries of 595", len(got), summaries, left)
	}
}

// TestKeysAreApart: one flapping key does not limit another, and slow changes (one per
// period) are never limited.
func TestKeysAreApart(t *testing.T) {
	l, clock, log, lines := setup(t, 2, 10*time.Second)
	for i := range 20 {
		l.Log(log, "VI_1", hclog.Info, "state change", "instance", "VI_1")
		if i%10 == 0 {
			l.Log(log, "VI_2", hclog.Info, "state change", "instance", "VI_2")
		}
		clock.Advance(time.Second)
	}
	var vi2 int
	for _, e := range lines() {
		if e["instance"] == "VI_2" {
			if e[SuppressedKey] != nil {
				t.Errorf("VI_2 was summarised: %v", e)
			}
			vi2++
		}
	}
	if vi2 != 2 {
		t.Errorf("VI_2 wrote %d lines, want its 2", vi2)
	}
}

// TestMemoryBound: MaxKeys bounds the keys followed; keys past it share one budget.
func TestMemoryBound(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true})
	l := New(Options{Burst: 1, Period: time.Minute, MaxKeys: 8, Clock: clock})
	written := 0
	for i := range 1000 {
		if l.Log(log, fmt.Sprint("check", i), hclog.Info, "check changed") {
			written++
		}
	}
	if n := l.Keys(); n > 8 {
		t.Errorf("%d keys followed, want at most 8", n)
	}
	if written != 8 {
		t.Errorf("%d lines written, want 8: 7 keys and the overflow's one", written)
	}
	clock.Advance(2 * time.Minute)
	if n := l.Keys(); n > 8 {
		t.Errorf("%d keys after the overflow's summary", n)
	}
}

// TestFlushWritesPending: at stop, the summary of a limited key is written at once.
func TestFlushWritesPending(t *testing.T) {
	l, clock, log, lines := setup(t, 1, 10*time.Second)
	flap(l, clock, log, 4, time.Millisecond)
	lines()
	l.Flush()
	got := lines()
	if len(got) != 1 || got[0][SuppressedKey] != float64(3) {
		t.Fatalf("flush wrote %v, want one summary of 3", got)
	}
	clock.Advance(time.Minute)
	if got := lines(); len(got) != 0 || l.Keys() != 0 {
		t.Errorf("after a flush: lines %v, %d keys", got, l.Keys())
	}
}
