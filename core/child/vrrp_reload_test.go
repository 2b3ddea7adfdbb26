package child

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestVRRPReloadNotAppliedKeepsChecks: a reload the engine refuses as a whole (a new
// instance on an interface that does not exist) leaves the old instances running, and they
// keep taking the states of the checks they track, though the refused configuration has
// none of them. The vrrp child used to switch to the new configuration's checks all the
// same, and refused every later state of chk: its instance's priority froze.
func TestVRRPReloadNotAppliedKeepsChecks(t *testing.T) {
	if !inLab(t, "vrrpnoapply") {
		return
	}
	conf := `vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/32
    }
    track_script {
        chk
    }
}
`
	refused := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/32
    }
}
vrrp_instance VI_2 {
    interface nosuch9
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.101/32
    }
}
`
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	vs := newVRRPServer(hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info}), Options{})
	if _, err := vs.Start(ctx, &childpb.StartRequest{ConfigName: "a.conf", ConfigText: conf}); err != nil {
		t.Fatalf("vrrp Start: %v", err)
	}
	defer vs.shutdown()
	set := func(up bool, seq uint64) {
		t.Helper()
		if _, err := vs.SetCheck(ctx, &childpb.CheckState{Name: "chk", Up: up, Epoch: 1, Seq: seq, Initial: seq == 1}); err != nil {
			t.Fatalf("SetCheck(chk, up=%v): %v", up, err)
		}
	}
	prio := func(want int32) { t.Helper(); waitPriority(t, ctx, vs, want) }
	set(true, 1)
	prio(100)

	_, err := vs.Reload(ctx, &childpb.StartRequest{ConfigName: "b.conf", ConfigText: refused})
	set(false, 2)
	prio(80)
	// Core learns that nothing applied, by the code, and where the trouble is.
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "b.conf:10:1") || !strings.Contains(err.Error(), "nosuch9") {
		t.Errorf("reload with a missing interface: %v, want FailedPrecondition naming b.conf:10:1 and nosuch9", err)
	}
}
