package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// BGPRoute is one prefix of bgpd's table with the paths bgpd knows for it.
type BGPRoute struct {
	Prefix netip.Prefix
	Paths  []BGPPath
}

// BGPPath is one path of a BGPRoute.
type BGPPath struct {
	Peer      netip.Addr   // the neighbor it came from; invalid for a local network
	NextHops  []netip.Addr // for IPv6, the global next hop first, then the link-local one
	ASPath    string       // as bgpd prints it: "64513 64514", "" when local
	MED       uint32
	HasMED    bool
	LocalPref uint32
	// HasLocalPref is false when the path carries no LOCAL_PREF (one learnt over eBGP):
	// bgpd then uses its default, 100.
	HasLocalPref bool
	Communities  []string // "64512:100", ...; filled by BGPRoute only (bgpd's table has none)
	Valid        bool
	Best         bool
	// Multipath marks the other paths installed beside the best one (ECMP); bgpd does not
	// mark the best one.
	Multipath bool
}

// BestPath returns the route's best path and whether it has one.
func (r BGPRoute) BestPath() (BGPPath, bool) {
	for _, p := range r.Paths {
		if p.Best {
			return p, true
		}
	}
	return BGPPath{}, false
}

// frrBGPTable is the part of `show bgp ipv4 unicast json` that BGPRoutes reads.
type frrBGPTable struct {
	Routes map[string][]struct {
		Valid     bool   `json:"valid"`
		Best      bool   `json:"bestpath"`
		Multipath bool   `json:"multipath"`
		Metric    *int64 `json:"metric"`
		LocPrf    *int64 `json:"locPrf"`
		PeerID    string `json:"peerId"`
		Path      string `json:"path"`
		NextHops  []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
	} `json:"routes"`
}

// frrBGPPrefix is the part of `show bgp ipv4 unicast PREFIX json` that BGPRoute reads.
type frrBGPPrefix struct {
	Prefix string `json:"prefix"`
	Paths  []struct {
		ASPath struct {
			String string `json:"string"`
		} `json:"aspath"`
		Metric    *int64 `json:"metric"`
		LocalPref *int64 `json:"locPrf"` // bgpd 8.4 names it so here too
		Valid     bool   `json:"valid"`
		Multipath bool   `json:"multipath"`
		Best      struct {
			Overall bool `json:"overall"`
		} `json:"bestpath"`
		Community struct {
			List []string `json:"list"`
		} `json:"community"`
		NextHops []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
		Peer struct {
			PeerID string `json:"peerId"`
		} `json:"peer"`
	} `json:"paths"`
}

func bgpFamily(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// parseAddrs parses the addresses FRR prints, skipping what is not one ("0.0.0.0" stays:
// it is how bgpd shows a local network's next hop).
func parseAddrs(ss []string) []netip.Addr {
	var as []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			as = append(as, a)
		}
	}
	return as
}

func u32(p *int64) (uint32, bool) {
	if p == nil {
		return 0, false
	}
	return uint32(*p), true
}

// BGPRoutes returns bgpd's IPv4 (or IPv6) unicast table, `show bgp ipv4 unicast json`, by
// prefix order (netip.Prefix.Compare). The paths carry no communities: BGPRoute has them.
func (f *FRR) BGPRoutes(ctx context.Context, v6 bool) ([]BGPRoute, error) {
	var t frrBGPTable
	if err := f.vtyshJSON(ctx, "show bgp "+bgpFamily(v6)+" unicast json", &t); err != nil {
		return nil, err
	}
	var rs []BGPRoute
	for pfx, paths := range t.Routes {
		p, err := netip.ParsePrefix(pfx)
		if err != nil {
			return nil, fmt.Errorf("bgpd's table on %s: prefix %q: %w", f.nd.Name, pfx, err)
		}
		r := BGPRoute{Prefix: p}
		for _, fp := range paths {
			bp := BGPPath{ASPath: fp.Path, Valid: fp.Valid, Best: fp.Best, Multipath: fp.Multipath}
			bp.Peer, _ = netip.ParseAddr(fp.PeerID)
			bp.MED, bp.HasMED = u32(fp.Metric)
			bp.LocalPref, bp.HasLocalPref = u32(fp.LocPrf)
			for _, nh := range fp.NextHops {
				bp.NextHops = append(bp.NextHops, parseAddrs([]string{nh.IP})...)
			}
			r.Paths = append(r.Paths, bp)
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b BGPRoute) int { return a.Prefix.Compare(b.Prefix) })
	return rs, nil
}

