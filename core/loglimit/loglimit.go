// Package loglimit keeps a repeating log line from flooding the journal: a key (an
// instance, a check, a drop reason) writes its first lines of a period, and past that one
// summary line per period says how many were left out, with the fields of the last one.
//
// Only the line is limited: callers still count, notify and publish every event.
package loglimit

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Clock is the time a Limiter reads and the timers it sets; tests inject their own.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer a Clock set.
type Timer interface{ Stop() bool }

type wallClock struct{}

func (wallClock) Now() time.Time                            { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// The fields a summary line adds to the last line left out: how many lines of its key were
// left out since the previous line written (that one included), and when that one came (the
// summary is written up to a period later).
const (
	SuppressedKey = "suppressed"
	LastAtKey     = "last_at"
)

// DefaultMaxKeys bounds the keys a Limiter follows at once. Keys are forgotten after a
// quiet period, so only a configuration with more keys than this all busy at once shares
// the overflow key's budget (see Limiter.Log).
const DefaultMaxKeys = 4096

// Options configure a Limiter.
type Options struct {
	// Burst is how many lines a key writes in a period before it is limited (at least 1).
	Burst int
	// Period is the window of the burst, and the interval between summary lines.
	Period time.Duration
	// MaxKeys bounds the keys followed at once; 0 is DefaultMaxKeys.
	MaxKeys int
	// Clock is the time; nil is the wall clock.
	Clock Clock
}

// Limiter limits lines per key. Its zero value is not usable: make one with New.
type Limiter struct {
	o Options

	mu   sync.Mutex
	keys map[string]*state
}

// state is what a Limiter keeps of one key: a window while the key writes, a timer while
// it is limited. A key is forgotten after a quiet period, which bounds the memory to the
// keys that logged lately.
type state struct {
	start   time.Time // of the window the key writes in
	written int       // lines written in that window
	timer   Timer     // set while the key is limited: the next summary
	left    uint64    // lines left out since the last summary
	last    line      // the last of them
}

type line struct {
	log   hclog.Logger
	level hclog.Level
	msg   string
	args  []any
	at    time.Time
}

// New returns a Limiter with o's settings.
func New(o Options) *Limiter {
	if o.Burst < 1 {
		o.Burst = 1
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	o.MaxKeys = max(o.MaxKeys, 2) // a key and the overflow
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	return &Limiter{o: o, keys: map[string]*state{}}
}

// overflowKey is the key shared by the keys that came when MaxKeys were followed already.
const overflowKey = "\x00overflow"

// Log writes msg with args to log at level, unless key wrote Burst lines in the current
// period or is being limited: then the line is counted, and the key's next summary (at
// most one per period) writes it with SuppressedKey, the number left out. It reports
// whether the line was written now.
func (l *Limiter) Log(log hclog.Logger, key string, level hclog.Level, msg string, args ...any) bool {
	now := l.o.Clock.Now()
	l.mu.Lock()
	st := l.keys[key]
	if st == nil {
		// One place is kept for the overflow key.
		if len(l.keys) >= l.o.MaxKeys-1 {
			l.sweep(now)
		}
		if len(l.keys) >= l.o.MaxKeys-1 {
			key = overflowKey
			st = l.keys[key]
		}
		if st == nil {
			st = &state{start: now}
			l.keys[key] = st
		}
	}
	if st.timer == nil {
		if now.Sub(st.start) >= l.o.Period {
			st.start, st.written = now, 0
		}
		if st.written < l.o.Burst {
			st.written++
			l.mu.Unlock()
			log.Log(level, msg, args...)
			return true
		}
		// Past the burst: summaries from now on, until a period passes without a line.
		st.timer = l.o.Clock.AfterFunc(l.o.Period, func() { l.summarise(key, st) })
	}
	st.left++
	st.last = line{log: log, level: level, msg: msg, args: args, at: now}
	l.mu.Unlock()
	return false
}

// summarise writes the summary of st's period, or forgets key after a quiet one.
func (l *Limiter) summarise(key string, st *state) {
	l.mu.Lock()
	if l.keys[key] != st || st.timer == nil {
		l.mu.Unlock()
		return // flushed meanwhile
	}
	if st.left == 0 {
		delete(l.keys, key) // a quiet period: the key writes its lines again
		l.mu.Unlock()
		return
	}
	left, last := st.left, st.last
	st.left, st.last = 0, line{}
	st.timer = l.o.Clock.AfterFunc(l.o.Period, func() { l.summarise(key, st) })
	l.mu.Unlock()
	last.write(left)
}

func (ln line) write(left uint64) {
	args := append(ln.args[:len(ln.args):len(ln.args)], SuppressedKey, left, LastAtKey, ln.at.UTC().Format(time.RFC3339Nano))
	ln.log.Log(ln.level, ln.msg, args...)
}

// sweep forgets the keys whose window is over and that are not limited. Callers hold mu.
func (l *Limiter) sweep(now time.Time) {
	for k, st := range l.keys {
		if st.timer == nil && now.Sub(st.start) >= l.o.Period {
			delete(l.keys, k)
		}
	}
}

// Flush writes the pending summaries now and forgets every key: at stop, so that the
// last state of a flapping key is not lost with the process.
func (l *Limiter) Flush() {
	l.mu.Lock()
	var pending []struct {
		ln   line
		left uint64
	}
	for k, st := range l.keys {
		if st.timer != nil {
			st.timer.Stop()
			st.timer = nil
			if st.left > 0 {
				pending = append(pending, struct {
					ln   line
					left uint64
				}{st.last, st.left})
			}
		}
		delete(l.keys, k)
	}
	l.mu.Unlock()
	for _, p := range pending {
		p.ln.write(p.left)
	}
}

// Keys returns how many keys the Limiter follows now (for tests of its bound).
func (l *Limiter) Keys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// The policy of state-change lines (VRRP transitions, check changes): a failover, a fault
// and its recovery are a handful of transitions, all written; a key that changes more often
// than that in a period is flapping, and is summarised.
const (
	TransitionBurst  = 5
	TransitionPeriod = 10 * time.Second
)

// ForTransitions returns a Limiter with the policy of state-change lines.
func ForTransitions() *Limiter {
	return New(Options{Burst: TransitionBurst, Period: TransitionPeriod})
}
