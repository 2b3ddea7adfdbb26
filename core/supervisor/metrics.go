package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/metrics"
)

// ChildMetrics asks every child for its metrics (core/metrics' Gatherer), all at once and
// within ctx: one entry per child, with why its metrics are missing when they are (not
// running, no answer in time).
func (s *Supervisor) ChildMetrics(ctx context.Context) []metrics.ChildMetrics {
	procs := s.procs()
	out := make([]metrics.ChildMetrics, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		p.mu.Lock()
		v, c, state := p.vrrp, p.check, p.state
		p.mu.Unlock()
		out[i].Role = string(p.role)
		var call func(context.Context) (*childpb.MetricsReply, error)
		switch {
		case v != nil:
			call = func(ctx context.Context) (*childpb.MetricsReply, error) {
				return v.Metrics(ctx, &childpb.Empty{}, statusCall())
			}
		case c != nil:
			call = func(ctx context.Context) (*childpb.MetricsReply, error) {
				return c.Metrics(ctx, &childpb.Empty{}, statusCall())
			}
		default:
			out[i].Err = fmt.Errorf("the %s process is not running (%s)", p.role, state)
			continue
		}
		wg.Go(func() {
			r, err := call(ctx)
			if err != nil {
				out[i].Err = fmt.Errorf("the %s process: %s", p.role, unanswered(err))
				return
			}
			out[i].Families = r.GetFamilies()
		})
	}
	wg.Wait()
	return out
}

// ReadyWithin is how recently every child must have answered core for vigil to count as
// ready (Readiness) and for systemd's watchdog to be fed: a child answers core's health
// ping every second; 3 s without an answer is a child that stopped answering.
const ReadyWithin = 3 * time.Second

// errStarting: the children have not all taken the first configuration yet.
var errStarting = errors.New("starting: not every child runs with the configuration yet")

// Readiness says why vigil is not ready, nil when it is: every child of the configuration
// runs and took it (Ready), and every child answered within ReadyWithin (Answering). The
// HTTP /readyz asks it; systemd's READY=1 and watchdog use the same two.
func (s *Supervisor) Readiness() error {
	select {
	case <-s.ready:
	default:
		return errStarting
	}
	return s.Answering(ReadyWithin)
}
