package vrrp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// A backup that keeps hearing the same master only pushes its Master_Down_Timer back
// (fsm.Machine.RefreshedBy). While that holds, its unit hands the timer to the engine's
// watchdog and sleeps: the socket reader records the arrival time of each such advert in
// the instance's refresh word instead of waking the unit, and the watchdog wakes the unit
// only when a master down timer comes near. The unit then hands the last advert to its
// machine, with its arrival time, before anything else.

// handBack is how close to its Master_Down_Timer a backup takes the timer back from the
// watchdog, to wait out the end itself (with earlyWake's precision).
const handBack = 4 * time.Millisecond

// refresh is an instance's refresh word and the advert it stands for.
type refresh struct {
	// word is -1 while the unit itself receives the instance's adverts. Otherwise it is the
	// arrival of the last advert that matched adv, in nanoseconds since the engine's base
	// time; when the unit hands the timer over it stores the current time, so that every
	// handover starts a new value and a reader holding an old one cannot succeed.
	word atomic.Int64
	adv  atomic.Pointer[fsm.AdvertReceived]
}

// offer records an advert that arrived at t (since base), if the unit handed its timer over
// for exactly this advert. It reports whether the advert was taken.
func (r *refresh) offer(adv fsm.AdvertReceived, t int64) bool {
	for {
		w := r.word.Load()
		if w < 0 {
			return false
		}
		if want := r.adv.Load(); want == nil || *want != adv {
			return false
		}
		// Times only move forward, even if this advert was read just before the handover.
		if r.word.CompareAndSwap(w, max(t, w+1)) {
			return true
		}
	}
}

// watchdog watches the Master_Down_Timers that backups handed over.
type watchdog struct {
	base time.Time

	mu      sync.Mutex
	entries []*watchEntry
	kick    chan struct{}
}

type watchEntry struct {
	in       *instance
	since    int64     // the refresh word when handed over
	deadline time.Time // the machine's Master_Down_Timer then
	down     time.Duration
}

func newWatchdog(base time.Time) *watchdog {
	return &watchdog{base: base, kick: make(chan struct{}, 1)}
}

// put hands in's Master_Down_Timer (deadline, running for down after each advert) to the
// watchdog. The caller has just stored since in the refresh word.
func (w *watchdog) put(in *instance, since int64, deadline time.Time, down time.Duration) {
	w.mu.Lock()
	w.entries = append(w.entries, &watchEntry{in: in, since: since, deadline: deadline, down: down})
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// take removes in's entry, if it is still there.
func (w *watchdog) take(in *instance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, e := range w.entries {
		if e.in == in {
			last := len(w.entries) - 1
			w.entries[i] = w.entries[last]
			w.entries[last] = nil
			w.entries = w.entries[:last]
			return
		}
	}
}

func (w *watchdog) run(ctx context.Context) { runTimed(ctx, w.kick, w.check) }

// check wakes the units whose timers come near and returns when to look again.
func (w *watchdog) check(now time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var next time.Time
	for i := 0; i < len(w.entries); {
		e := w.entries[i]
		dl := e.deadline
		if t := e.in.fresh.word.Load(); t > e.since {
			if d := w.base.Add(time.Duration(t)).Add(e.down); d.After(dl) {
				dl = d
			}
		}
		wake := dl.Add(-handBack)
		if wake.After(now) {
			if next.IsZero() || wake.Before(next) {
				next = wake
			}
			i++
			continue
		}
		// The unit takes the timer back; if its inbox is full it is awake anyway and will.
		select {
		case e.in.unit.inbox <- unitEvent{member: e.in.member, msg: wakeUp{}}:
		default:
		}
		last := len(w.entries) - 1
		w.entries[i] = w.entries[last]
		w.entries[last] = nil
		w.entries = w.entries[:last]
	}
	return next, !next.IsZero()
}

// wakeUp asks a unit to take its timers back and look at them.
type wakeUp struct{}
