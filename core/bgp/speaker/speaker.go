// Package speaker is vigil's BGP speaker: it serves the vrrp process's protocol
// (core/internal/bgppb) over GoBGP's BgpServer, run in vigil-bgp. Configure sets the local AS,
// router ID and neighbors; SetRoutes takes the whole set of prefixes to announce, next hop
// self, and announces what is new or changed and withdraws what is gone; Status reports each
// session and the announced set. Peer state changes are logged, one line each, limited per
// peer and state so that a flapping or unreachable neighbor cannot flood the log.
package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/core/loglimit"
)

// Defaults the protocol leaves to the speaker (bgp.proto).
const (
	defaultHoldTime     = 90
	defaultConnectRetry = 5
)

// logPeriod bounds the log: per peer and state (and per peer for connection failures), one
// line in this period, then one summary with the count left out.
const logPeriod = time.Minute

// Speaker implements bgppb.SpeakerServer. Its zero value is not usable: make one with New.
type Speaker struct {
	bgppb.UnimplementedSpeakerServer

	log   hclog.Logger
	glog  hclog.Logger // GoBGP's own warnings and errors
	limit *loglimit.Limiter

	// op serialises Configure, SetRoutes and Stop, and is held while they call GoBGP.
	op      sync.Mutex
	srv     *server.BgpServer
	stopSrv context.CancelFunc // ends the event watch of srv
	cfg     *bgppb.Config      // what srv runs with (neighbors that failed to add left out)
	port    int32
	routes  map[netip.Prefix]*route
	stopped bool

	// mu guards peers. It is never held while calling GoBGP, whose goroutines call back
	// into the speaker (peer events, log records) and would otherwise deadlock with op.
	mu    sync.Mutex
	peers map[netip.Addr]*peer
}

// New makes a speaker that logs to log. It runs no BGP before the first Configure.
func New(log hclog.Logger) *Speaker {
	return &Speaker{
		log:    log,
		glog:   log.Named("gobgp"),
		limit:  loglimit.New(loglimit.Options{Burst: 1, Period: logPeriod}),
		routes: map[netip.Prefix]*route{},
		peers:  map[netip.Addr]*peer{},
	}
}

// neighbor is a checked bgppb.Neighbor.
type neighbor struct {
	addr netip.Addr
	pb   *bgppb.Neighbor
}

func checkConfig(c *bgppb.Config) ([]neighbor, error) {
	if c.GetLocalAs() == 0 {
		return nil, errors.New("local_as: missing")
	}
	id, err := netip.ParseAddr(c.GetRouterId())
	if err != nil || !id.Is4() {
		return nil, fmt.Errorf("router_id %q: want an IPv4 address", c.GetRouterId())
	}
	var ns []neighbor
	seen := map[netip.Addr]bool{}
	for _, n := range c.GetNeighbors() {
		a, err := netip.ParseAddr(n.GetAddress())
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("neighbor %q: not an IP address", n.GetAddress())
		}
		a = a.Unmap()
		if seen[a] {
			return nil, fmt.Errorf("neighbor %s: given twice", a)
		}
		seen[a] = true
		switch {
		case n.GetRemoteAs() == 0:
			return nil, fmt.Errorf("neighbor %s: remote_as missing", a)
		case n.GetHoldTimeSec() != 0 && n.GetHoldTimeSec() < 3, n.GetHoldTimeSec() > 65535:
			return nil, fmt.Errorf("neighbor %s: hold_time %d: want 3..65535 (RFC 4271)", a, n.GetHoldTimeSec())
		case n.GetMultihopTtl() > 255:
			return nil, fmt.Errorf("neighbor %s: multihop_ttl %d: want 1..255", a, n.GetMultihopTtl())
		}
		ns = append(ns, neighbor{addr: a, pb: n})
	}
	return ns, nil
}

