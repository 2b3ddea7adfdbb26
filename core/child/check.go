package child

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/check"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// checkServer runs the check scheduler in the check child.
type checkServer struct {
	childpb.UnimplementedCheckServer
	log hclog.Logger

	mu       sync.Mutex
	stop     context.CancelFunc
	done     chan struct{}
	latest   map[string]*childpb.CheckState
	watchers []chan *childpb.CheckState
}

func newCheckServer(log hclog.Logger) *checkServer {
	return &checkServer{log: log, latest: map[string]*childpb.CheckState{}}
}

func (s *checkServer) Start(_ context.Context, req *childpb.StartRequest) (*childpb.StartResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	specs, err := check.FromConfig(cfg)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return nil, status.Error(codes.FailedPrecondition, "already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan check.Change, len(specs)+1)
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		check.Run(ctx, specs, changes)
	}()
	go s.forward(ctx, changes)
	s.log.Info("checks started", "count", len(specs))
	return &childpb.StartResponse{}, nil
}

// forward keeps the latest state of every check and passes each change to core.
func (s *checkServer) forward(ctx context.Context, changes <-chan check.Change) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			st := &childpb.CheckState{Name: c.Name, Up: c.Up, Message: c.Msg, UnixNano: time.Now().UnixNano()}
			if c.Msg != "initial state" {
				s.log.Info("check changed", "check", c.Name, "up", c.Up, "detail", c.Msg)
			}
			s.mu.Lock()
			s.latest[c.Name] = st
			for _, w := range s.watchers {
				select {
				case w <- st:
				default:
					s.log.Warn("core is not reading check changes fast enough; one was dropped", "check", c.Name)
				}
			}
			s.mu.Unlock()
		}
	}
}

// Changes sends the current state of every check, then each change.
func (s *checkServer) Changes(_ *childpb.Empty, stream childpb.Check_ChangesServer) error {
	ch := make(chan *childpb.CheckState, 1024)
	s.mu.Lock()
	for _, st := range s.latest {
		ch <- st
	}
	s.watchers = append(s.watchers, ch)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for i, w := range s.watchers {
			if w == ch {
				s.watchers = append(s.watchers[:i], s.watchers[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	}()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case st := <-ch:
			if err := stream.Send(st); err != nil {
				return err
			}
		}
	}
}

func (s *checkServer) Status(context.Context, *childpb.Empty) (*childpb.CheckStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &childpb.CheckStatus{}
	for _, st := range s.latest {
		out.Checks = append(out.Checks, st)
	}
	return out, nil
}

func (s *checkServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

func (s *checkServer) shutdown() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Error("checks did not stop within 5 s")
	}
}
