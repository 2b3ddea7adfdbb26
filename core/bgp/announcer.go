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

	cancel    context.CancelFunc
	done      sync.WaitGroup
	drainOnce sync.Once
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

// minGap is the least time between two recomputations: reading the instances' states
// takes the engine's lock, and in a flap storm the kicks would otherwise come back to back
// (core/vrrp's StatusOf says what that cost a master once).
const minGap = 20 * time.Millisecond

func (a *Announcer) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		a.update()
		select {
		case <-ctx.Done():
			return
		case <-time.After(minGap):
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-tick.C:
		}
	}
}

// update hands the host the routes the states call for now, and returns its generation
// and how many of the routes carry GRACEFUL_SHUTDOWN.
func (a *Announcer) update() (gen uint64, draining int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return a.host.SetRoutes(nil), 0
	}
	routes := Routes(a.states())
	for _, r := range routes {
		if a.draining[r.Owner] {
			r.GracefulShutdown = true
			draining++
		}
	}
	return a.host.SetRoutes(routes), draining
}

// applyWait bounds each wait of a drain for the speaker to take the routes.
const applyWait = 3 * time.Second

// StopBudget is the longest a drain at stop takes with graceful_shutdown g: the routes with
// GRACEFUL_SHUTDOWN taken, g, the withdraw taken, the speaker stopped. Core gives the vrrp
// process this much more time to stop.
func StopBudget(g time.Duration) time.Duration { return applyWait + g + applyWait + KillWait }

// maxDemoteDrain bounds the drain before a demote, both waits together: core waits 10 s
// for the vrrp process to take a demote.
const maxDemoteDrain = 8 * time.Second

// DrainInstances announces the routes of those of these instances that announce in anycast
// mode with GRACEFUL_SHUTDOWN and waits the graceful_shutdown time, within maxDemoteDrain
// and ctx, so that routers move their traffic to the other nodes before the instances are
// demoted. A master-mode instance is not drained: no other node announces its addresses
// before it resigns, so there is nowhere for the traffic to go. It returns at once when no
// announced route is concerned. The mark ends with Undrain, once the demote took effect.
func (a *Announcer) DrainInstances(ctx context.Context, names []string) {
	anycast := map[string]bool{}
	a.mu.Lock()
	for _, in := range a.states() {
		if in.Announce != nil && in.Announce.Mode == config.AnnounceAnycast {
			anycast[in.Name] = true
		}
	}
	for _, n := range names {
		if anycast[n] {
			a.draining[n] = true
		}
	}
	wait := a.graceful
	a.mu.Unlock()
	gen, marked := a.update()
	if wait <= 0 || marked == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, maxDemoteDrain)
	defer cancel()
	a.drainWait(ctx, gen, wait)
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

// drainWait waits until the speaker took generation gen (at most applyWait), then wait
// more, all within ctx.
func (a *Announcer) drainWait(ctx context.Context, gen uint64, wait time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, applyWait)
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
// GRACEFUL_SHUTDOWN for the graceful_shutdown time (none when nothing is announced), then
// withdrawn, and then the speaker is stopped. It returns within StopBudget whatever the
// speaker does. It runs once: a second call waits for the first to end.
func (a *Announcer) Drain(ctx context.Context) { a.drainOnce.Do(func() { a.drain(ctx) }) }

func (a *Announcer) drain(ctx context.Context) {
	a.mu.Lock()
	wait := a.graceful
	for _, in := range a.states() {
		a.draining[in.Name] = true
	}
	a.mu.Unlock()
	if gen, marked := a.update(); wait > 0 && marked > 0 {
		a.log.Info("BGP graceful shutdown: routes announced with GRACEFUL_SHUTDOWN before the withdraw", "routes", marked, "wait", wait)
		a.drainWait(ctx, gen, wait)
	}
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	gen, _ := a.update()
	cctx, cancel := context.WithTimeout(ctx, applyWait)
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
