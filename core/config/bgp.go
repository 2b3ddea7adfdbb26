package config

import (
	"net/netip"
	"slices"
	"time"
)

// BGP is global_defs' bgp block: the BGP speaker that announces virtual addresses to
// routers (docs/bgp.md). It runs only when the block is present.
type BGP struct {
	LocalAS  uint32
	RouterID netip.Addr // IPv4; default: global router_id when it is an IPv4 address
	// GracefulShutdown is how long, at stop (and on demote), routes carry the
	// GRACEFUL_SHUTDOWN community (RFC 8326) before they are withdrawn, so that routers
	// move traffic away first; graceful_shutdown SECONDS, 0 to MaxGracefulShutdown, default 3;
	// 0 withdraws at once.
	GracefulShutdown time.Duration
	// Neighbors are the routers announced to, in the order written.
	Neighbors []*BGPNeighbor
	Pos       Pos
	// Places records where each keyword of the block was written, for messages.
	Places map[string]Pos `json:"-"`
}

// MaxGracefulShutdown bounds graceful_shutdown: a stop waits for it before VRRP resigns, and
// the whole stop must fit in vigil.service's TimeoutStopSec (30 s; core/supervisor's
// TestStopFitsTheUnit adds it up).
const MaxGracefulShutdown = 10 * time.Second

// BGPNeighbor is one neighbor ADDR { ... } of the bgp block.
type BGPNeighbor struct {
	Address  netip.Addr
	RemoteAS uint32
	Password string        // TCP MD5 (RFC 2385); empty for none
	HoldTime time.Duration // 3 s to 65535 s, default 90 s; keepalives every third of it
	// ConnectRetry is the time between connection attempts (default 5 s).
	ConnectRetry time.Duration
	// Multihop is ebgp_multihop TTL: 0 for a directly connected neighbor.
	Multihop int
	BFD      bool // single-hop BFD (RFC 5881) for fast failure detection
	Pos      Pos
	Places   map[string]Pos `json:"-"`
}

// AnnounceMode says when an instance's virtual addresses are announced.
type AnnounceMode string

const (
	// AnnounceMaster announces while the instance is MASTER and withdraws on leaving it
	// (active/backup).
	AnnounceMaster AnnounceMode = "master"
	// AnnounceAnycast announces while the instance is MASTER or BACKUP and not demoted
	// (FAULT, INIT and a demote withdraw), whatever node is master: every healthy node
	// announces, and the routers balance with ECMP (core/bgp's Instance.Announced).
	AnnounceAnycast AnnounceMode = "anycast"
)

// Announce is a vrrp_instance's announce block: its virtual addresses as BGP routes (a /32
// or /128 each, next hop self).
type Announce struct {
	Mode AnnounceMode
	// MEDFromPriority sets the MED to 255 minus the effective priority, so that routers
	// prefer the healthiest node; otherwise MED is sent when MED is set (>= 0).
	MEDFromPriority bool
	MED             int64 // -1: none
	// LocalPrefFromPriority sets LOCAL_PREF (iBGP) to the effective priority; otherwise
	// LocalPref is sent when set (>= 0).
	LocalPrefFromPriority bool
	LocalPref             int64 // -1: none
	// Communities are added to every route of the instance ("64512:100").
	Communities []string
	Pos         Pos
	Places      map[string]Pos `json:"-"`
}

// AnnouncedAddrs are the addresses an instance with an announce block announces: those of
// virtual_ipaddress and of virtual_ipaddress_excluded, which move with the instance too and
// are how one instance carries both families.
func (vi *VRRPInstance) AnnouncedAddrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range slices.Concat(vi.VIPs, vi.ExcludedVIPs) {
		out = append(out, a.Prefix.Addr())
	}
	return out
}
