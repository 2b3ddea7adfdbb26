package main

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/loglimit"
)

// TestStatOfNotConverged: a reload that did not converge (-1) counts as the longest, so
// that the median of [-1, 13 s] is "> 2 min", not 13 s.
func TestStatOfNotConverged(t *testing.T) {
	s := statOf([]time.Duration{-1, 13 * time.Second, 2 * time.Second})
	if s.med != 13*time.Second || s.lo != 2*time.Second || s.hi != -1 {
		t.Fatalf("%+v", s)
	}
	if s := statOf([]time.Duration{-1, 13 * time.Second}); s.med != -1 || s.lo != 13*time.Second {
		t.Fatalf("%+v", s)
	}
}

func TestFalseDowns(t *testing.T) {
	vigil := "x [INFO]  vigil.check.vigil: check changed: check=a up=false detail=\"plugin tcp: timed out\"\n" +
		"x [INFO]  vigil.check.vigil: check changed: check=a up=true\nx [INFO] something else up=false\n" +
		// A detail that holds the text of a field is not one.
		"x [INFO]  vigil.check.vigil: check changed: detail=\"got up=false suppressed=9\" up=true check=b\n"
	if n := falseDowns("vigil", []byte(vigil)); n != 1 {
		t.Errorf("vigil: %d downs, want 1", n)
	}
	ka := "Removing service [198.51.100.11]:tcp:8000 to VS [192.0.2.100]:tcp:80\n" +
		"Shutting down service [198.51.100.11]:tcp:8000 from VS [192.0.2.100]:tcp:80\n"
	if n := falseDowns("keepalived", []byte(ka)); n != 1 {
		t.Errorf("keepalived: %d downs, want 1", n)
	}
}

// manualClock is a loglimit.Clock that moves only when the test says.
type manualClock struct {
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool { was := !t.stopped; t.stopped = true; return was }

func (c *manualClock) Now() time.Time { return c.now }

func (c *manualClock) AfterFunc(d time.Duration, f func()) loglimit.Timer {
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// advance moves the clock by d and runs the timers that came due.
func (c *manualClock) advance(d time.Duration) {
	c.now = c.now.Add(d)
	for i := 0; i < len(c.timers); i++ {
		if t := c.timers[i]; !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			t.f()
		}
	}
}

// TestFalseDownsSummarised: flapping checks logged through core/loglimit's transition policy,
// as vigil's check process logs them, are counted whole, the lines its summaries stand for
// included, with the fields in the order written and in reverse (core re-logs a child's
// line with its fields in no set order). Counting the up=false lines alone, as before,
// finds fewer.
func TestFalseDownsSummarised(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "vigil.check", Output: &buf, Level: hclog.Info})
	clk := &manualClock{now: time.Unix(1000, 0)}
	lim := loglimit.New(loglimit.Options{Burst: loglimit.TransitionBurst, Period: loglimit.TransitionPeriod, Clock: clk})
	want := 0
	// Check a flaps every 300 ms for a minute, b every 2 s (never limited), c changes 8 times
	// and stops on up, d 7 times and stops on down: their last summaries come by Flush.
	flaps := map[string]struct {
		every time.Duration
		n     int
	}{"a": {300 * time.Millisecond, 200}, "b": {2 * time.Second, 30}, "c": {250 * time.Millisecond, 8}, "d": {250 * time.Millisecond, 7}}
	for step := time.Duration(0); step < time.Minute; step += 50 * time.Millisecond {
		for _, name := range []string{"a", "b", "c", "d"} {
			fl := flaps[name]
			k := int(step / fl.every)
			if step%fl.every != 0 || k >= fl.n {
				continue
			}
			up := k%2 == 1 // the first change is a down: the checks start up
			if !up {
				want++
			}
			lim.Log(log, name, hclog.Info, "check changed", "check", name, "up", up, "detail", "plugin tcp: connect: connection refused")
		}
		clk.advance(50 * time.Millisecond)
	}
	lim.Flush()
	text := buf.String()
	if !strings.Contains(text, loglimit.SuppressedKey+"=") {
		t.Fatalf("no summary line in:\n%s", text)
	}
	if n := falseDowns("vigil", []byte(text)); n != want {
		t.Errorf("%d downs counted, want %d, in:\n%s", n, want, text)
	}
	var reversed strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		head, rest, _ := strings.Cut(l, "check changed: ")
		var fs []string
		for k, v := range fields(rest) {
			if strings.ContainsAny(v, " \"=") {
				v = strconv.Quote(v) // as hclog writes such a value
			}
			fs = append(fs, k+"="+v)
		}
		slices.Sort(fs)
		slices.Reverse(fs)
		reversed.WriteString(head + "check changed: " + strings.Join(fs, " ") + "\n")
	}
	if n := falseDowns("vigil", []byte(reversed.String())); n != want {
		t.Errorf("fields reordered: %d downs counted, want %d, in:\n%s", n, want, reversed.String())
	}
	lines := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "check changed:") && strings.Contains(l, "up=false") {
			lines++
		}
	}
	if lines >= want {
		t.Errorf("the log has %d up=false lines for %d downs: nothing was summarised", lines, want)
	}
}

// parseReport sums the self column by where the samples were: kernel or user space.
func TestParseReport(t *testing.T) {
	text := `# Samples: 12K of event 'cpu-clock:ppp'
#
# Overhead  Symbol
# ........  ......
#
    20.50%  [k] finish_task_switch.isra.0
     3.25%  [.] runtime.mallocgc
     1.25%  [k] __tcp_transmit_skb
     0.50%  [.] 0x000055a160558cc0
`
	k := parseReport(text)
	if k.Kernel != 21.75 || k.User != 3.75 {
		t.Fatalf("parseReport = %+v; want kernel 21.75, user 3.75", k)
	}
}
