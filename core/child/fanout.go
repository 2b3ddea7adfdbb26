package child

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fanout hands each published value to every subscribed stream without ever blocking the
// publisher and without ever losing the newest value of a key (a check, an instance): a
// stream that falls behind gets, for every key, its newest value, and at most the older
// values that fit in its queue's limit are kept besides (see queue). Nothing needs a resync,
// because nothing that still matters is dropped.
type fanout[T any] struct {
	key   func(T) string
	limit int // see queue.limit

	mu   sync.Mutex
	subs []*queue[T]
}

func newFanout[T any](key func(T) string, limit int) *fanout[T] {
	return &fanout[T]{key: key, limit: limit}
}

// newQueue returns an empty queue with the fanout's key and limit.
func (f *fanout[T]) newQueue() *queue[T] {
	return &queue[T]{key: f.key, limit: f.limit, ready: make(chan struct{}, 1)}
}

// subscribe returns a queue of the values published from now on, preloaded with initial.
// A caller that computes initial under the lock it publishes under gets every value exactly
// once: either in initial or published after.
func (f *fanout[T]) subscribe(initial []T) *queue[T] {
	q := f.newQueue()
	for _, v := range initial {
		q.push(v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, q)
	return q
}

func (f *fanout[T]) unsubscribe(q *queue[T]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = slices.DeleteFunc(f.subs, func(s *queue[T]) bool { return s == q })
}

func (f *fanout[T]) publish(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.subs {
		q.push(v)
	}
}

// queue holds the values published for one subscriber that it has not taken yet. Up to
// limit values are kept as they come; past it (at once for a limit of 0), a new value
// supersedes the oldest pending value of its key, which is left out. What the subscriber
// takes is thus the published sequence with only superseded values left out, in order; of
// each key it gets the newest values, a run without gaps (for transitions: no BACKUP
// between two MASTERs left out), ending with the newest; the queue never holds more than
// limit values plus one per key.
type queue[T any] struct {
	key   func(T) string
	limit int
	ready chan struct{} // a value is pending (capacity 1: one wake-up covers any number)

	mu        sync.Mutex
	items     []T
	coalesced int // superseded values left out since the last take
}

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.limit {
		k := q.key(v)
		if i := slices.IndexFunc(q.items, func(p T) bool { return q.key(p) == k }); i >= 0 {
			q.items = slices.Delete(q.items, i, i+1)
			q.coalesced++
		}
	}
	q.items = append(q.items, v)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns the pending values, oldest first, and how many superseded ones were left out.
func (q *queue[T]) take() ([]T, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, n := q.items, q.coalesced
	q.items, q.coalesced = nil, 0
	return items, n
}

// stream sends the values of q, a subscription to f, until ctx ends or send fails; then it
// unsubscribes q.
func stream[T any](ctx context.Context, f *fanout[T], q *queue[T], send func(T) error, log hclog.Logger) error {
	defer f.unsubscribe(q)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.ready:
		}
		items, coalesced := q.take()
		if coalesced > 0 {
			log.Warn("core is not reading fast enough; superseded updates were left out, the newest of each is sent", "left_out", coalesced)
		}
		for _, v := range items {
			if err := send(v); err != nil {
				return err
			}
		}
	}
}

// work is a child's running job: stopping it cancels its context and waits, at most 5 s, for
// it to finish (for vrrp: to resign and remove the addresses).
type work struct {
	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// start runs f in the background; it reports false when work is already running.
func (w *work) start(f func(ctx context.Context)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		f(ctx)
	}()
	return true
}

func (w *work) shutdown(log hclog.Logger) {
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		log.Error("did not stop within 5 s")
	}
}