// Configure starts BGP on the first call and brings the neighbors to what c says on later
// ones. A change of local AS, router ID or listening (some neighbor passive or none) restarts
// BGP, and with it every session; a changed neighbor has its session restarted; the others
// are left alone.
func (s *Speaker) Configure(ctx context.Context, c *bgppb.Config) (*bgppb.Empty, error) {
	ns, err := checkConfig(c)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "BGP configuration: %v", err)
	}
	// GoBGP accepts incoming sessions only when it listens; it listens on the BGP port
	// only when a neighbor needs it, so that a speaker with active neighbors alone takes
	// no port and needs no privilege for one.
	port := int32(-1)
	for _, n := range ns {
		if n.pb.GetPassive() {
			port = 179
		}
	}
	s.op.Lock()
	defer s.op.Unlock()
	if s.stopped {
		return nil, status.Error(codes.FailedPrecondition, "BGP speaker: stopped")
	}
	if s.srv == nil || c.GetLocalAs() != s.cfg.GetLocalAs() || c.GetRouterId() != s.cfg.GetRouterId() || port != s.port {
		if err := s.restart(ctx, c, port); err != nil {
			return nil, status.Errorf(codes.Internal, "BGP speaker: start BGP (AS %d, router ID %s): %v", c.GetLocalAs(), c.GetRouterId(), err)
		}
	}
	old := map[netip.Addr]*bgppb.Neighbor{}
	for _, n := range s.cfg.GetNeighbors() {
		a, _ := netip.ParseAddr(n.GetAddress())
		old[a.Unmap()] = n
	}
	applied := &bgppb.Config{LocalAs: c.GetLocalAs(), RouterId: c.GetRouterId()}
	var errs []error
	want := map[netip.Addr]bool{}
	for _, n := range ns {
		want[n.addr] = true
		o, had := old[n.addr]
		if had && proto.Equal(o, n.pb) {
			applied.Neighbors = append(applied.Neighbors, o)
			continue
		}
		if had {
			if err := s.deletePeer(ctx, n.addr); err != nil {
				errs = append(errs, err)
				applied.Neighbors = append(applied.Neighbors, o)
				continue
			}
		}
		if err := s.addPeer(ctx, n, c.GetLocalAs()); err != nil {
			errs = append(errs, err)
			continue
		}
		applied.Neighbors = append(applied.Neighbors, n.pb)
	}
	for a, o := range old {
		if want[a] {
			continue
		}
		if err := s.deletePeer(ctx, a); err != nil {
			errs = append(errs, err)
			applied.Neighbors = append(applied.Neighbors, o)
		}
	}
	s.cfg = applied
	if err := errors.Join(errs...); err != nil {
		return nil, status.Errorf(codes.Internal, "BGP speaker: %v", err)
	}
	return &bgppb.Empty{}, nil
}

// restart replaces the running BgpServer (if any) with a new one for c, and announces the
// current routes on it; the caller holds op. Neighbors are added by the caller.
func (s *Speaker) restart(ctx context.Context, c *bgppb.Config, port int32) error {
	s.stopServer()
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelDebug) // the handler picks what it needs (logHandler.Handle)
	srv := server.NewBgpServer(server.LoggerOption(slog.New(&logHandler{s: s}), lvl))
	go srv.Serve()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: c.GetLocalAs(), RouterId: c.GetRouterId(), ListenPort: port,
	}}); err != nil {
		srv.Stop()
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent},
		server.WatchPeer()); err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("watch peer events: %w", err)
	}
	s.srv, s.stopSrv, s.port = srv, cancel, port
	s.log.Info("BGP started", "local_as", c.GetLocalAs(), "router_id", c.GetRouterId(), "listen_port", port)
	s.cfg = &bgppb.Config{LocalAs: c.GetLocalAs(), RouterId: c.GetRouterId()}
	if len(s.routes) > 0 {
		paths := make([]*apiutil.Path, 0, len(s.routes))
		for _, r := range s.routes {
			paths = append(paths, r.path)
		}
		if _, err := srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
			return fmt.Errorf("announce %d routes: %w", len(paths), err)
		}
	}
	return nil
}

// stopServer ends the running BgpServer, which closes its sessions with a Cease; the caller
// holds op.
func (s *Speaker) stopServer() {
	if s.srv == nil {
		return
	}
	s.stopSrv()
	s.srv.Stop()
	s.srv, s.stopSrv, s.cfg = nil, nil, nil
	s.mu.Lock()
	clear(s.peers)
	s.mu.Unlock()
}

func (s *Speaker) addPeer(ctx context.Context, n neighbor, localAS uint32) error {
	hold := uint64(n.pb.GetHoldTimeSec())
	if hold == 0 {
		hold = defaultHoldTime
	}
	retry := uint64(n.pb.GetConnectRetrySec())
	if retry == 0 {
		retry = defaultConnectRetry
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.addr.Is6() {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.addr.String(),
			PeerAsn:         n.pb.GetRemoteAs(),
			AuthPassword:    n.pb.GetPassword(),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: retry,
		}},
		Transport: &api.Transport{PassiveMode: n.pb.GetPassive()},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
	}
	if ttl := n.pb.GetMultihopTtl(); ttl > 1 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: ttl}
	}
	if n.pb.GetBfd() {
		p.Bfd = &api.BfdPeerConfig{Enabled: true}
	}
	// Tracked before GoBGP knows the peer, so that its first events find it.
	s.mu.Lock()
	s.peers[n.addr] = &peer{as: n.pb.GetRemoteAs(), local: localAS, state: "idle", since: time.Now(), bfd: n.pb.GetBfd(), md5: n.pb.GetPassword() != ""}
	s.mu.Unlock()
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		s.mu.Lock()
		delete(s.peers, n.addr)
		s.mu.Unlock()
		return fmt.Errorf("add neighbor %s (AS %d): %w", n.addr, n.pb.GetRemoteAs(), err)
	}
	s.log.Info("BGP neighbor added", "neighbor", n.addr, "remote_as", n.pb.GetRemoteAs(), "passive", n.pb.GetPassive())
	return nil
}

