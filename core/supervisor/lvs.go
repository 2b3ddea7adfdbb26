package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/lvs"
)

// LVSEvent is a notification of the check process's load balancer, as core admitted it: a
// real server joining or leaving its pool (notify_up, notify_down) or a virtual server
// gaining or losing its quorum (quorum_up, quorum_down). It names the servers only; the
// notify path takes the scripts and the FIFO line from its own configuration.
type LVSEvent struct {
	Kind lvs.Kind
	// Service is the virtual server's ID (core/lvs Service.ID); Real the real server,
	// ADDR:PORT, for RealUp and RealDown.
	Service, Real string
	// Init: the quorum reported when the virtual server starts. Stopping: a notification
	// of the shutdown (omega).
	Init, Stopping bool
}

// followLVS reads the check child's load-balancer notifications until ctx ends or the child
// ends the stream (it does once it has stopped and sent the last of them). A stream that
// breaks while the child runs is opened again after a pause.
func (s *Supervisor) followLVS(ctx context.Context, c childpb.CheckClient, epoch uint64) {
	var broke logLimit
	for {
		err := s.watchLVS(ctx, c, epoch)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if broke.allow() {
			s.opts.Log.Error("load balancer's notification stream from the check child broke; opening it again", "error", err, "breaks", broke.n)
		}
	}
}

func (s *Supervisor) watchLVS(ctx context.Context, c childpb.CheckClient, epoch uint64) error {
	stream, err := c.LVSEvents(ctx, &childpb.Empty{})
	if err != nil {
		return err
	}
	var refused logLimit
	var last uint64
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		if ev.GetSeq() != 0 && ev.GetSeq() <= last {
			// The same event again (the stream was opened anew): already passed on.
			continue
		}
		e, err := s.admitLVS(ev)
		if err != nil {
			if refused.allow() {
				s.opts.Log.Warn("check child sent a bad load-balancer notification; not passed on", "error", err, "refused_so_far", refused.n)
			}
			continue
		}
		last = ev.GetSeq()
		if s.opts.OnLVS != nil {
			s.opts.OnLVS(e)
		}
	}
}

// admitLVS admits ev if the configuration, or one the check child may still send by (see
// ran), has its virtual server and real server.
func (s *Supervisor) admitLVS(ev *childpb.LVSEvent) (LVSEvent, error) {
	var kind lvs.Kind
	switch ev.GetKind() {
	case childpb.LVSEvent_REAL_UP:
		kind = lvs.RealUp
	case childpb.LVSEvent_REAL_DOWN:
		kind = lvs.RealDown
	case childpb.LVSEvent_QUORUM_UP:
		kind = lvs.QuorumUp
	case childpb.LVSEvent_QUORUM_DOWN:
		kind = lvs.QuorumDown
	default:
		return LVSEvent{}, fmt.Errorf("%w: a load-balancer notification of kind %d", errRefused, ev.GetKind())
	}
	real := kind == lvs.RealUp || kind == lvs.RealDown
	if !real && ev.GetReal() != "" {
		return LVSEvent{}, fmt.Errorf("%w: a quorum notification naming real server %q", errRefused, checksched.Message(ev.GetReal()))
	}
	s.mu.Lock()
	ran := s.ran[child.RoleCheck]
	cfgs := []*config.Config{s.cfg, ran[0], ran[1]}
	s.mu.Unlock()
	for _, cfg := range cfgs {
		if cfg != nil && s.hasServer(cfg, ev.GetService(), ev.GetReal(), real) {
			return LVSEvent{Kind: kind, Service: ev.GetService(), Real: ev.GetReal(), Init: ev.GetInit(), Stopping: ev.GetStopping()}, nil
		}
	}
	if real {
		return LVSEvent{}, fmt.Errorf("%w: a notification of real server %q of virtual server %q, which the configuration does not have",
			errRefused, checksched.Message(ev.GetReal()), checksched.Message(ev.GetService()))
	}
	return LVSEvent{}, fmt.Errorf("%w: a notification of virtual server %q, which the configuration does not have", errRefused, checksched.Message(ev.GetService()))
}

// hasServer says whether cfg has virtual server id (and real server hostport of it, when
// real). The index of a configuration is built once.
func (s *Supervisor) hasServer(cfg *config.Config, id, hostport string, real bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.lvsIndex[cfg]
	if !ok {
		idx = map[string]map[string]bool{}
		for _, svc := range lvs.FromConfig(cfg).Services {
			reals := map[string]bool{}
			for _, r := range svc.Reals {
				reals[r.HostPort()] = true
			}
			idx[svc.ID] = reals
		}
		if s.lvsIndex == nil || len(s.lvsIndex) > 4 {
			s.lvsIndex = map[*config.Config]map[string]map[string]bool{} // only the few configurations in use
		}
		s.lvsIndex[cfg] = idx
	}
	reals, ok := idx[id]
	return ok && (!real || reals[hostport])
}
