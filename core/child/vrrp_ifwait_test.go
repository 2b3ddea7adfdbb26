package child

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestVRRPInterfaceNotReady runs the vrrp child's engine in this (race-instrumented)
// process: an instance on an interface without an address and one on a missing interface
// start in FAULT and say why, beside one that runs; a reload meanwhile keeps them waiting;
// the address and the interface come and they set up; the address goes and its instance
// returns to FAULT. Before, Start failed as a whole ("no source address on ...").
func TestVRRPInterfaceNotReady(t *testing.T) {
	if !inLab(t, "vrrpifw") {
		return
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	ip("link", "add", "ifw1", "type", "veth", "peer", "name", "ifw1p")
	ip("link", "set", "ifw1p", "up")
	ip("link", "set", "ifw1", "up")
	inst := func(name, iface, vrid, prio, vip string) string {
		return "vrrp_instance " + name + " {\n    interface " + iface + "\n    virtual_router_id " + vrid +
			"\n    priority " + prio + "\n    advert_int 1\n    virtual_ipaddress {\n        " + vip + "\n    }\n}\n"
	}
	conf := inst("VI_1", "eth0", "51", "100", "192.0.2.100/32") + inst("VI_2", "ifw1", "52", "100", "198.51.100.100/32") +
		inst("VI_3", "ifw2", "53", "100", "203.0.113.100/32")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	vs := newVRRPServer(hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info}), Options{})
	if _, err := vs.Start(ctx, &childpb.StartRequest{ConfigName: "a.conf", ConfigText: conf}); err != nil {
		t.Fatalf("vrrp Start: %v", err)
	}
	defer vs.shutdown()
	wait := func(name, state, fault string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // ends only a test that fails
		var last []*childpb.InstanceStatus
		for time.Now().Before(deadline) {
			st, err := vs.Status(ctx, &childpb.Empty{})
			if err != nil {
				t.Fatal(err)
			}
			last = st.Instances
			for _, in := range last {
				if in.Name == name && in.State == state && in.Fault == fault {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s not %s (fault %q): %v", name, state, fault, last)
	}
	wait("VI_2", "FAULT", "no IPv4 address on ifw1")
	wait("VI_3", "FAULT", "interface ifw2 does not exist")
	wait("VI_1", "MASTER", "")
	// A reload that changes them keeps them waiting.
	if _, err := vs.Reload(ctx, &childpb.StartRequest{ConfigName: "b.conf", ConfigText: strings.ReplaceAll(conf, "priority 100", "priority 110")}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wait("VI_2", "FAULT", "no IPv4 address on ifw1")
	ip("addr", "add", "198.51.100.1/24", "dev", "ifw1")
	wait("VI_2", "MASTER", "")
	ip("link", "add", "ifw2", "type", "veth", "peer", "name", "ifw2p")
	ip("addr", "add", "203.0.113.1/24", "dev", "ifw2")
	ip("link", "set", "ifw2p", "up")
	ip("link", "set", "ifw2", "up")
	wait("VI_3", "MASTER", "")
	ip("addr", "del", "198.51.100.1/24", "dev", "ifw1")
	wait("VI_2", "FAULT", "no IPv4 address on ifw1")
	ip("addr", "add", "198.51.100.2/24", "dev", "ifw1") // another address: the new source
	wait("VI_2", "MASTER", "")
}
