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
	"github.com/vigil-ha/vigil/core/plugin"
)

// checkServer runs the check scheduler in the check child.
type checkServer struct {
	childpb.UnimplementedCheckServer
	log  hclog.Logger
	work work
	out  fanout[*childpb.CheckState]

	mu     sync.Mutex
	latest map[string]*childpb.CheckState
}

func newCheckServer(log hclog.Logger) *checkServer {
	return &checkServer{log: log, latest: map[string]*childpb.CheckState{}}
}

func (s *checkServer) Start(ctx context.Context, req *childpb.StartRequest) (*childpb.StartResponse, error) {
	cfg, err := parseChildConfig(req)
	if err != nil {
		return nil, err
	}
	host := plugin.New(plugin.ConfigOptions(cfg.Global, s.log))
	specs, err := check.FromConfig(ctx, cfg, host)
	if err != nil {
		host.Close()
		// A plugin that is missing, insecure or rejects its params will not get better by
		// restarting; core stops with the message.
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	for _, sp := range specs {
		if sp.Note != "" {
			s.log.Warn("check", "name", sp.Name, "note", sp.Note)
		}
	}
	started := s.work.start(func(ctx context.Context) {
		defer host.Close()
		changes := make(chan check.Change, len(specs)+1)
		go s.forward(ctx, changes)
		check.Run(ctx, specs, changes)
	})
	if !started {
		return nil, status.Error(codes.FailedPrecondition, "already started")
	}
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
			st := &childpb.CheckState{Name: c.Name, Up: c.Up, Message: c.Msg, UnixNano: time.Now().UnixNano(), Metrics: c.Metrics}
			if c.Weight != nil {
				w := int32(*c.Weight)
				st.Weight = &w
			}
			if c.Msg != "initial state" {
				args := []any{"check", c.Name, "up", c.Up, "detail", c.Msg}
				if c.Weight != nil {
					args = append(args, "weight", *c.Weight)
				}
				s.log.Info("check changed", args...)
			}
			s.mu.Lock()
			s.latest[c.Name] = st
			s.mu.Unlock()
			s.out.publish(st, s.log)
		}
	}
}

func (s *checkServer) current() []*childpb.CheckState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*childpb.CheckState, 0, len(s.latest))
	for _, st := range s.latest {
		out = append(out, st)
	}
	return out
}

// Changes sends the current state of every check, then each change.
func (s *checkServer) Changes(_ *childpb.Empty, srv childpb.Check_ChangesServer) error {
	return stream(srv.Context(), &s.out, s.current(), srv.Send)
}

func (s *checkServer) Status(context.Context, *childpb.Empty) (*childpb.CheckStatus, error) {
	return &childpb.CheckStatus{Checks: s.current()}, nil
}

func (s *checkServer) Stop(context.Context, *childpb.Empty) (*childpb.Empty, error) {
	s.shutdown()
	return &childpb.Empty{}, nil
}

func (s *checkServer) shutdown() { s.work.shutdown(s.log) }
