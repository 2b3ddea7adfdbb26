// Package lvs decides what keepalived's checker process decides: from the configured
// virtual servers, the states of their real servers' checkers and the states of the VRRP
// instances, which IPVS services and destinations should exist, with which weights, and
// which notifications (notify_up/notify_down, quorum_up/quorum_down, notify FIFO lines) are
// due. It is the one owner of keepalived's real-server rules: all checkers up, alpha,
// inhibit_on_failure, dynamic weights, quorum with hysteresis and the sorry server,
// ha_suspend and the role of the sync daemon.
//
// It does no I/O and has no goroutines: a Director is fed events (Check, InstanceState,
// Reload, Stop) one at a time by its owner, and answers with events to report; Desired is the
// table to program at any moment. The same inputs always give the same outputs.
package lvs

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/ipvs"
)

// Dest is where a real or sorry server receives traffic, as configured.
type Dest struct {
	Addr netip.Addr
	// Port is the server's port: for a service that is not a group's, the one IPVS uses
	// (keepalived gives DR and TUN servers the service's); in a group, as written.
	Port   uint16
	Method ipvs.Method
	// TunnelType, TunnelPort and TunnelFlags are a TUN server's encapsulation.
	TunnelType  ipvs.TunnelType
	TunnelPort  uint16
	TunnelFlags ipvs.TunnelFlags
	// UThreshold and LThreshold are the connection limits (uthreshold, lthreshold).
	UThreshold, LThreshold uint32
}

// HostPort is the destination as ADDR:PORT (IPv6 in brackets).
func (d Dest) HostPort() string {
	return net.JoinHostPort(d.Addr.String(), strconv.Itoa(int(d.Port)))
}

// Real is one real_server.
type Real struct {
	Dest
	// Weight is the configured weight (keepalived's iweight), 0 .. 2^31-1.
	Weight int64
	// Inhibit is inhibit_on_failure: a failed server stays in the table at weight 0.
	Inhibit bool
	// Checkers are its health checkers by name, as core/checksched names them (VS/RS/TYPE).
	Checkers []Checker
	// NotifyUp and NotifyDown are its notify_up and notify_down scripts, nil for none.
	NotifyUp, NotifyDown *config.Script
	// SMTPAlert: its changes are mailed (smtp_alert, resolved as keepalived does). Core's
	// notify path sends the mail; the Director does not read it.
	SMTPAlert bool
}

// Checker is one health checker of a real server.
type Checker struct {
	Name string
	// Alpha starts the checker failed until its first success.
	Alpha bool
}

// Sorry is a virtual server's sorry_server.
type Sorry struct {
	Dest
	// Inhibit is sorry_server_inhibit: the sorry server stays in the table at weight 0
	// while it is not needed.
	Inhibit bool
}

// Service is one virtual_server block: one IPVS service, or one per concrete key of its
// virtual_server_group, all with the same destinations.
type Service struct {
	// ID identifies the virtual server across reloads, as keepalived matches them: the
	// protocol, address and port; the fwmark and family; or the group's name and the
	// virtual server's rank among those using the group.
	ID string
	// Name is the prefix of its checkers' names (core/checksched: "192.0.2.100:80",
	// "fwmark 1", "group NAME").
	Name string
	// FIFO is the virtual server as keepalived's notify FIFO lines write it
	// ("[192.0.2.100]:tcp:80", "FWM 1", "[NAME]:0").
	FIFO string
	// Protocol is the service's protocol as the FIFO lines write it: "tcp", "udp", "sctp"
	// or "none" (fwmark).
	Protocol string
	// Keys are the IPVS services: one, or the expansion of the group (address ranges one
	// address at a time, then fwmarks).
	Keys []ipvs.ServiceKey

	Scheduler string
	// Flags are the scheduler and one-packet flags; the persistent flag comes with
	// Timeout.
	Flags ipvs.Flags
	// Timeout is persistence_timeout in seconds; 0 is not persistent.
	Timeout uint32
	// Netmask is persistence_granularity as a prefix length; 0 for each address on its
	// own.
	Netmask uint8
	// PE is the persistence engine (persistence_engine), "" for none.
	PE string

	// Quorum and Hysteresis: below Quorum-Hysteresis of live weight the quorum is lost,
	// at Quorum+Hysteresis it is regained.
	Quorum, Hysteresis int64
	// QuorumUp and QuorumDown are its quorum_up and quorum_down scripts, nil for none.
	QuorumUp, QuorumDown *config.Script
	// SMTPAlert: its quorum changes are mailed (smtp_alert, resolved as keepalived does).
	SMTPAlert bool
	// Omega runs the down notifications on shutdown.
	Omega bool
	// HASuspend suspends the checkers while none of the service's addresses is up here.
	HASuspend bool
	Sorry     *Sorry
	Reals     []Real
}

// SyncDaemon is global_defs' lvs_sync_daemon.
type SyncDaemon struct {
	Interface string
	// Instance is the VRRP instance whose state it follows; "" runs master and backup
	// together, as keepalived does without one.
	Instance string
	SyncID   uint8
	MaxLen   uint16
	Port     uint16
	TTL      uint8
	Group    netip.Addr
}

// Config is what a Director works from.
type Config struct {
	Services []Service
	// Instances are the addresses each VRRP instance holds while master (virtual_ipaddress
	// and virtual_ipaddress_excluded), for ha_suspend: those of ha_suspend services suffice.
	Instances map[string][]netip.Addr
	// Static are addresses always present (static_ipaddress), for ha_suspend.
	Static []netip.Addr
	// SyncDaemon is nil when lvs_sync_daemon is not set.
	SyncDaemon *SyncDaemon
	// InitNotifies is rs_init_notifies: real servers that start up are announced.
	InitNotifies bool
	// FlushOnStop is lvs_flush_on_stop: "" (each server and service removed on its own),
	// "VS" or "full". With a flush keepalived reports no real server on stop.
	FlushOnStop string
}
