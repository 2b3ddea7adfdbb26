package child

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fanout hands each published value to every subscribed stream without ever blocking the
// publisher: a stream that falls behind loses values and the loss is logged.
type fanout[T any] struct {
	mu   sync.Mutex
	subs []chan T
}

// subscribe returns a channel of published values, preloaded with initial.
func (f *fanout[T]) subscribe(initial []T) chan T {
	ch := make(chan T, max(1024, len(initial)))
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range initial {
		ch <- v
	}
	f.subs = append(f.subs, ch)
	return ch
}

func (f *fanout[T]) unsubscribe(ch chan T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.subs {
		if c == ch {
			f.subs = append(f.subs[:i], f.subs[i+1:]...)
			return
		}
	}
}

func (f *fanout[T]) publish(v T, log hclog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.subs {
		select {
		case c <- v:
		default:
			log.Warn("core is not reading fast enough; an update was dropped")
		}
	}
}

// stream sends the values of one subscription until the stream's context ends.
func stream[T any](ctx context.Context, f *fanout[T], initial []T, send func(T) error) error {
	ch := f.subscribe(initial)
	defer f.unsubscribe(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case v := <-ch:
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
