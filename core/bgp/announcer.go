package bgp

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

// SpeakerConfig is the speaker's configuration for a bgp block.
func SpeakerConfig(b *config.BGP) *bgppb.Config {
	c := &bgppb.Config{LocalAs: b.LocalAS, RouterId: b.RouterID.String()}
	for _, n := range b.Neighbors {
		c.Neighbors = append(c.Neighbors, &bgppb.Neighbor{
			Address: n.Address.String(), RemoteAs: n.RemoteAS, Password: n.Password,
			HoldTimeSec: uint32(n.HoldTime / time.Second), ConnectRetrySec: uint32(n.ConnectRetry / time.Second),
			MultihopTtl: uint32(n.Multihop), Bfd: n.BFD,
		})
	}
	return c
}

// Announcer keeps the speaker announcing what the instances' states call for (Routes). It
// recomputes the set when told that a state changed (Changed, from every transition) and
// once a second besides, which is when a new effective priority reaches a MED or
// LOCAL_PREF taken from it.
type Announcer struct {
	log  hclog.Logger
	host *Host
	kick chan struct{}

	mu       sync.Mutex
	states   func() []Instance
	graceful time.Duration
	draining map[string]bool // instances whose routes carry GRACEFUL_SHUTDOWN (DrainInstances)
	stopped  bool            // Drain ran: nothing is announced any more

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// NewAnnouncer prepares an announcer for the bgp block b, with the speaker at speakerPath
// and states reading the instances' states. Nothing runs before Start.
func NewAnnouncer(log hclog.Logger, b *config.BGP, speakerPath string, states func() []Instance) *Announcer {
	a := &Announcer{log: log, host: NewHost(log, speakerPath), kick: make(chan struct{}, 1),
		states: states, graceful: b.GracefulShutdown, draining: map[string]bool{}}
	a.host.Configure(SpeakerConfig(b))
	return a
}

// Start runs the speaker and the announcing loop until Drain or ctx's end.
func (a *Announcer) Start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.done.Add(2)
	go func() { defer a.done.Done(); a.host.Run(ctx) }()
	go func() { defer a.done.Done(); a.loop(ctx) }()
}

// Changed says that an instance's state changed.
func (a *Announcer) Changed() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Reconfigure takes a reloaded bgp block and the reloaded instances.
func (a *Announcer) Reconfigure(b *config.BGP, states func() []Instance) {
	a.mu.Lock()
	a.states, a.graceful = states, b.GracefulShutdown
	a.mu.Unlock()
	a.host.Configure(SpeakerConfig(b))
	a.Changed()
}

func (a *Announcer) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		a.update()
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-tick.C:
		}
	}
}

// update hands the host the routes the states call for now, and returns its generation.
func (a *Announcer) update() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return a.host.SetRoutes(nil)
	}
	routes := Routes(a.states())
	for _, r := range routes {
		if a.draining[r.Owner] {
			r.GracefulShutdown = true
		}
	}
	return a.host.SetRoutes(routes)
}

// maxDemoteDrain bounds the drain before a demote: core waits 10 s for the vrrp process to
// take a demote.
const maxDemoteDrain = 8 * time.Second

// DrainInstances announces the routes of these instances with GRACEFUL_SHUTDOWN and waits
// the graceful_shutdown time (at most maxDemoteDrain), so that routers move their traffic
// before the instances are demoted. The mark ends with Undrain, once the demote took effect.
func (a *Announcer) DrainInstances(ctx context.Context, names []string) {
	a.mu.Lock()
	for _, n := range names {
		a.draining[n] = true
	}
	wait := min(a.graceful, maxDemoteDrain)
	a.mu.Unlock()
	if wait <= 0 || len(names) == 0 {
		return
	}
	a.drainWait(ctx, a.update(), wait)
}

// Undrain clears the drain marks of DrainInstances.
func (a *Announcer) Undrain(names []string) {
	a.mu.Lock()
	for _, n := range names {
		delete(a.draining, n)
	}
	a.mu.Unlock()
	a.Changed()
}

// drainWait waits until the speaker took generation gen (at most 5 s), then wait more.
func (a *Announcer) drainWait(ctx context.Context, gen uint64, wait time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := a.host.WaitApplied(cctx, gen)
	cancel()
	if err != nil {
		a.log.Warn("graceful shutdown not sent: the BGP speaker did not take the routes", "error", err)
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// Drain ends announcing, the graceful way: every route is announced with
// GRACEFUL_SHUTDOWN for the graceful_shutdown time, then withdrawn, and then the speaker is
// stopped. It returns within graceful_shutdown plus about 10 s whatever the speaker does.
func (a *Announcer) Drain(ctx context.Context) {
	a.mu.Lock()
	wait := a.graceful
	for _, in := range a.states() {
		a.draining[in.Name] = true
	}
	a.mu.Unlock()
	if wait > 0 {
		gen := a.update()
		a.log.Info("BGP graceful shutdown: routes announced with GRACEFUL_SHUTDOWN before the withdraw", "wait", wait)
		a.drainWait(ctx, gen, wait)
	}
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	gen := a.update()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.host.WaitApplied(cctx, gen); err != nil {
		a.log.Warn("routes not withdrawn one by one; stopping the speaker ends its sessions, and with them its routes", "error", err)
	}
	cancel()
	a.Stop()
}

// Stop stops the speaker at once: its sessions end, and the routers drop its routes.
func (a *Announcer) Stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.done.Wait()
}

// Status is the speaker's state, for vigil status.
func (a *Announcer) Status(ctx context.Context) HostStatus { return a.host.Status(ctx) }