// BGPRoute returns what bgpd knows of one prefix, communities included
// (`show bgp ipv4 unicast PREFIX json`), and false when bgpd has no path for it.
func (f *FRR) BGPRoute(ctx context.Context, prefix netip.Prefix) (BGPRoute, bool, error) {
	var fr frrBGPPrefix
	cmd := fmt.Sprintf("show bgp %s unicast %s json", bgpFamily(prefix.Addr().Is6()), prefix)
	if err := f.vtyshJSON(ctx, cmd, &fr); err != nil {
		return BGPRoute{}, false, err
	}
	if len(fr.Paths) == 0 {
		return BGPRoute{}, false, nil
	}
	r := BGPRoute{Prefix: prefix}
	for _, fp := range fr.Paths {
		bp := BGPPath{ASPath: fp.ASPath.String, Valid: fp.Valid, Best: fp.Best.Overall, Multipath: fp.Multipath,
			Communities: fp.Community.List}
		bp.Peer, _ = netip.ParseAddr(fp.Peer.PeerID)
		bp.MED, bp.HasMED = u32(fp.Metric)
		bp.LocalPref, bp.HasLocalPref = u32(fp.LocalPref)
		for _, nh := range fp.NextHops {
			bp.NextHops = append(bp.NextHops, parseAddrs([]string{nh.IP})...)
		}
		r.Paths = append(r.Paths, bp)
	}
	return r, true, nil
}

// ZebraRoute is one route of zebra's RIB, as `show ip route json` tells it.
type ZebraRoute struct {
	Prefix    netip.Prefix
	Protocol  string // "bgp", "connected", "kernel", "static", ...
	Selected  bool   // zebra's choice among the routes of the prefix
	Installed bool   // in the kernel's table
	Distance  int
	Metric    uint32
	NextHops  []ZebraNextHop
}

// ZebraNextHop is one next hop of a ZebraRoute: two active ones make an ECMP route.
type ZebraNextHop struct {
	IP        netip.Addr // invalid for a connected route
	Interface string
	Active    bool
	FIB       bool // installed in the kernel
}

// ActiveNextHops returns the addresses of the route's active next hops.
func (r ZebraRoute) ActiveNextHops() []netip.Addr {
	var as []netip.Addr
	for _, nh := range r.NextHops {
		if nh.Active && nh.IP.IsValid() {
			as = append(as, nh.IP)
		}
	}
	return as
}

type frrZebraRoute struct {
	Prefix    string `json:"prefix"`
	Protocol  string `json:"protocol"`
	Selected  bool   `json:"selected"`
	Installed bool   `json:"installed"`
	Distance  int    `json:"distance"`
	Metric    int64  `json:"metric"`
	NextHops  []struct {
		IP        string `json:"ip"`
		Interface string `json:"interfaceName"`
		Active    bool   `json:"active"`
		FIB       bool   `json:"fib"`
	} `json:"nexthops"`
}

// ZebraRoutes returns zebra's IPv4 (or IPv6) routes, `show ip route json` (`show ipv6 route
// json`), by prefix order, a prefix's routes in zebra's order.
func (f *FRR) ZebraRoutes(ctx context.Context, v6 bool) ([]ZebraRoute, error) {
	cmd := "show ip route json"
	if v6 {
		cmd = "show ipv6 route json"
	}
	var m map[string][]frrZebraRoute
	if err := f.vtyshJSON(ctx, cmd, &m); err != nil {
		return nil, err
	}
	var rs []ZebraRoute
	for pfx, frs := range m {
		p, err := netip.ParsePrefix(pfx)
		if err != nil {
			return nil, fmt.Errorf("zebra's routes on %s: prefix %q: %w", f.nd.Name, pfx, err)
		}
		for _, fr := range frs {
			r := ZebraRoute{Prefix: p, Protocol: fr.Protocol, Selected: fr.Selected, Installed: fr.Installed,
				Distance: fr.Distance, Metric: uint32(fr.Metric)}
			for _, nh := range fr.NextHops {
				zn := ZebraNextHop{Interface: nh.Interface, Active: nh.Active, FIB: nh.FIB}
				zn.IP, _ = netip.ParseAddr(nh.IP)
				r.NextHops = append(r.NextHops, zn)
			}
			rs = append(rs, r)
		}
	}
	slices.SortStableFunc(rs, func(a, b ZebraRoute) int { return a.Prefix.Compare(b.Prefix) })
	return rs, nil
}

