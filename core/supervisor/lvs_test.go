package supervisor

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/lvs"
)

const lvsConf = `virtual_server 192.0.2.100 80 {
    lb_algo rr
    protocol TCP
    real_server 192.0.2.11 80 {
        weight 1
    }
}
`

func parseConf(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, ds := config.Parse("lvs.conf", []byte(text), config.Options{})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	return cfg
}

// TestAdmitLVS: core passes on a load-balancer notification only for a virtual server (and
// real server) of a configuration the check child runs, of a kind that exists; the check
// child runs as script_user and must not make core run or write anything else.
func TestAdmitLVS(t *testing.T) {
	cfg := parseConf(t, lvsConf)
	s := &Supervisor{cfg: cfg, ran: map[child.Role][2]*config.Config{child.RoleCheck: {cfg}}}
	const vs = "TCP 192.0.2.100:80"
	ok := []*childpb.LVSEvent{
		{Kind: childpb.LVSEvent_QUORUM_UP, Service: vs, Init: true},
		{Kind: childpb.LVSEvent_REAL_DOWN, Service: vs, Real: "192.0.2.11:80"},
		{Kind: childpb.LVSEvent_QUORUM_DOWN, Service: vs, Stopping: true},
	}
	for _, ev := range ok {
		if _, err := s.admitLVS(ev); err != nil {
			t.Errorf("%v refused: %v", ev, err)
		}
	}
	e, _ := s.admitLVS(ok[1])
	if e.Kind != lvs.RealDown || e.Service != vs || e.Real != "192.0.2.11:80" {
		t.Errorf("admitted as %+v", e)
	}
	for _, ev := range []*childpb.LVSEvent{
		{Kind: childpb.LVSEvent_KIND_UNSPECIFIED, Service: vs},
		{Kind: childpb.LVSEvent_Kind(99), Service: vs},
		{Kind: childpb.LVSEvent_QUORUM_UP, Service: "TCP 192.0.2.200:80"},
		{Kind: childpb.LVSEvent_REAL_UP, Service: vs, Real: "192.0.2.99:80"},
		{Kind: childpb.LVSEvent_REAL_UP, Service: vs},
		{Kind: childpb.LVSEvent_QUORUM_UP, Service: vs, Real: "192.0.2.11:80"},
	} {
		if _, err := s.admitLVS(ev); !errors.Is(err, errRefused) {
			t.Errorf("%v: %v, want refused", ev, err)
		}
	}
	// A reload removed the virtual server: its last notifications, sent by the
	// configuration the check child ran before, are still taken.
	next := parseConf(t, "")
	s.cfg = next
	s.ran[child.RoleCheck] = [2]*config.Config{next, cfg}
	if _, err := s.admitLVS(ok[1]); err != nil {
		t.Errorf("a removed real server's last notification refused: %v", err)
	}
}

// TestNoteInstance: each admitted state change of an instance is recorded once with a new
// version and wakes the feeders; a master hearing a lower priority is no state.
func TestNoteInstance(t *testing.T) {
	s := &Supervisor{instances: map[string]instanceState{}, instChanged: make(chan struct{})}
	wake := s.instChanged
	s.noteInstance(Transition{Instance: "VI_1", From: "INIT", To: "BACKUP"})
	select {
	case <-wake:
	default:
		t.Fatal("a new state woke no feeder")
	}
	wake = s.instChanged
	s.noteInstance(Transition{Instance: "VI_1", From: "BACKUP", To: "BACKUP"})
	s.noteInstance(Transition{Instance: "VI_1", From: "MASTER", To: "MASTER_RX_LOWER_PRI"})
	select {
	case <-wake:
		t.Fatal("no change woke the feeders")
	default:
	}
	s.noteInstance(Transition{Instance: "VI_1", From: "BACKUP", To: "MASTER"})
	if got := s.instances["VI_1"]; got.state != "MASTER" || got.ver != 2 {
		t.Errorf("VI_1: %+v", got)
	}
}

