package vrrp_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A reload that adds a VIP to a master changes the address list in its adverts before the
// backups have the new list. vigil's backups count such an advert (the list check is
// advisory, see Engine.receive); keepalived's drop it, time out and take over as well,
// unless told to skip the list check for adverts from the master they already follow
// (vrrp_skip_check_adv_addr in global_defs, skip_check_adv_addr in the instance). These
// tests reload a vigil master beside a keepalived backup with and without that option.

func TestInteropReloadAddsVIPSkipCheck(t *testing.T) {
	reloadAddsVIP(t, "global_defs {\n    vrrp_skip_check_adv_addr\n}\n", false)
}

// TestInteropReloadAddsVIPKeepalivedDefault documents keepalived's own behaviour that the
// option above avoids: it shows that the test above can fail.
func TestInteropReloadAddsVIPKeepalivedDefault(t *testing.T) {
	reloadAddsVIP(t, "", true)
}

func reloadAddsVIP(t *testing.T, kaGlobal string, wantTakeover bool) {
	l := newInteropLab(t, 2)
	a := inst{vrid: 70, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24"}
	b := inst{vrid: 70, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}
	l.startVigil(0, a.conf())
	l.waitHas(0, vip4, 10*time.Second)
	ka := l.startKA(1, kaGlobal+b.conf())
	waitState(t, ka, "BACKUP", 1, 10*time.Second)
	time.Sleep(time.Second)

	// The edit, as an editor saves it: vigil sees the file change and reloads.
	a.vip = "192.0.2.100/24\n        192.0.2.101/24"
	path := filepath.Join(l.dir, l.Nodes[0].Name+".conf")
	if err := os.WriteFile(path+".new", []byte(a.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	l.waitHas(0, netip.MustParseAddr("192.0.2.101"), 10*time.Second)
	time.Sleep(2 * time.Second) // ten adverts, three Master_Down_Intervals

	took := strings.Count(ka.Output(), "Entering MASTER STATE") > 0
	if took != wantTakeover {
		t.Errorf("keepalived took over after the reload: %v, want %v\n%s", took, wantTakeover, ka.Output())
	}
	if !wantTakeover {
		if held, err := l.Nodes[1].HasAddr(l.ctx, vip4); err != nil || held {
			t.Errorf("keepalived's node holds %s: %v, %v", vip4, held, err)
		}
		l.checkClean()
	}
}

// TestInteropVMAC: vigil and keepalived both with use_vmac form one virtual router: exactly
// one master, failover both ways, and the VIP always answers from the virtual MAC.
func TestInteropVMAC(t *testing.T) {
	l := newInteropLab(t, 2)
	a := inst{vrid: 71, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24", extra: "    use_vmac\n"}
	b := a
	b.prio = 100
	vigilMasterKABackup(t, l, vip4, a, b, 200*time.Millisecond)
	for i, nd := range l.Nodes {
		if out, err := nd.Exec(l.ctx, "ip", "-o", "link", "show", "vrrp.71"); err != nil || !strings.Contains(out, "link/ether 00:00:5e:00:01:47") {
			t.Errorf("node %d: vrrp.71: %v\n%s", i, err, out)
		}
	}
	if out, _ := l.Nodes[0].Exec(l.ctx, "ip", "-o", "addr", "show", "dev", "vrrp.71"); !strings.Contains(out, "192.0.2.100/24") {
		t.Errorf("the VIP is not on vigil's VMAC:\n%s", out)
	}
	l.checkClean()
}
