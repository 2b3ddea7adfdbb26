package speaker

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

// gracefulShutdown is the GRACEFUL_SHUTDOWN well-known community, 65535:0 (RFC 8326).
const gracefulShutdown = 0xFFFF0000

// route is one prefix as announced: what the vrrp process asked for and the path handed to
// GoBGP for it.
type route struct {
	prefix netip.Prefix
	pb     *bgppb.Route
	path   *apiutil.Path
}

// sameAnnouncement says whether a and b announce the same thing: the owner is only a label
// for status and logs, so a route that changes owner alone is not sent again.
func sameAnnouncement(a, b *bgppb.Route) bool {
	x, y := proto.Clone(a).(*bgppb.Route), proto.Clone(b).(*bgppb.Route)
	x.Owner, y.Owner = "", ""
	return proto.Equal(x, y)
}

// newRoute checks r and builds its path. The next hop is left unspecified (0.0.0.0 or ::):
// GoBGP then puts in the address of the session each neighbor is reached over, which is
// next hop self.
func newRoute(r *bgppb.Route) (*route, error) {
	pfx, err := netip.ParsePrefix(r.GetPrefix())
	if err != nil {
		return nil, fmt.Errorf("route %q: not a prefix: %w", r.GetPrefix(), err)
	}
	if pfx != pfx.Masked() {
		return nil, fmt.Errorf("route %q: host bits set; the prefix is %s", r.GetPrefix(), pfx.Masked())
	}
	comms := make([]uint32, 0, len(r.GetCommunities())+1)
	for _, c := range r.GetCommunities() {
		v, err := parseCommunity(c)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", pfx, err)
		}
		comms = appendUnique(comms, v)
	}
	if r.GetGracefulShutdown() {
		comms = appendUnique(comms, gracefulShutdown)
	}
	nlri, err := bgp.NewIPAddrPrefix(pfx)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", pfx, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	family := bgp.RF_IPv4_UC
	if pfx.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("route %s: next hop: %w", pfx, err)
		}
		attrs = append(attrs, nh)
	} else {
		family = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("route %s: next hop: %w", pfx, err)
		}
		attrs = append(attrs, mp)
	}
	if r.GetHasMed() {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(r.GetMed()))
	}
	if r.GetHasLocalPref() {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(r.GetLocalPref()))
	}
	if len(comms) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(comms))
	}
	pb := proto.Clone(r).(*bgppb.Route)
	pb.Prefix = pfx.String()
	return &route{prefix: pfx, pb: pb, path: &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}}, nil
}

// parseCommunity reads a standard community, "AS:VALUE" with both parts 0..65535.
func parseCommunity(s string) (uint32, error) {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: not AS:VALUE", s)
	}
	h, err := strconv.ParseUint(hi, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: AS part: want 0..65535", s)
	}
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: value part: want 0..65535", s)
	}
	return uint32(h)<<16 | uint32(l), nil
}

func appendUnique(s []uint32, v uint32) []uint32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// withdrawal is the path that withdraws r.
func (r *route) withdrawal() *apiutil.Path {
	p := *r.path
	p.Withdrawal = true
	return &p
}
