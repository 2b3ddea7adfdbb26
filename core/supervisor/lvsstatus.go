package supervisor

import (
	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// LVSStatus is the load balancer in the check process, for `vigil status`.
type LVSStatus struct {
	// Running: the kernel's IPVS is open and vigil programs it. Error says why not, or
	// what the kernel refused last.
	Running bool   `json:"running"`
	Error   string `json:"error,omitempty"`
	// SyncRole is the sync daemon's role the director wants (none, master, backup,
	// master+backup); SyncDaemons those the kernel runs.
	SyncRole       string                `json:"sync_role"`
	SyncDaemons    []SyncDaemonStatus    `json:"sync_daemons,omitempty"`
	VirtualServers []VirtualServerStatus `json:"virtual_servers"`
}

// SyncDaemonStatus is a sync daemon running in the kernel.
type SyncDaemonStatus struct {
	State     string `json:"state"`
	Interface string `json:"interface"`
	SyncID    uint32 `json:"sync_id"`
}

// VirtualServerStatus is one virtual_server.
type VirtualServerStatus struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// At is the virtual_server block's FILE:LINE.
	At string `json:"at,omitempty"`
	// Services are its IPVS services as ipvsadm -Ln writes them (a group's: several).
	Services   []string `json:"services"`
	QuorumUp   bool     `json:"quorum_up"`
	SorryIn    bool     `json:"sorry_server_in,omitempty"`
	Suspended  bool     `json:"suspended,omitempty"`
	LiveWeight int64    `json:"live_weight"`
	Quorum     int64    `json:"quorum"`
	Hysteresis int64    `json:"hysteresis,omitempty"`
	Sorry      string   `json:"sorry_server,omitempty"`
	// Counters are the kernel's, summed over Services; absent without IPVS.
	Counters    *IPVSCounters      `json:"counters,omitempty"`
	Error       string             `json:"error,omitempty"`
	RealServers []RealServerStatus `json:"real_servers"`
}

// RealServerStatus is one real_server.
type RealServerStatus struct {
	Address string `json:"address"`
	Method  string `json:"method"`
	Alive   bool   `json:"alive"`
	// Weight is its weight now (dynamic weights applied); ConfiguredWeight the file's.
	Weight           int64 `json:"weight"`
	ConfiguredWeight int64 `json:"configured_weight"`
	// InTable: it has a destination in the kernel's table (wanted), at TableWeight.
	InTable     bool              `json:"in_table"`
	TableWeight int64             `json:"table_weight"`
	Checks      []RealCheckStatus `json:"checks,omitempty"`
	Counters    *IPVSCounters     `json:"counters,omitempty"`
}

// RealCheckStatus is one checker of a real server.
type RealCheckStatus struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	HasRun bool   `json:"has_run"`
	Weight *int64 `json:"weight,omitempty"`
}

// IPVSCounters are the kernel's counters: totals since the entry was added, and the
// connections now.
type IPVSCounters struct {
	Conns         uint64 `json:"connections"`
	InPackets     uint64 `json:"in_packets"`
	OutPackets    uint64 `json:"out_packets"`
	InBytes       uint64 `json:"in_bytes"`
	OutBytes      uint64 `json:"out_bytes"`
	ActiveConns   uint32 `json:"active_connections"`
	InactiveConns uint32 `json:"inactive_connections"`
}

// lvsStatusOf is what `vigil status` shows of the check child's answer, its strings cleaned
// as anything else a child sends.
func lvsStatusOf(l *childpb.LVSStatus) *LVSStatus {
	if l == nil {
		return nil
	}
	m := checksched.Message
	out := &LVSStatus{Running: l.GetRunning(), Error: m(l.GetError()), SyncRole: m(l.GetSyncRole()), VirtualServers: []VirtualServerStatus{}}
	for _, d := range l.GetSyncDaemons() {
		out.SyncDaemons = append(out.SyncDaemons, SyncDaemonStatus{State: m(d.GetState()), Interface: m(d.GetInterface()), SyncID: d.GetSyncId()})
	}
	for _, v := range l.GetServices() {
		vs := VirtualServerStatus{ID: m(v.GetId()), Name: m(v.GetName()), At: m(v.GetPos()), QuorumUp: v.GetQuorumUp(), SorryIn: v.GetSorryIn(),
			Suspended: v.GetSuspended(), LiveWeight: v.GetLiveWeight(), Quorum: v.GetQuorum(), Hysteresis: v.GetHysteresis(),
			Sorry: m(v.GetSorry()), Counters: countersOf(v.GetCounters()), Error: m(v.GetError()), Services: []string{}, RealServers: []RealServerStatus{}}
		for _, k := range v.GetKeys() {
			vs.Services = append(vs.Services, m(k))
		}
		for _, r := range v.GetReals() {
			rs := RealServerStatus{Address: m(r.GetAddress()), Method: m(r.GetMethod()), Alive: r.GetAlive(), Weight: r.GetWeight(),
				ConfiguredWeight: r.GetConfiguredWeight(), InTable: r.GetInTable(), TableWeight: r.GetTableWeight(), Counters: countersOf(r.GetCounters())}
			for _, c := range r.GetCheckers() {
				cs := RealCheckStatus{Name: m(c.GetName()), Up: c.GetUp(), HasRun: c.GetHasRun()}
				if c.Weight != nil {
					w := c.GetWeight()
					cs.Weight = &w
				}
				rs.Checks = append(rs.Checks, cs)
			}
			vs.RealServers = append(vs.RealServers, rs)
		}
		out.VirtualServers = append(out.VirtualServers, vs)
	}
	return out
}

func countersOf(c *childpb.IPVSCounters) *IPVSCounters {
	if c == nil {
		return nil
	}
	return &IPVSCounters{Conns: c.GetConns(), InPackets: c.GetInPackets(), OutPackets: c.GetOutPackets(), InBytes: c.GetInBytes(),
		OutBytes: c.GetOutBytes(), ActiveConns: c.GetActiveConns(), InactiveConns: c.GetInactiveConns()}
}
