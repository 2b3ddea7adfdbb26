package notify

import (
	"context"
	"sync"
)

// serial runs the items pushed to it one at a time, in the order they came, from a bounded
// queue: the one shape of a VRRP notify action's worker and a virtual server's script
// worker, which differ only in what they deliver and in what they drop when behind.
type serial[T any] struct {
	max int
	// trim makes room when the queue holds more than max (called with mu held); it returns
	// what is left and logs what it dropped.
	trim func(q []T) []T
	wake chan struct{}

	mu    sync.Mutex
	queue []T
	busy  bool
}

func newSerial[T any](max int, trim func([]T) []T) serial[T] {
	return serial[T]{max: max, trim: trim, wake: make(chan struct{}, 1)}
}

// push queues it without ever blocking the caller.
func (s *serial[T]) push(it T) {
	s.mu.Lock()
	s.queue = append(s.queue, it)
	if len(s.queue) > s.max {
		s.queue = s.trim(s.queue)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// idle says that nothing is queued or being delivered.
func (s *serial[T]) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && !s.busy
}

// run delivers the queue until ctx ends; with ready set, not before it is closed (the
// plugins' configuration, for a worker that delivers through a plugin).
func (s *serial[T]) run(ctx context.Context, ready <-chan struct{}, deliver func(context.Context, T)) {
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
	}
	for ctx.Err() == nil {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.busy = false
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		it := s.queue[0]
		s.queue = s.queue[1:]
		s.busy = true
		s.mu.Unlock()
		deliver(ctx, it)
	}
}
