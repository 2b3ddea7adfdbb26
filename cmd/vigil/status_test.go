package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/supervisor"
)

// TestPrintLVSStatus: `vigil status` shows the load balancer: whether it runs and why not,
// each virtual server with its place, quorum and counters, each real server with its
// weight, state, checks and counters.
func TestPrintLVSStatus(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, supervisor.Status{LVS: &supervisor.LVSStatus{
		Running: false, Error: `ipvs: the kernel has no IPVS: load it with "modprobe ip_vs"`, SyncRole: "none",
		VirtualServers: []supervisor.VirtualServerStatus{{
			ID: "TCP 192.0.2.100:80", At: "/etc/keepalived/keepalived.conf:12", Services: []string{"TCP  192.0.2.100:80"},
			QuorumUp: true, LiveWeight: 3, Quorum: 1, Counters: &supervisor.IPVSCounters{Conns: 7, ActiveConns: 1, InBytes: 100, OutBytes: 200},
			RealServers: []supervisor.RealServerStatus{{
				Address: "192.0.2.11:80", Method: "NAT", Alive: true, Weight: 3, ConfiguredWeight: 1, InTable: true, TableWeight: 3,
				Checks: []supervisor.RealCheckStatus{{Name: "192.0.2.100:80/192.0.2.11:80/TCP_CHECK", Up: true, HasRun: true}},
			}},
		}, {
			ID: "fwmark 8 inet6", At: "/etc/keepalived/keepalived.conf:30", Services: []string{"FWM  8 IPv6"}, RealServers: []supervisor.RealServerStatus{},
		}, {
			ID: "group web #1", At: "/etc/keepalived/keepalived.conf:40", Services: []string{"TCP  192.0.2.101:80", "TCP  192.0.2.102:80"},
			RealServers: []supervisor.RealServerStatus{},
		}},
	}})
	out := b.String()
	// A virtual server's line names its key once: its one IPVS service is its ID again.
	// A group's line lists its services.
	for _, want := range []string{
		"VIRTUAL SERVER TCP 192.0.2.100:80 (at /etc/keepalived/keepalived.conf:12): ",
		"VIRTUAL SERVER fwmark 8 inet6 (at /etc/keepalived/keepalived.conf:30): ",
		"VIRTUAL SERVER group web #1 (TCP  192.0.2.101:80, TCP  192.0.2.102:80, at /etc/keepalived/keepalived.conf:40): ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks the line %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "192.0.2.100:80 "); n != 1 {
		t.Errorf("the key 192.0.2.100:80 is written %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{
		`LOAD BALANCER: NOT RUNNING: ipvs: the kernel has no IPVS: load it with "modprobe ip_vs"`,
		"quorum up (live weight 3, quorum 1)", "7 conns (1 active), 100 B in, 200 B out",
		"192.0.2.11:80", "3 (configured 1)", "weight 3", "192.0.2.100:80/192.0.2.11:80/TCP_CHECK up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sync daemon") {
		t.Errorf("a sync daemon shown without lvs_sync_daemon:\n%s", out)
	}
}

// TestPrintBGPStatus: `vigil status` shows the BGP speaker, each session with its state,
// flaps and the reason it last failed, and each route with its attributes.
func TestPrintBGPStatus(t *testing.T) {
	med := uint32(155)
	var b bytes.Buffer
	printStatus(&b, supervisor.Status{BGP: &supervisor.BGPStatus{
		State: "running", PID: 42, Restarts: 1, LastError: "the speaker process exited", LocalAS: 64513, RouterID: "198.51.100.2",
		Peers: []supervisor.BGPPeer{
			{Address: "198.51.100.1", RemoteAS: 64512, State: "established", Flaps: 2, RoutesSent: 1},
			{Address: "2001:db8:1::1", RemoteAS: 64512, State: "active", LastError: "TCP connection failed: i/o timeout", BFD: "down"},
		},
		Routes: []supervisor.BGPRoute{{Prefix: "203.0.113.66/32", Instance: "VI_1", MED: &med, Communities: []string{"64512:100"}, GracefulShutdown: true}},
	}})
	out := b.String()
	for _, want := range []string{
		"BGP speaker: running (pid 42), AS 64513, router ID 198.51.100.2, 1 restarts, last: the speaker process exited",
		"198.51.100.1", "established", "2001:db8:1::1", "active (BFD down)", "TCP connection failed: i/o timeout",
		"203.0.113.66/32", "VI_1", "med 155 64512:100 graceful-shutdown",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStatus(&b, supervisor.Status{BGP: &supervisor.BGPStatus{State: "restarting", Unanswered: "the speaker is not running", Peers: []supervisor.BGPPeer{}, Routes: []supervisor.BGPRoute{}}})
	if out := b.String(); !strings.Contains(out, "BGP speaker: restarting") || !strings.Contains(out, "sessions and routes unknown: the speaker is not running") {
		t.Errorf("a speaker that did not answer:\n%s", out)
	}
}
