package child

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/ipvs"
)

// lvsConfig has two virtual servers: one with ha_suspend on VI_1's address and omega, one
// that starts below its quorum (a real server's checker with alpha starts failed; its
// plugin is not in pluginDir, so it stays failed) and puts its sorry server in.
func lvsConfig(pluginDir string, weight int) string {
	return `global_defs {
    plugin_dir ` + pluginDir + `
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    ha_suspend
    omega
    real_server 192.0.2.11 80 {
        weight ` + strconv.Itoa(weight) + `
    }
}
virtual_server 192.0.2.101 443 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    quorum 2
    sorry_server 192.0.2.13 443
    real_server 192.0.2.12 443 {
        weight 1
    }
    real_server 192.0.2.14 443 {
        weight 1
        TCP_CHECK {
            alpha
            connect_timeout 1
        }
    }
}
`
}

// noIPVS skips a test on a kernel that has IPVS: the test is about the load balancer
// running on without one, and must never program the host's own table.
func noIPVS(t *testing.T) {
	c, err := ipvs.Open()
	if err == nil {
		c.Close()
		t.Skip("this kernel has IPVS; the test is for one without (the VM tests program a kernel's table)")
	}
	if !errors.Is(err, ipvs.ErrNoIPVS) {
		t.Skipf("IPVS cannot be asked here: %v", err)
	}
}

// TestLoadBalancerWithoutIPVS runs the check child's load balancer where the kernel has no
// IPVS, through the child's real gRPC service: it says why it does not program anything and
// what to do, decides on anyway (status, notifications), follows the VRRP instance states
// core gives it (ha_suspend), takes a reload, and at stop sends the shutdown's notifications
// (omega) and then ends the stream.
func TestLoadBalancerWithoutIPVS(t *testing.T) {
	noIPVS(t)
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 3)}); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "check.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	childpb.RegisterCheckServer(gs, s)
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := childpb.NewCheckClient(conn)

	// Core subscribes after Start: the start's notifications wait for it.
	stream, err := c.LVSEvents(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	// What the stream brings, in its order: events, then the error that ended it.
	type recv struct {
		ev  *childpb.LVSEvent
		err error
	}
	got := make(chan recv, 64)
	go func() {
		for {
			ev, err := stream.Recv()
			got <- recv{ev, err}
			if err != nil {
				return
			}
		}
	}()
	next := func(what string) *childpb.LVSEvent {
		t.Helper()
		r := <-got
		if r.err != nil {
			t.Fatalf("waiting for %s: stream ended: %v", what, r.err)
		}
		return r.ev
	}
	up := next("the first virtual server's quorum")
	down := next("the second virtual server's quorum")
	if up.GetKind() != childpb.LVSEvent_QUORUM_UP || up.GetService() != "TCP 192.0.2.100:80" || !up.GetInit() || up.GetSeq() != 1 ||
		down.GetKind() != childpb.LVSEvent_QUORUM_DOWN || down.GetService() != "TCP 192.0.2.101:443" || !down.GetInit() || down.GetSeq() != 2 {
		t.Fatalf("start's notifications: %v, %v", up, down)
	}

	lvsStatus := func() *childpb.LVSStatus {
		st, err := c.Status(ctx, &childpb.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetLvs()
	}
	st := lvsStatus()
	if st == nil || st.GetRunning() || !strings.Contains(st.GetError(), "modprobe ip_vs") {
		t.Fatalf("status without IPVS: %v", st)
	}
	if len(st.GetServices()) != 2 {
		t.Fatalf("virtual servers: %v", st.GetServices())
	}
	vs1, vs2 := st.GetServices()[0], st.GetServices()[1]
	if !vs1.GetSuspended() || vs1.GetPos() != "lvs.conf:13" || len(vs1.GetReals()) != 1 || !vs1.GetReals()[0].GetAlive() ||
		vs1.GetReals()[0].GetConfiguredWeight() != 3 || vs1.GetReals()[0].GetAddress() != "192.0.2.11:80" || vs1.GetCounters() != nil {
		t.Errorf("first virtual server: %v", vs1)
	}
	if vs2.GetQuorumUp() || !vs2.GetSorryIn() || vs2.GetSorry() != "192.0.2.13:443" || vs2.GetQuorum() != 2 || vs2.GetLiveWeight() != 1 ||
		vs2.GetReals()[0].GetMethod() != "DR" || vs2.GetReals()[1].GetAlive() || len(vs2.GetReals()[1].GetCheckers()) != 1 {
		t.Errorf("second virtual server: %v", vs2)
	}

	// VI_1 becomes master: its address is up here, ha_suspend lets the service's checkers go.
	if _, err := c.SetInstance(ctx, &childpb.InstanceState{Instance: "VI_1", State: "MASTER"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first virtual server is resumed", func() bool { return !lvsStatus().GetServices()[0].GetSuspended() })
	if _, err := c.SetInstance(ctx, &childpb.InstanceState{Instance: "VI_1", State: "BACKUP"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first virtual server is suspended again", func() bool { return lvsStatus().GetServices()[0].GetSuspended() })

	// A weight edit: the real server keeps its state, nothing is notified.
	if _, err := s.Reload(ctx, &childpb.StartRequest{ConfigName: "lvs.conf", ConfigText: lvsConfig(dir, 5)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new weight", func() bool { return lvsStatus().GetServices()[0].GetReals()[0].GetConfiguredWeight() == 5 })

	// Stop: omega's real server down and quorum down, then the stream ends.
	s.shutdown()
	rs := next("the shutdown's real server down")
	if rs.GetKind() != childpb.LVSEvent_REAL_DOWN || rs.GetService() != "TCP 192.0.2.100:80" || rs.GetReal() != "192.0.2.11:80" ||
		!rs.GetStopping() || rs.GetSeq() != 3 {
		t.Fatalf("shutdown's first notification: %v (a reload's weight edit must notify nothing)", rs)
	}
	stop := next("the shutdown's quorum down")
	if stop.GetKind() != childpb.LVSEvent_QUORUM_DOWN || stop.GetService() != "TCP 192.0.2.100:80" || !stop.GetStopping() || stop.GetSeq() != 4 {
		t.Fatalf("shutdown's second notification: %v", stop)
	}
	if r := <-got; r.ev != nil || !errors.Is(r.err, io.EOF) {
		t.Fatalf("after the shutdown's notifications: %v, %v; want the end of the stream", r.ev, r.err)
	}
}

// TestNoLoadBalancerWithoutVirtualServers: a configuration without virtual_server and
// lvs_sync_daemon opens no IPVS at all, and its status has no load-balancer part.
func TestNoLoadBalancerWithoutVirtualServers(t *testing.T) {
	s := newCheckServer(hclog.NewNullLogger(), Options{})
	t.Cleanup(s.shutdown)
	ctx := context.Background()
	conf := `vrrp_script chk {
    script "/bin/true"
    interval 60
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
`
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "vrrp.conf", ConfigText: conf}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, &childpb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	b := s.lvs
	s.mu.Unlock()
	if st.GetLvs() != nil || b != nil {
		t.Fatalf("a load balancer without virtual servers: %v", st.GetLvs())
	}
}