func (s *Speaker) deletePeer(ctx context.Context, a netip.Addr) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
		return fmt.Errorf("remove neighbor %s: %w", a, err)
	}
	s.mu.Lock()
	delete(s.peers, a)
	s.mu.Unlock()
	s.log.Info("BGP neighbor removed", "neighbor", a)
	return nil
}

// SetRoutes makes the announced set rs: new and changed routes are announced, routes no
// longer in rs withdrawn. A set with a bad route is refused whole, before anything changes.
// Routes are kept without a running BGP too, and announced when Configure starts it.
func (s *Speaker) SetRoutes(ctx context.Context, rs *bgppb.Routes) (*bgppb.Empty, error) {
	want := make(map[netip.Prefix]*route, len(rs.GetRoutes()))
	for _, r := range rs.GetRoutes() {
		rt, err := newRoute(r)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "BGP routes: %v", err)
		}
		if prev, dup := want[rt.prefix]; dup {
			return nil, status.Errorf(codes.InvalidArgument, "BGP routes: route %s given twice (owners %q and %q)", rt.prefix, prev.pb.GetOwner(), r.GetOwner())
		}
		want[rt.prefix] = rt
	}
	s.op.Lock()
	defer s.op.Unlock()
	if s.stopped {
		return nil, status.Error(codes.FailedPrecondition, "BGP speaker: stopped")
	}
	var add, del []*apiutil.Path
	for p, rt := range want {
		if old, ok := s.routes[p]; !ok || !sameAnnouncement(old.pb, rt.pb) {
			add = append(add, rt.path)
		}
	}
	for p, old := range s.routes {
		if _, ok := want[p]; !ok {
			del = append(del, old.withdrawal())
		}
	}
	if s.srv != nil {
		if len(add) > 0 {
			if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
				// What was announced is uncertain now: the next SetRoutes sends it all again.
				s.routes = map[netip.Prefix]*route{}
				return nil, status.Errorf(codes.Internal, "BGP speaker: announce %d routes: %v", len(add), err)
			}
		}
		if len(del) > 0 {
			if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
				s.routes = map[netip.Prefix]*route{}
				return nil, status.Errorf(codes.Internal, "BGP speaker: withdraw %d routes: %v", len(del), err)
			}
		}
	}
	if len(add)+len(del) > 0 {
		s.log.Info("BGP routes set", "announce", len(add), "withdraw", len(del), "total", len(want))
	}
	s.routes = want
	return &bgppb.Empty{}, nil
}

// Status reports each neighbor's session and the announced routes.
func (s *Speaker) Status(ctx context.Context, _ *bgppb.Empty) (*bgppb.SpeakerStatus, error) {
	s.op.Lock()
	defer s.op.Unlock()
	st := &bgppb.SpeakerStatus{LocalAs: s.cfg.GetLocalAs(), RouterId: s.cfg.GetRouterId()}
	for _, p := range slices.SortedFunc(maps.Keys(s.routes), netip.Prefix.Compare) {
		st.Announced = append(st.Announced, proto.Clone(s.routes[p].pb).(*bgppb.Route))
	}
	if s.srv == nil {
		return st, nil
	}
	type counts struct {
		sent, recv uint64
		bfd        string
	}
	live := map[netip.Addr]counts{}
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		var c counts
		for _, af := range p.GetAfiSafis() {
			c.sent += af.GetState().GetAdvertised()
			c.recv += af.GetState().GetReceived()
		}
		if b := p.GetState().GetBfdState(); b != nil && p.GetBfd().GetEnabled() {
			c.bfd = bfdStateName(b.GetSessionState())
		}
		live[a.Unmap()] = c
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "BGP speaker: list neighbors: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, p := range s.peers {
		c := live[a]
		ps := &bgppb.PeerStatus{
			Address: a.String(), RemoteAs: p.as, State: p.state, SinceUnixNano: p.since.UnixNano(),
			Flaps: p.flaps, LastError: p.lastErr,
			RoutesSent: uint32(min(c.sent, 1<<32-1)), RoutesReceived: uint32(min(c.recv, 1<<32-1)),
			BfdState: c.bfd,
		}
		if p.bfd && ps.BfdState == "" {
			ps.BfdState = "down"
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool {
		return netip.MustParseAddr(st.Peers[i].Address).Less(netip.MustParseAddr(st.Peers[j].Address))
	})
	return st, nil
}

func bfdStateName(s api.BfdSessionState) string {
	switch s {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admin-down"
	default:
		return "down"
	}
}

// Stop closes every session (with a Cease, so that neighbors withdraw the routes at once)
// and refuses calls from then on. Summaries the log limit still holds are written.
func (s *Speaker) Stop() {
	s.op.Lock()
	defer s.op.Unlock()
	s.stopped = true
	s.stopServer()
	s.limit.Flush()
}
