package child

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
)

// ValidateItem is one check whose params core asks the check child's plugins about.
type ValidateItem struct {
	Plugin, Name string
	Params       []config.Param
}

// ValidateRequest is what core sends the check child to validate items under a
// configuration whose global_defs are g: the child answers only if its plugin host has
// g's plugin_dir and plugin_sha256.
func ValidateRequest(g config.Global, items []ValidateItem) *childpb.ValidateRequest {
	req := &childpb.ValidateRequest{PluginHostKey: checksched.PluginHostKey(g), Items: make([]*childpb.ValidateItem, len(items))}
	for i, it := range items {
		req.Items[i] = &childpb.ValidateItem{Plugin: it.Plugin, Name: it.Name, Params: pbParams(it.Params)}
	}
	return req
}

func pbParams(ps []config.Param) []*childpb.Param {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*childpb.Param, len(ps))
	for i, p := range ps {
		out[i] = &childpb.Param{Key: p.Key, Values: p.Values, Block: pbParams(p.Block)}
	}
	return out
}

func sdkParams(ps []*childpb.Param) []sdk.Param {
	if len(ps) == 0 {
		return nil
	}
	out := make([]sdk.Param, len(ps))
	for i, p := range ps {
		out[i] = sdk.Param{Key: p.GetKey(), Values: p.GetValues(), Block: sdkParams(p.GetBlock())}
	}
	return out
}

// validateParallel bounds the Configure calls that Validate has out at once: a reload that
// changes many real servers' checkers asks about each, and one after another each waits for
// a plugin that is busy probing (a thousand TCP_CHECKs).
const validateParallel = 8

// Validate asks the running plugin host whether its plugins accept the items' params, with
// ValidateOnly: the plugin keeps nothing (sdk.Configured.Keep), and the host neither
// remembers the request for a restarted plugin nor forgets what a check runs with
// (plugin.proc.remember). A check of the same name keeps running with its params. A plugin
// the host does not run yet is started and kept, as the reload that follows would start it.
//
// It answers FailedPrecondition before Start, after the work ended, and when the request's
// plugin host key differs from the running host's (a reload that changes plugin_dir or a pin
// restarts every check on a new host, which core then validates on its own); Unavailable when
// a Stop or another host took the host away meanwhile, or when a plugin gave no answer of its
// own (it is in its restart backoff, it could not start, its file is unsafe): a fresh host
// may start it, or gives the same error. Core validates on a fresh host then.
func (s *checkServer) Validate(ctx context.Context, req *childpb.ValidateRequest) (*childpb.ValidateResponse, error) {
	s.rmu.Lock()
	host, key, ended := s.host, s.hostKey, s.ended
	s.rmu.Unlock()
	switch {
	case ended:
		return nil, status.Error(codes.FailedPrecondition, "stopped")
	case host == nil:
		return nil, status.Error(codes.FailedPrecondition, "not started")
	case key != req.GetPluginHostKey():
		return nil, status.Error(codes.FailedPrecondition, "the plugin host runs with another plugin_dir or plugin_sha256")
	}
	items := req.GetItems()
	results := make([]*childpb.ValidateResult, len(items))
	next := make(chan int)
	var (
		errMu   sync.Mutex
		hostErr error // the first error that is not a plugin's answer
	)
	var wg sync.WaitGroup
	for range min(validateParallel, len(items)) {
		wg.Go(func() {
			for i := range next {
				it := items[i]
				_, err := host.ConfigureCheck(ctx, it.GetPlugin(), sdk.ConfigureRequest{Name: it.GetName(), Params: sdkParams(it.GetParams()), ValidateOnly: true})
				r := &childpb.ValidateResult{}
				var pe *sdk.PluginError
				switch {
				case err == nil:
				case errors.Is(err, plugin.ErrNotFound), errors.As(err, &pe):
					r.Error, r.NotInstalled = err.Error(), errors.Is(err, plugin.ErrNotFound)
				default:
					// Not the plugin's answer: a process in its restart backoff, a start
					// that failed. A fresh host (core's) may do better, and says so if not.
					r = nil
					errMu.Lock()
					if hostErr == nil {
						hostErr = fmt.Errorf("plugin %s: %w", it.GetPlugin(), err)
					}
					errMu.Unlock()
				}
				results[i] = r
			}
		})
	}
feed:
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// Core gave up: what the calls answered meanwhile may be the deadline's doing.
		return nil, status.FromContextError(err).Err()
	}
	if hostErr != nil {
		return nil, status.Errorf(codes.Unavailable, "%v", hostErr)
	}
	s.rmu.Lock()
	same := s.host == host && !s.ended
	s.rmu.Unlock()
	if !same {
		// A closed host answers ErrClosed, which says nothing of the params.
		return nil, status.Error(codes.Unavailable, "the plugin host was replaced or stopped while validating")
	}
	s.log.Debug("validated checks on the running plugins", "count", len(items))
	return &childpb.ValidateResponse{Results: results}, nil
}
