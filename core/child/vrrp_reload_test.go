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

// TestVRRPReloadRebuildsCheckWeights: the weights SetCheck applies follow a reload. The
// engine looks a check's instances and weights up in an index that the load and each reload
// build; one that kept the first configuration's index would apply chk's old weight after
// the reload (priority 80, not 70) and nothing of chk2, which the reload added (70, not 65).
func TestVRRPReloadRebuildsCheckWeights(t *testing.T) {
	if !inLab(t, "vrrpchkidx") {
		return
	}
	conf := func(tracks string) string {
		return `vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_script chk2 {
    script "/bin/true"
    weight -5
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
` + tracks + `    }
}
`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	vs := newVRRPServer(hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info}), Options{})
	if _, err := vs.Start(ctx, &childpb.StartRequest{ConfigName: "a.conf", ConfigText: conf("        chk\n")}); err != nil {
		t.Fatalf("vrrp Start: %v", err)
	}
	defer vs.shutdown()
	seq := map[string]uint64{}
	set := func(name string, up bool) {
		t.Helper()
		seq[name]++
		if _, err := vs.SetCheck(ctx, &childpb.CheckState{Name: name, Up: up, Epoch: 1, Seq: seq[name], Initial: seq[name] == 1}); err != nil {
			t.Fatalf("SetCheck(%s, up=%v): %v", name, up, err)
		}
	}
	prio := func(want int32) { t.Helper(); waitPriority(t, ctx, vs, want) }
	set("chk", false)
	prio(80)

	// chk reweighted by its track_script line, chk2 tracked from now on.
	if _, err := vs.Reload(ctx, &childpb.StartRequest{ConfigName: "b.conf", ConfigText: conf("        chk weight -30\n        chk2\n")}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	set("chk", false)
	prio(70)
	set("chk2", false)
	prio(65)

	// chk no longer tracked: its weight goes with it.
	if _, err := vs.Reload(ctx, &childpb.StartRequest{ConfigName: "c.conf", ConfigText: conf("        chk2\n")}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	prio(95)
	set("chk2", true)
	prio(100)
}
