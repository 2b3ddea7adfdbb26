package bgp

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// Instance is what Routes needs of one vrrp_instance that announces: its configuration and
// its state as the engine last published it.
type Instance struct {
	Name              string
	Announce          *config.Announce
	VIPs              []netip.Addr
	State             string // fsm state name: MASTER, BACKUP, FAULT, INIT
	EffectivePriority int
	Demoted           bool
}

// Announced says whether an instance in this state announces its addresses.
func (in Instance) Announced() bool {
	switch in.Announce.Mode {
	case config.AnnounceAnycast:
		// Every healthy node announces: FAULT (a failing check of weight 0, a tracked
		// interface down ...) withdraws, and so does a demote, the operator's way of draining
		// a node.
		return !in.Demoted && (in.State == fsm.Master.String() || in.State == fsm.Backup.String())
	default:
		// Active/backup: the route follows the addresses, which only a master holds.
		return in.State == fsm.Master.String()
	}
}

// Routes is the whole set of routes to announce for these instances, in address order: a /32
// or /128 for each virtual address of an instance that announces, next hop self. An address
// that two instances announce is announced once, by the first in name order, so that the set
// does not depend on the order the engine lists them.
func Routes(ins []Instance) []*bgppb.Route {
	ins = slices.Clone(ins)
	slices.SortFunc(ins, func(a, b Instance) int { return cmp.Compare(a.Name, b.Name) })
	byAddr := map[netip.Addr]*bgppb.Route{}
	for _, in := range ins {
		if in.Announce == nil || !in.Announced() {
			continue
		}
		for _, a := range in.VIPs {
			if a = a.Unmap(); byAddr[a] == nil {
				byAddr[a] = route(in, a)
			}
		}
	}
	var out []*bgppb.Route
	for _, a := range slices.SortedFunc(maps.Keys(byAddr), netip.Addr.Compare) {
		out = append(out, byAddr[a])
	}
	return out
}

func route(in Instance, a netip.Addr) *bgppb.Route {
	r := &bgppb.Route{Prefix: netip.PrefixFrom(a, a.BitLen()).String(), Owner: in.Name,
		Communities: slices.Clone(in.Announce.Communities)}
	an := in.Announce
	switch {
	case an.MEDFromPriority:
		// Lower MED is preferred: the node with the highest effective priority wins.
		r.HasMed, r.Med = true, uint32(255-clampPriority(in.EffectivePriority))
	case an.MED >= 0:
		r.HasMed, r.Med = true, uint32(an.MED)
	}
	switch {
	case an.LocalPrefFromPriority:
		r.HasLocalPref, r.LocalPref = true, uint32(clampPriority(in.EffectivePriority))
	case an.LocalPref >= 0:
		r.HasLocalPref, r.LocalPref = true, uint32(an.LocalPref)
	}
	return r
}

func clampPriority(p int) int { return min(max(p, 0), 255) }
