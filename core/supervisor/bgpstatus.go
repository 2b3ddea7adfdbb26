package supervisor

import (
	"time"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// BGPStatus is the BGP speaker's part of `vigil status`: its process, its sessions and the
// routes it announces.
type BGPStatus struct {
	State     string    `json:"state"` // starting, running, restarting
	PID       int       `json:"pid,omitempty"`
	Started   time.Time `json:"started,omitzero"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	// Unanswered says why the sessions and routes are missing.
	Unanswered string     `json:"unanswered,omitempty"`
	LocalAS    uint32     `json:"local_as,omitempty"`
	RouterID   string     `json:"router_id,omitempty"`
	Peers      []BGPPeer  `json:"peers"`
	Routes     []BGPRoute `json:"routes"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Address        string    `json:"address"`
	RemoteAS       uint32    `json:"remote_as"`
	State          string    `json:"state"`
	Since          time.Time `json:"since,omitzero"`
	Flaps          uint32    `json:"flaps"`
	LastError      string    `json:"last_error,omitempty"`
	RoutesSent     uint32    `json:"routes_sent"`
	RoutesReceived uint32    `json:"routes_received"`
	BFD            string    `json:"bfd,omitempty"`
}

// BGPRoute is one announced route.
type BGPRoute struct {
	Prefix           string   `json:"prefix"`
	Instance         string   `json:"instance"`
	GracefulShutdown bool     `json:"graceful_shutdown,omitempty"`
	MED              *uint32  `json:"med,omitempty"`
	LocalPref        *uint32  `json:"local_pref,omitempty"`
	Communities      []string `json:"communities,omitempty"`
}

func bgpStatusOf(b *childpb.BGPStatus) *BGPStatus {
	if b == nil {
		return nil
	}
	out := &BGPStatus{State: b.State, PID: int(b.Pid), Restarts: int(b.Restarts), LastError: b.LastError,
		Unanswered: b.Unanswered, LocalAS: b.LocalAs, RouterID: b.RouterId, Peers: []BGPPeer{}, Routes: []BGPRoute{}}
	if b.StartedUnixNano != 0 {
		out.Started = time.Unix(0, b.StartedUnixNano)
	}
	for _, p := range b.Peers {
		bp := BGPPeer{Address: p.Address, RemoteAS: p.RemoteAs, State: p.State, Flaps: p.Flaps, LastError: p.LastError,
			RoutesSent: p.RoutesSent, RoutesReceived: p.RoutesReceived, BFD: p.BfdState}
		if p.SinceUnixNano != 0 {
			bp.Since = time.Unix(0, p.SinceUnixNano)
		}
		out.Peers = append(out.Peers, bp)
	}
	for _, r := range b.Routes {
		br := BGPRoute{Prefix: r.Prefix, Instance: r.Owner, GracefulShutdown: r.GracefulShutdown, Communities: r.Communities}
		if r.HasMed {
			br.MED = &r.Med
		}
		if r.HasLocalPref {
			br.LocalPref = &r.LocalPref
		}
		out.Routes = append(out.Routes, br)
	}
	return out
}
