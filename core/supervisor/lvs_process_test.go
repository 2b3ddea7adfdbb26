package supervisor_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/ipvs"
	"github.com/vigil-ha/vigil/core/supervisor"
)

// lvsConf is one VRRP instance and a virtual server on its address, with ha_suspend (the
// service follows VI_1 being master), omega (the shutdown runs quorum_down) and quorum
// scripts that append to out.
func lvsConf(dir, out string) string {
	script := func(name string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("#!/bin/sh\necho "+name+" >> "+out+"\n"), 0o755)
		return p
	}
	return fmt.Sprintf(`global_defs {
    lvs_notify_fifo %s
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.2
    version 3
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
    quorum_up %s
    quorum_down %s
    real_server 192.0.2.11 80 {
        weight 1
    }
}
`, filepath.Join(dir, "lvs.fifo"), script("quorum_up"), script("quorum_down"))
}

// TestLoadBalancerPlumbing runs vigil with a virtual_server in a lab node. Where the kernel
// has no IPVS (this machine's), the load balancer says why and what to do, VRRP runs on,
// and the rest of the path works without a kernel: core passes VI_1's state to the check
// process (ha_suspend lets the service go once VI_1 is master), the quorum scripts run
// through core's notify path and the FIFO gets keepalived's line; SIGTERM runs omega's
// quorum_down, and with -I (--dont-release-ipvs) it does not (keepalived reports nothing
// when it keeps the table). Where the kernel has IPVS (the VM), the service is programmed.
func TestLoadBalancerPlumbing(t *testing.T) {
	ctx, n := newLab(t, 1)
	c, openErr := ipvs.Open()
	if openErr == nil {
		c.Close()
	}
	out := filepath.Join(n[0].dir, "scripts.out")
	n[0].start(t, lvsConf(n[0].dir, out))
	waitFor(t, 20*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })

	lvsOf := func() *supervisor.LVSStatus {
		st, err := n[0].tryStatus()
		if err != nil {
			return nil
		}
		return st.LVS
	}
	var l *supervisor.LVSStatus
	waitFor(t, 20*time.Second, "the check process sees VI_1 master", func() bool {
		l = lvsOf()
		return l != nil && len(l.VirtualServers) == 1 && !l.VirtualServers[0].Suspended
	})
	vs := l.VirtualServers[0]
	if vs.ID != "TCP 192.0.2.100:80" || !vs.QuorumUp || len(vs.RealServers) != 1 || !vs.RealServers[0].Alive || !strings.HasSuffix(vs.At, ".conf:15") {
		t.Errorf("virtual server: %+v", vs)
	}
	if errors.Is(openErr, ipvs.ErrNoIPVS) {
		if l.Running || !strings.Contains(l.Error, "modprobe ip_vs") {
			t.Errorf("without IPVS: running %v, error %q", l.Running, l.Error)
		}
	} else if openErr == nil && (!l.Running || vs.Counters == nil) {
		t.Errorf("with IPVS: running %v, error %q, counters %v", l.Running, l.Error, vs.Counters)
	}
	waitFor(t, 20*time.Second, "quorum_up ran", func() bool { return slices.Contains(scriptLines(out), "quorum_up") })
	fifo, err := os.OpenFile(filepath.Join(n[0].dir, "lvs.fifo"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	k, _ := fifo.Read(buf)
	fifo.Close()
	if !strings.Contains(string(buf[:k]), "VS [192.0.2.100]:tcp:80 UP\n") {
		t.Errorf("lvs_notify_fifo: %q", buf[:k])
	}

	stop := func() {
		t.Helper()
		if err := n[0].proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := n[0].proc.Wait(30 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
	}
	stop()
	if got := scriptLines(out); !slices.Equal(got, []string{"quorum_up", "quorum_down"}) {
		t.Errorf("scripts after SIGTERM: %q, want quorum_up then omega's quorum_down", got)
	}

	// Again with -I: at stop nothing is released, and nothing is reported.
	os.Remove(out)
	os.Remove(filepath.Join(n[0].dir, "lvs.fifo"))
	n[0].start(t, lvsConf(n[0].dir, out), "-I")
	waitFor(t, 20*time.Second, "quorum_up ran again", func() bool { return slices.Contains(scriptLines(out), "quorum_up") })
	stop()
	if got := scriptLines(out); !slices.Equal(got, []string{"quorum_up"}) {
		t.Errorf("scripts after SIGTERM with -I: %q, want quorum_up only", got)
	}
}

func scriptLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// TestDontReleaseVRRP: with -V (--dont-release-vrrp, keepalived's flag) a master that stops
// keeps its address; without it, it removes it (TestSIGTERMCleanExit).
func TestDontReleaseVRRP(t *testing.T) {
	ctx, n := newLab(t, 1)
	n[0].start(t, conf(150, ""), "-V")
	waitFor(t, 20*time.Second, "n1 holds the VIP", func() bool { return n[0].holds(t, ctx) })
	if err := n[0].proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n[0].proc.Wait(30 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if !n[0].holds(t, ctx) {
		t.Error("the VIP was removed at stop despite -V")
	}
}
