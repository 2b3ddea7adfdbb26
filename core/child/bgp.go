package child

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/core/bgp"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/vrrp"
)

// startBGP starts announcing when cfg has a bgp block, and returns the announcer (nil
// without the block). A speaker that cannot be found or trusted is logged and leaves VRRP
// alone: the addresses still move, only their routes are not announced.
func (s *vrrpServer) startBGP(ctx context.Context, cfg *config.Config, eng *vrrp.Engine) *bgp.Announcer {
	if cfg.Global.BGP == nil {
		return nil
	}
	path, err := plugin.FindFile(plugin.ResolveDir(cfg.Global.PluginDir), plugin.SpeakerFile, "BGP speaker", cfg.Global.PluginSHA256)
	if err != nil {
		s.log.Error("BGP is configured, but its speaker cannot run: no routes are announced; VRRP goes on", "error", err)
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
		if vc.Announce == nil {
			continue
		}
		c := conf{an: vc.Announce}
		// The excluded addresses move with the instance too (they are how one instance
		// carries both families), so they are announced with the others.
		for _, a := range slices.Concat(vc.VIPs, vc.ExcludedVIPs) {
			c.vips = append(c.vips, a.Prefix.Addr())
		}
		confs[vc.Name] = c
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
	s.bgpMu.Lock()
	defer s.bgpMu.Unlock()
	switch {
	case s.bgp == nil:
		s.bgp = s.startBGP(ctx, cfg, eng)
	case cfg.Global.BGP == nil:
		s.log.Info("the bgp block is gone: withdrawing every route and stopping the speaker")
		a := s.bgp
		s.bgp = nil
		go a.Drain(context.WithoutCancel(ctx)) // the reload does not wait for the drain
	default:
		s.bgp.Reconfigure(cfg.Global.BGP, announcing(cfg, eng))
	}
}

// announcer returns the running announcer, or nil.
func (s *vrrpServer) announcer() *bgp.Announcer {
	s.bgpMu.Lock()
	defer s.bgpMu.Unlock()
	return s.bgp
}

// drainBGP ends announcing at stop, before VRRP resigns: the routes leave gracefully
// while the addresses they lead to are still up.
func (s *vrrpServer) drainBGP() {
	s.bgpMu.Lock()
	a := s.bgp
	s.bgp = nil
	s.bgpMu.Unlock()
	if a == nil {
		return
	}
	if s.keep {
		// --dont-release-vrrp leaves the addresses up; the speaker's sessions end with
		// this process all the same, and the routers drop the routes.
		a.Stop()
		return
	}
	a.Drain(context.Background())
}

// bgpStatus is the announcer's part of the vrrp child's status.
func bgpStatus(ctx context.Context, a *bgp.Announcer) *childpb.BGPStatus {
	if a == nil {
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