// BGPNeighbor is one of bgpd's neighbors, as `show bgp neighbors json` tells it.
type BGPNeighbor struct {
	Addr     netip.Addr
	RemoteAS uint32
	LocalAS  uint32
	State    string // "Established", "Active", "Connect", "Idle", ...
	// LastResetDueTo is why the session last went down ("" before it ever did), as
	// bgpd words it: "BFD down received", "Notification received (Cease/...)", ...
	LastResetDueTo     string
	ConnectionsDropped int
	BFDStatus          string // "Up", "Down", "Unknown"; "" without bfd for the neighbor
}

type frrBGPNeighbor struct {
	RemoteAS           int64  `json:"remoteAs"`
	LocalAS            int64  `json:"localAs"`
	State              string `json:"bgpState"`
	LastResetDueTo     string `json:"lastResetDueTo"`
	ConnectionsDropped int    `json:"connectionsDropped"`
	BFD                *struct {
		Status string `json:"status"`
	} `json:"peerBfdInfo"`
}

// BGPNeighbors returns bgpd's neighbors by address order.
func (f *FRR) BGPNeighbors(ctx context.Context) ([]BGPNeighbor, error) {
	var m map[string]frrBGPNeighbor
	if err := f.vtyshJSON(ctx, "show bgp neighbors json", &m); err != nil {
		return nil, err
	}
	var ns []BGPNeighbor
	for addr, fn := range m {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			// An interface neighbor (neighbor eth0 interface) is named by its interface.
			continue
		}
		n := BGPNeighbor{Addr: a, RemoteAS: uint32(fn.RemoteAS), LocalAS: uint32(fn.LocalAS), State: fn.State,
			LastResetDueTo: fn.LastResetDueTo, ConnectionsDropped: fn.ConnectionsDropped}
		if fn.BFD != nil {
			n.BFDStatus = fn.BFD.Status
		}
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Addr.Less(ns[j].Addr) })
	return ns, nil
}

// BFDPeer is one of bfdd's sessions, as `show bfd peers json` tells it.
type BFDPeer struct {
	Peer             netip.Addr
	Local            netip.Addr
	Interface        string
	Multihop         bool
	Status           string // "up", "down", "init", "shutdown"
	Diagnostic       string // why it last went down, "ok" when it did not
	RemoteDiagnostic string
}

type frrBFDPeer struct {
	Peer             string `json:"peer"`
	Local            string `json:"local"`
	Interface        string `json:"interface"`
	Multihop         bool   `json:"multihop"`
	Status           string `json:"status"`
	Diagnostic       string `json:"diagnostic"`
	RemoteDiagnostic string `json:"remote-diagnostic"`
}

// BFDPeers returns bfdd's sessions by peer address order; bfdd must run (StartFRRDaemons
// with FRRDaemon{Name: "bfdd"}).
func (f *FRR) BFDPeers(ctx context.Context) ([]BFDPeer, error) {
	if !f.runs("bfdd") {
		return nil, fmt.Errorf("BFD peers on %s: bfdd does not run: start it with FRRDaemon{Name: \"bfdd\"}", f.nd.Name)
	}
	var fps []frrBFDPeer
	if err := f.vtyshJSON(ctx, "show bfd peers json", &fps); err != nil {
		return nil, err
	}
	var ps []BFDPeer
	for _, fp := range fps {
		p := BFDPeer{Interface: fp.Interface, Multihop: fp.Multihop, Status: fp.Status,
			Diagnostic: fp.Diagnostic, RemoteDiagnostic: fp.RemoteDiagnostic}
		p.Peer, _ = netip.ParseAddr(fp.Peer)
		p.Local, _ = netip.ParseAddr(fp.Local)
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Peer.Less(ps[j].Peer) })
	return ps, nil
}

func (f *FRR) runs(name string) bool {
	for _, d := range f.daemons {
		if d.name == name {
			return true
		}
	}
	return false
}

// String returns the route as `prefix via a, b`, for messages.
func (r ZebraRoute) String() string {
	var nhs []string
	for _, a := range r.ActiveNextHops() {
		nhs = append(nhs, a.String())
	}
	return fmt.Sprintf("%s %s via %s", r.Prefix, r.Protocol, strings.Join(nhs, ", "))
}
