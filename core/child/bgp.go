package child

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ha/vigil/core/bgp"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/vrrp"
)

// bgpState is the vrrp process's BGP announcing: the running announcer, one still draining
// after a reload removed the bgp block, and why the configured speaker could not start.
// Transitions read the announcer with an atomic load, never a lock, so that nothing the
// speaker or a reload does can hold them up; changes are made one at a time under mu.
type bgpState struct {
	mu       sync.Mutex // Start, Reload and stop change the fields in turn
	cur      atomic.Pointer[bgp.Announcer]
	old      atomic.Pointer[bgp.Announcer]
	unusable atomic.Pointer[string] // why the configured speaker cannot run
}

// startBGP starts announcing when cfg has a bgp block, and returns the announcer (nil
// without the block). A speaker that cannot be found or trusted is logged and reported by
// status; VRRP goes on, the addresses still move, only their routes are not announced.
// Called with the state locked.
func (s *vrrpServer) startBGP(ctx context.Context, cfg *config.Config, eng *vrrp.Engine) *bgp.Announcer {
	s.bgp.unusable.Store(nil)
	if cfg.Global.BGP == nil {
		return nil
	}
	// A drain left by a reload that removed the block ends first: two speakers with one
	// router ID towards the same routers would reset each other's sessions.
	if old := s.bgp.old.Swap(nil); old != nil {
		old.Stop()
	}
	path, err := plugin.FindFile(plugin.ResolveDir(cfg.Global.PluginDir), plugin.SpeakerFile, "BGP speaker", cfg.Global.PluginSHA256)
	if err != nil {
		s.log.Error("BGP is configured, but its speaker cannot run: no routes are announced; VRRP goes on; install vigil-bgp and reload", "error", err)
		why := err.Error()
		s.bgp.unusable.Store(&why)
		return nil
	}
	a := bgp.NewAnnouncer(s.log.Named("bgp"), cfg.Global.BGP, path, announcing(cfg, eng))
	// Not the request's context: the speaker lives as long as the engine does.
	a.Start(context.WithoutCancel(ctx))
	return a
}

// announcing reads the states of cfg's instances that announce, for the announcer.
func announcing(cfg *config.Config, eng *vrrp.Engine) func() []bgp.Instance {
	type conf struct {
		an   *config.Announce
		vips []netip.Addr
	}
	confs := map[string]conf{}
	for _, vc := range cfg.Instances {
		if vc.Announce != nil {
			confs[vc.Name] = conf{an: vc.Announce, vips: vc.AnnouncedAddrs()}
		}
	}
	return func() []bgp.Instance {
		if len(confs) == 0 {
			return nil
		}
		var out []bgp.Instance
		for _, st := range eng.Status() {
			c, ok := confs[st.Name]
			if !ok {
				continue
			}
			out = append(out, bgp.Instance{Name: st.Name, Announce: c.an, VIPs: c.vips, State: st.State,
				EffectivePriority: st.EffectivePriority, Demoted: st.Demoted})
		}
		return out
	}
}

// reloadBGP follows a reload: starts, reconfigures or drains the announcer.
func (s *vrrpServer) reloadBGP(ctx context.Context, cfg *config.Config, eng *vrrp.Engine) {
	s.bgp.mu.Lock()
	defer s.bgp.mu.Unlock()
	a := s.bgp.cur.Load()
	switch {
	case a == nil:
		s.bgp.cur.Store(s.startBGP(ctx, cfg, eng))
	case cfg.Global.BGP == nil:
		s.log.Info("the bgp block is gone: withdrawing every route and stopping the speaker")
		s.bgp.cur.Store(nil)
		s.bgp.old.Store(a)
		// The reload does not wait for the drain; a stop waits for it (drainBGP), and a
		// reload that brings the block back ends it (startBGP).
		go func() {
			a.Drain(context.WithoutCancel(ctx))
			s.bgp.old.CompareAndSwap(a, nil)
		}()
	default:
		s.bgp.cur.Load().Reconfigure(cfg.Global.BGP, announcing(cfg, eng))
	}
}

// announcer returns the running announcer, or nil.
func (s *vrrpServer) announcer() *bgp.Announcer { return s.bgp.cur.Load() }

// drainBGP ends announcing at stop, before VRRP resigns: the routes leave gracefully
// while the addresses they lead to are still up. A second call (core's Stop and a SIGTERM
// both) waits for the first drain to end (Announcer.Drain runs once).
func (s *vrrpServer) drainBGP() {
	s.bgp.mu.Lock()
	a, old := s.bgp.cur.Load(), s.bgp.old.Load()
	s.bgp.mu.Unlock()
	for _, an := range []*bgp.Announcer{old, a} {
		switch {
		case an == nil:
		case s.keep:
			// --dont-release-vrrp leaves the addresses up; the speaker's sessions end
			// with this process all the same, and the routers drop the routes.
			an.Stop()
		default:
			an.Drain(context.Background())
		}
	}
}

// bgpStatus is the BGP part of the vrrp child's status; nil without a bgp block.
func (s *vrrpServer) bgpStatus(ctx context.Context) *childpb.BGPStatus {
	a := s.announcer()
	if a == nil {
		if why := s.bgp.unusable.Load(); why != nil {
			return &childpb.BGPStatus{State: "unavailable", LastError: *why, Unanswered: "the speaker cannot run"}
		}
		return nil
	}
	// Within core's wait for the whole answer (2 s): a speaker that does not answer costs
	// its own part, never the instances'.
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	hs := a.Status(cctx)
	out := &childpb.BGPStatus{State: hs.State, Pid: int64(hs.PID), Restarts: uint32(hs.Restarts), LastError: hs.LastError, Unanswered: hs.Error}
	if !hs.Started.IsZero() {
		out.StartedUnixNano = hs.Started.UnixNano()
	}
	if ss := hs.Speaker; ss != nil {
		out.LocalAs, out.RouterId = ss.LocalAs, ss.RouterId
		for _, p := range ss.Peers {
			out.Peers = append(out.Peers, &childpb.BGPPeer{Address: p.Address, RemoteAs: p.RemoteAs, State: p.State,
				SinceUnixNano: p.SinceUnixNano, Flaps: p.Flaps, LastError: p.LastError, RoutesSent: p.RoutesSent,
				RoutesReceived: p.RoutesReceived, BfdState: p.BfdState})
		}
		for _, r := range ss.Announced {
			out.Routes = append(out.Routes, &childpb.BGPRoute{Prefix: r.Prefix, Owner: r.Owner, GracefulShutdown: r.GracefulShutdown,
				HasMed: r.HasMed, Med: r.Med, HasLocalPref: r.HasLocalPref, LocalPref: r.LocalPref, Communities: r.Communities})
		}
	}
	return out
}