// TestLVSStatusJSON: what `vigil status --json` shows of the load balancer, its strings
// cleaned as anything else a child sends.
func TestLVSStatusJSON(t *testing.T) {
	w := int64(3)
	st := Status{LVS: lvsStatusOf(&childpb.LVSStatus{
		Running: false, Error: "ipvs: the kernel has no IPVS: load it with \"modprobe ip_vs\"\nsecond line", SyncRole: "master",
		SyncDaemons: []*childpb.SyncDaemonStatus{{State: "master", Interface: "eth0", SyncId: 51}},
		Services: []*childpb.VirtualServerStatus{{
			Id: "TCP 192.0.2.100:80", Name: "192.0.2.100:80", Pos: "/etc/keepalived/keepalived.conf:12", Keys: []string{"TCP  192.0.2.100:80"},
			QuorumUp: true, LiveWeight: 3, Quorum: 1,
			Counters: &childpb.IPVSCounters{Conns: 10, InBytes: 1000, OutBytes: 2000},
			Reals: []*childpb.RealServerStatus{{
				Address: "192.0.2.11:80", Method: "NAT", Alive: true, Weight: 3, ConfiguredWeight: 1, InTable: true, TableWeight: 3,
				Checkers: []*childpb.RealCheckerStatus{{Name: "192.0.2.100:80/192.0.2.11:80/TCP_CHECK", Up: true, HasRun: true, Weight: &w}},
				Counters: &childpb.IPVSCounters{Conns: 10, ActiveConns: 2},
			}},
		}},
	})}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		LVS struct {
			Running        bool             `json:"running"`
			Error          string           `json:"error"`
			SyncRole       string           `json:"sync_role"`
			SyncDaemons    []map[string]any `json:"sync_daemons"`
			VirtualServers []struct {
				ID          string            `json:"id"`
				At          string            `json:"at"`
				Services    []string          `json:"services"`
				QuorumUp    bool              `json:"quorum_up"`
				Counters    map[string]uint64 `json:"counters"`
				RealServers []struct {
					Address          string `json:"address"`
					Alive            bool   `json:"alive"`
					Weight           int64  `json:"weight"`
					ConfiguredWeight int64  `json:"configured_weight"`
					Checks           []struct {
						Name   string `json:"name"`
						Up     bool   `json:"up"`
						Weight *int64 `json:"weight"`
					} `json:"checks"`
					Counters map[string]uint64 `json:"counters"`
				} `json:"real_servers"`
			} `json:"virtual_servers"`
		} `json:"lvs"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	l := back.LVS
	if l.Running || !strings.Contains(l.Error, "modprobe ip_vs") || strings.Contains(l.Error, "\n") || l.SyncRole != "master" || len(l.SyncDaemons) != 1 {
		t.Errorf("load balancer: %s", b)
	}
	if len(l.VirtualServers) != 1 {
		t.Fatalf("virtual servers: %s", b)
	}
	vs := l.VirtualServers[0]
	if vs.ID != "TCP 192.0.2.100:80" || vs.At != "/etc/keepalived/keepalived.conf:12" || len(vs.Services) != 1 || !vs.QuorumUp ||
		vs.Counters["connections"] != 10 || vs.Counters["out_bytes"] != 2000 || len(vs.RealServers) != 1 {
		t.Errorf("virtual server: %s", b)
	}
	rs := vs.RealServers[0]
	if rs.Address != "192.0.2.11:80" || !rs.Alive || rs.Weight != 3 || rs.ConfiguredWeight != 1 || len(rs.Checks) != 1 ||
		rs.Checks[0].Weight == nil || *rs.Checks[0].Weight != 3 || rs.Counters["active_connections"] != 2 {
		t.Errorf("real server: %s", b)
	}
	if st := (Status{}); strings.Contains(string(must(json.Marshal(st))), "lvs") {
		t.Error("a status without a load balancer shows one")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
