package bgp

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

// Host runs the speaker process and keeps it announcing what it was last told: the
// configuration and the set of routes are desired state, which Run hands to the speaker
// whenever either changes and again, whole, to a speaker restarted after it died. Nothing
// queues: a change made while the speaker is away replaces the one before it.
type Host struct {
	log  hclog.Logger
	path string

	kick chan struct{} // capacity 1: "the desired state changed"

	mu       sync.Mutex
	cfg      *bgppb.Config
	routes   []*bgppb.Route
	gen      uint64        // the desired state's generation
	applied  uint64        // the generation the running speaker took
	took     chan struct{} // closed when applied moves, then replaced
	state    string        // starting, running, restarting
	pid      int
	started  time.Time
	restarts int
	lastErr  string
	spk      bgppb.SpeakerClient
}

// NewHost prepares a host for the speaker executable at path (vigil-bgp, found and checked
// by the caller). Nothing runs before Run.
func NewHost(log hclog.Logger, path string) *Host {
	return &Host{log: log, path: path, kick: make(chan struct{}, 1), took: make(chan struct{}), state: "starting"}
}

// Configure sets the speaker's configuration.
func (h *Host) Configure(c *bgppb.Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if proto.Equal(c, h.cfg) {
		return
	}
	h.cfg = proto.Clone(c).(*bgppb.Config)
	h.changed()
}

// SetRoutes sets the whole set of routes to announce and returns the generation that
// WaitApplied waits for.
func (h *Host) SetRoutes(rs []*bgppb.Route) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.EqualFunc(rs, h.routes, func(a, b *bgppb.Route) bool { return proto.Equal(a, b) }) {
		return h.gen
	}
	h.routes = make([]*bgppb.Route, len(rs))
	for i, r := range rs {
		h.routes[i] = proto.Clone(r).(*bgppb.Route)
	}
	h.changed()
	return h.gen
}

// changed moves the generation; the caller holds mu.
func (h *Host) changed() {
	h.gen++
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// WaitApplied waits until the speaker took generation gen (or a later one), or ctx ends.
func (h *Host) WaitApplied(ctx context.Context, gen uint64) error {
	for {
		h.mu.Lock()
		done, took := h.applied >= gen, h.took
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-took:
		case <-ctx.Done():
			return fmt.Errorf("BGP speaker: routes not applied: %w", ctx.Err())
		}
	}
}

