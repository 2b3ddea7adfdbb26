package lvs

import (
	"slices"

	"github.com/vigil-ha/vigil/core/ipvs"
)

// ServiceStatus is one virtual server as vigil status shows it.
type ServiceStatus struct {
	ID, Name string
	Keys     []ipvs.ServiceKey
	QuorumUp bool
	// SorryIn: the sorry server is in the pool.
	SorryIn bool
	// Suspended: ha_suspend holds the checkers.
	Suspended bool
	// Live is the weight of the live real servers, which the quorum is measured by.
	Live, Quorum, Hysteresis int64
	Reals                    []RealStatus
	Sorry                    *Sorry
}

// RealStatus is one real server.
type RealStatus struct {
	Dest
	Up bool
	// Weight is its weight now (configured, moved by dynamic weights, within IPVS's
	// bounds); Configured the configured one.
	Weight, Configured int64
	// InTable: it has a destination in the table, at TableWeight.
	InTable     bool
	TableWeight int64
	Checkers    []CheckerStatus
}

// CheckerStatus is one checker.
type CheckerStatus struct {
	Name string
	Up   bool
	// HasRun: a result came since start (or since its real server was added). The check
	// process sends a checker's crossings of rise and fall only, so a checker still in the
	// state it started in (up; down with alpha) has none, however often it ran.
	HasRun bool
	// Weight is the dynamic weight it asked for with its last success, nil for none.
	Weight *int64
}

// Status describes every virtual server, in configuration order.
func (d *Director) Status() []ServiceStatus {
	var out []ServiceStatus
	for _, s := range d.svcs {
		ss := ServiceStatus{ID: s.spec.ID, Name: s.spec.Name, Keys: slices.Clone(s.spec.Keys),
			QuorumUp: s.quorumUp, SorryIn: s.sorryIn, Suspended: s.suspended(), Live: live(s),
			Quorum: s.spec.Quorum, Hysteresis: s.spec.Hysteresis, Sorry: s.spec.Sorry}
		for _, r := range s.reals {
			rs := RealStatus{Dest: r.spec.Dest, Up: r.alive, Weight: realWeight(effective(r)), Configured: r.spec.Weight}
			if w, ok := realEntry(s, r); ok && !d.stopped {
				rs.InTable, rs.TableWeight = true, realWeight(w)
			}
			for _, c := range r.checkers {
				cs := CheckerStatus{Name: c.spec.Name, Up: c.up, HasRun: c.hasRun}
				if c.dyn != nil {
					w := *c.dyn
					cs.Weight = &w
				}
				rs.Checkers = append(rs.Checkers, cs)
			}
			ss.Reals = append(ss.Reals, rs)
		}
		out = append(out, ss)
	}
	return out
}
