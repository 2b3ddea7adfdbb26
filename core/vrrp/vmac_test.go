package vrrp_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVMAC: with use_vmac the VIP lives on vrrp.VRID, a macvlan with the virtual router MAC
// 00:00:5e:00:01:VRID; clients learn that MAC, the bridge learns it on the master's port
// (adverts leave from the VMAC), a backup's VMAC sends nothing, and after a failover the
// clients' ARP entry is still right. A stopped vigil removes its VMAC.
func TestVMAC(t *testing.T) {
	l := newLab(t, 2)
	const vmac = "00:00:5e:00:01:3a" // VRID 58
	a := inst{vrid: 58, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: "    use_vmac\n"}
	b := a
	b.prio = 100
	p0 := l.start(0, a.conf())
	l.start(1, b.conf())
	l.waitHolder(vip4, "n1", 10*time.Second)
	l.stable(vip4, "n1", time.Second)

	for i, nd := range l.Nodes {
		out, err := nd.Exec(l.ctx, "ip", "-o", "link", "show", "vrrp.58")
		if err != nil || !strings.Contains(out, "link/ether "+vmac) || !strings.Contains(out, "@eth0") {
			t.Fatalf("node %d: vrrp.58: %v\n%s", i, err, out)
		}
	}
	if out, _ := l.Nodes[0].Exec(l.ctx, "ip", "-o", "addr", "show", "dev", "vrrp.58"); !strings.Contains(out, "192.0.2.100/24") {
		t.Fatalf("the VIP is not on the master's VMAC:\n%s", out)
	}
	// A client (node 1's own interface) resolves the VIP to the virtual MAC.
	if out, err := l.Nodes[1].Exec(l.ctx, "ping", "-c", "1", "-W", "1", "192.0.2.100"); err != nil {
		t.Fatalf("ping the VIP: %v\n%s", err, out)
	}
	neigh := func(i int) string {
		out, _ := l.Nodes[i].Exec(l.ctx, "ip", "neigh", "show", "192.0.2.100")
		return out
	}
	if n := neigh(1); !strings.Contains(n, vmac) {
		t.Errorf("the VIP resolves to %q, want the virtual MAC %s", n, vmac)
	}
	// The bridge learned the virtual MAC from the master's adverts, on the master's port.
	time.Sleep(500 * time.Millisecond)
	fdb, err := exec.CommandContext(l.ctx, "ip", "netns", "exec", l.Switch, "bridge", "fdb", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("bridge fdb: %v\n%s", err, fdb)
	}
	var ports []string
	for _, line := range strings.Split(string(fdb), "\n") {
		if strings.HasPrefix(line, vmac+" ") {
			ports = append(ports, strings.Fields(line)[2])
		}
	}
	if len(ports) != 1 || ports[0] != "p1" {
		t.Errorf("the bridge has the virtual MAC on %v, want only the master's port p1:\n%s", ports, fdb)
	}

	// The backup's VMAC is down: it sends nothing, and the kernel does not keep the
	// master's adverts (which carry the same MAC) from its interface.
	if out, _ := l.Nodes[1].Exec(l.ctx, "ip", "-o", "link", "show", "vrrp.58"); strings.Contains(out, ",UP") {
		t.Errorf("the backup's VMAC is up:\n%s", out)
	}

	// Failover: node 1 holds the VIP on its own VMAC, with the same MAC.
	if err := p0.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	l.waitHolder(vip4, "n2", 5*time.Second)
	if err := p0.Wait(10 * time.Second); err != nil {
		t.Fatalf("vigil on node 0 did not stop: %v", err)
	}
	if out, err := l.Nodes[0].Exec(l.ctx, "ip", "link", "show", "vrrp.58"); err == nil {
		t.Errorf("node 0's VMAC is still there after vigil stopped:\n%s", out)
	}
	if out, _ := l.Nodes[1].Exec(l.ctx, "ip", "-o", "addr", "show", "dev", "vrrp.58"); !strings.Contains(out, "192.0.2.100/24") {
		t.Fatalf("the VIP is not on the new master's VMAC:\n%s", out)
	}
	// The bridge follows: the virtual MAC is now on the new master's port.
	deadline := time.Now().Add(3 * time.Second)
	for {
		fdb, _ := exec.CommandContext(l.ctx, "ip", "netns", "exec", l.Switch, "bridge", "fdb", "show").CombinedOutput()
		if strings.Contains(string(fdb), vmac+" dev p2 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bridge did not learn the virtual MAC on p2 after the failover:\n%s", fdb)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A reload without use_vmac restarts the instance on eth0 and removes the VMAC.
	c := b
	c.extra = ""
	path := filepath.Join(l.dir, l.Nodes[1].Name+".conf")
	if err := os.WriteFile(path+".new", []byte(c.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, gone := l.Nodes[1].Exec(l.ctx, "ip", "link", "show", "vrrp.58")
		out, _ := l.Nodes[1].Exec(l.ctx, "ip", "-o", "addr", "show", "dev", "eth0")
		if gone != nil && strings.Contains(out, "192.0.2.100/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a reload without use_vmac: VMAC still there (%v) or VIP not on eth0:\n%s", gone == nil, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
