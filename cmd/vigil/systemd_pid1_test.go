package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/nspawn"
)

// TestSystemdUnitUnderSystemd runs configs/vigil.service under a real systemd (PID 1 of a
// Debian container booted with systemd-nspawn; this machine's own init is not systemd) and
// checks what TestSystemdNotify can only check from the notify socket's side: that
// `systemctl start vigil` returns only once vigil is ready, and vigil then answers with its
// instance. The container's eth0 first has no address: the instance waits in FAULT, which
// does not hold readiness back (systemd would time the start out and restart vigil on a node
// whose address comes late), so the unit is "active" with VI_1 in FAULT, saying why. Once
// the address is there VI_1 leaves FAULT in the same vrrp process. Then `systemctl reload`
// of a good and of a broken file, and `systemctl stop`.
func TestSystemdUnitUnderSystemd(t *testing.T) {
	if err := nspawn.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tarball, err := nspawn.Rootfs(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin, err := lab.BuildVigil(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nspawn.Boot(ctx, tarball, dir, "sdunit")
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := m.Run(ctx, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := m.Run(context.Background(), "journalctl", "--no-pager", "-n", "80", "-u", "vigil")
			t.Logf("--- journal of vigil.service\n%s", out)
		}
		m.Close()
	})

	put := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(m.Root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	put("usr/sbin/vigil", b, 0o755)
	unit, err := os.ReadFile("../../configs/vigil.service")
	if err != nil {
		t.Fatal(err)
	}
	put("etc/systemd/system/vigil.service", unit, 0o644)
	conf := `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 10
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.51.100.10/24
    }
}
`
	put("etc/vigil/vigil.conf", []byte(conf), 0o644)
	run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	run("ip", "link", "set", "eth1", "up")
	run("ip", "link", "set", "eth0", "up")
	run("systemctl", "daemon-reload")

	// Without an address on eth0 the instance waits in FAULT; the start job waiting in
	// systemctl returns once READY=1 came, and by then vigil answers with its instance.
	run("systemctl", "start", "vigil")
	if s := run("systemctl", "is-active", "vigil"); s != "active" {
		t.Fatalf("after systemctl start returned: vigil.service is %q, want active", s)
	}
	type status struct {
		Processes []struct {
			Role string `json:"role"`
			PID  int    `json:"pid"`
		} `json:"processes"`
		Instances []struct{ Name, State, Fault string } `json:"instances"`
	}
	read := func() (st status, vrrpPID int) {
		t.Helper()
		if err := json.Unmarshal([]byte(run("vigil", "status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Processes {
			if p.Role == "vrrp" {
				vrrpPID = p.PID
			}
		}
		return st, vrrpPID
	}
	st, pid := read()
	if len(st.Instances) != 1 || st.Instances[0].Name != "VI_1" || st.Instances[0].State != "FAULT" ||
		st.Instances[0].Fault != "no IPv4 address on eth0" || pid == 0 {
		t.Fatalf("status right after systemctl start returned: %+v, vrrp pid %d; want VI_1 in FAULT for want of an address", st.Instances, pid)
	}
	// systemd logs "Started" when the start job ends: with Type=notify at READY=1, after
	// vigil's own lines about VI_1; with Type=simple it would come first, at the fork.
	journal := run("journalctl", "--no-pager", "-o", "cat", "-u", "vigil")
	started, vi1 := strings.Index(journal, "Started vigil.service"), strings.Index(journal, "VI_1")
	if started < 0 || vi1 < 0 || vi1 > started {
		t.Errorf("the journal does not show vigil's lines about VI_1 before systemd's \"Started\":\n%s", journal)
	}
	if s := run("systemctl", "show", "--property=StatusText", "--value", "vigil"); !strings.Contains(s, "VI_1") {
		t.Errorf("systemctl's status text %q does not name VI_1", s)
	}

	// The address comes: VI_1 leaves FAULT (alone on its link, it becomes master) in the
	// vrrp process that was already running.
	run("ip", "addr", "add", "192.0.2.1/24", "dev", "eth0")
	deadline := time.Now().Add(time.Minute)
	for {
		st, now := read()
		if now != pid {
			t.Fatalf("vrrp process %d replaced by %d: restarted for an address that came late", pid, now)
		}
		if len(st.Instances) == 1 && st.Instances[0].State == "MASTER" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after eth0 got its address: %+v; want VI_1 MASTER", st.Instances)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A reload of a good file succeeds; a broken file fails the reload and the daemon stays.
	put("etc/vigil/vigil.conf", []byte(strings.Replace(conf, "priority 100", "priority 110", 1)), 0o644)
	run("systemctl", "reload", "vigil")
	put("etc/vigil/vigil.conf", []byte(strings.Replace(conf, "priority 100", "priority many", 1)), 0o644)
	if out, err := m.Run(ctx, "systemctl", "reload", "vigil"); err == nil {
		t.Errorf("systemctl reload of a broken file succeeded:\n%s", out)
	}
	if s := run("systemctl", "is-active", "vigil"); s != "active" {
		t.Errorf("after a refused reload vigil.service is %q, want active", s)
	}

	run("systemctl", "stop", "vigil")
	if out, _ := m.Run(ctx, "systemctl", "is-active", "vigil"); strings.TrimSpace(string(out)) != "inactive" {
		t.Errorf("after systemctl stop vigil.service is %q, want inactive", strings.TrimSpace(string(out)))
	}
}