// Run starts the speaker and keeps it running until ctx ends, restarting it with a backoff
// (1 s doubling to 30 s, back to 1 s after a minute of running) when it exits or stops
// answering. At the end the speaker is stopped.
func (h *Host) Run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := h.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		h.mu.Lock()
		h.state, h.restarts, h.lastErr, h.pid, h.spk = "restarting", h.restarts+1, err.Error(), 0, nil
		h.mu.Unlock()
		h.log.Error("BGP speaker stopped; VRRP goes on, routes are announced again when it is back", "error", err, "restart_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// callTimeout bounds one call to the speaker: a speaker that does not answer in it is
// restarted, so that the desired state is never stuck behind it.
const callTimeout = 10 * time.Second

// healthEvery is how often a speaker with nothing to do is asked for its status: one that
// does not answer within callTimeout is restarted, as one that fails a call is.
const healthEvery = 5 * time.Second

// KillWait is how long a speaker is given to stop when asked (go-plugin's shutdown call),
// before it is killed: the call itself waits for ever for a speaker that is stopped or
// frozen.
const KillWait = 3 * time.Second

func (h *Host) runOnce(ctx context.Context) error {
	// No Pdeathsig: it fires when the thread that started the child ends, and Go ends
	// threads that a goroutine locked (netif's do); the speaker watches its parent instead
	// (speaker.WatchParent) and ends its sessions when this process is gone.
	cmd := exec.Command(h.path)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  bgppb.Handshake,
		Plugins:          bgppb.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           h.log,
		StartTimeout:     30 * time.Second,
	})
	defer stop(client, cmd)
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("start %s: %w", h.path, err)
	}
	raw, err := rpc.Dispense(bgppb.PluginName)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", h.path, err)
	}
	spk := raw.(bgppb.SpeakerClient)
	h.mu.Lock()
	h.state, h.pid, h.started, h.spk = "running", cmd.Process.Pid, time.Now(), spk
	h.mu.Unlock()
	h.log.Info("BGP speaker started", "pid", cmd.Process.Pid)

	var sentCfg *bgppb.Config // what this speaker was configured with
	var sentGen uint64        // and the generation it took
	alive := time.NewTicker(time.Second)
	defer alive.Stop()
	lastCall := time.Now()
	for {
		h.mu.Lock()
		gen, cfg, routes := h.gen, h.cfg, h.routes
		h.mu.Unlock()
		if gen != sentGen && cfg != nil {
			if err := h.apply(ctx, spk, cfg, sentCfg, routes); err != nil {
				return err
			}
			sentCfg, sentGen, lastCall = cfg, gen, time.Now()
			h.mu.Lock()
			if gen > h.applied {
				h.applied = gen
				close(h.took)
				h.took = make(chan struct{})
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.kick:
		case <-alive.C:
			if client.Exited() {
				return errors.New("the speaker process exited")
			}
			if time.Since(lastCall) >= healthEvery {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				_, err := spk.Status(cctx, &bgppb.Empty{})
				cancel()
				if err != nil && ctx.Err() == nil {
					return fmt.Errorf("the speaker does not answer: %w", err)
				}
				lastCall = time.Now()
			}
		}
	}
}

// stop ends the speaker: go-plugin's Kill asks it to stop and waits for the process, but
// its request waits for ever on a speaker that is stopped (SIGSTOP) or frozen, so after
// KillWait the process is killed, which ends the request.
func stop(client *plugin.Client, cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { defer close(done); client.Kill() }()
	select {
	case <-done:
	case <-time.After(KillWait):
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-done
	}
}

// apply hands the speaker its configuration (when it changed) and the routes.
func (h *Host) apply(ctx context.Context, spk bgppb.SpeakerClient, cfg, sent *bgppb.Config, routes []*bgppb.Route) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if !proto.Equal(cfg, sent) {
		if _, err := spk.Configure(cctx, cfg); err != nil {
			return refusedOrGone("configuration", err)
		}
	}
	if _, err := spk.SetRoutes(cctx, &bgppb.Routes{Routes: routes}); err != nil {
		return refusedOrGone("routes", err)
	}
	return nil
}

// refusedOrGone words a failed call. A refusal (InvalidArgument) is a disagreement between
// the two binaries that a restart will not mend, but restarting is still the way to get
// back to a known state; the message says which it was.
func refusedOrGone(what string, err error) error {
	if status.Code(err) == codes.InvalidArgument {
		return fmt.Errorf("the speaker refused the %s (is vigil-bgp from the same release as vigil?): %w", what, err)
	}
	return fmt.Errorf("send the %s to the speaker: %w", what, err)
}

// HostStatus is the speaker process's state and, when it answered, its own report.
type HostStatus struct {
	State     string
	PID       int
	Started   time.Time
	Restarts  int
	LastError string
	Speaker   *bgppb.SpeakerStatus // nil when it did not answer
	Error     string               // why Speaker is nil
}

// Status asks the speaker for its sessions and routes, waiting at most as long as ctx lets it.
func (h *Host) Status(ctx context.Context) HostStatus {
	h.mu.Lock()
	st := HostStatus{State: h.state, PID: h.pid, Started: h.started, Restarts: h.restarts, LastError: h.lastErr}
	spk := h.spk
	h.mu.Unlock()
	if spk == nil {
		st.Error = "the speaker is not running"
		return st
	}
	ss, err := spk.Status(ctx, &bgppb.Empty{})
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Speaker = ss
	return st
}
