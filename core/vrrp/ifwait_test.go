package vrrp_test

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// labStatus is the part of `vigil status --json` these tests read.
type labStatus struct {
	Processes []struct {
		Role     string `json:"role"`
		PID      int    `json:"pid"`
		Restarts int    `json:"restarts"`
	} `json:"processes"`
	Instances []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Fault string `json:"fault"`
	} `json:"instances"`
}

func (l *testLab) status(i int) (labStatus, error) {
	var st labStatus
	out, err := exec.CommandContext(l.ctx, vigilBin, "status", "--json", "--control", l.socket(i)).Output()
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	return st, err
}

// vrrpPID is the PID of node i's vrrp child and how often it was restarted.
func (st labStatus) vrrpPID() (pid, restarts int) {
	for _, p := range st.Processes {
		if p.Role == "vrrp" {
			return p.PID, p.Restarts
		}
	}
	return 0, 0
}

// waitInstance waits until node i's status shows instance name in state, with a fault
// reason containing fault, and returns that status.
func (l *testLab) waitInstance(i int, name, state, fault string, timeout time.Duration) labStatus {
	l.t.Helper()
	end := time.Now().Add(timeout)
	var last labStatus
	var err error
	for time.Now().Before(end) {
		if last, err = l.status(i); err == nil {
			for _, in := range last.Instances {
				if in.Name == name && in.State == state && strings.Contains(in.Fault, fault) && (fault != "" || in.Fault == "") {
					return last
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("after %s %s is not %s (fault %q): %+v %v", timeout, name, state, fault, last.Instances, err)
	return last
}

func (l *testLab) ip(i int, args ...string) {
	l.t.Helper()
	if out, err := l.Nodes[i].Exec(l.ctx, "ip", args...); err != nil {
		l.t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// TestInterfaceNotReadyFaultsOneInstance: an instance whose interface has no address, or
// does not exist, waits in FAULT; the others run. When the address is added, or the
// interface created, the instance sets up without a restart of the vrrp child; a master
// whose address goes away goes to FAULT and releases its VIP, and comes back with it.
// Before, the whole vrrp child failed to start and was restarted with a backoff, so VI_1
// never became master.
func TestInterfaceNotReadyFaultsOneInstance(t *testing.T) {
	l := newLab(t, 1)
	// ifw1 exists, up, with no IPv4 address; ifw2 does not exist yet.
	l.ip(0, "link", "add", "ifw1", "type", "veth", "peer", "name", "ifw1p")
	l.ip(0, "link", "set", "ifw1p", "up")
	l.ip(0, "link", "set", "ifw1", "up")
	// /32 VIPs: one in the primary address's subnet would go with it (the kernel removes the
	// secondaries of a primary address it deletes), and the test must see vigil remove it.
	vi2VIP, vi3VIP := netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("203.0.113.100")
	conf := inst{name: "VI_1", vrid: 51, prio: 100, vip: vip4.String() + "/24"}.conf() +
		inst{name: "VI_2", vrid: 52, prio: 100, iface: "ifw1", vip: vi2VIP.String() + "/32"}.conf() +
		inst{name: "VI_3", vrid: 53, prio: 100, iface: "ifw2", vip: vi3VIP.String() + "/32"}.conf()
	l.start(0, conf)
	n1 := l.Nodes[0].Name

	// VI_1 becomes master after its Master_Down_Interval (3.6 s; bounded generously for a
	// loaded machine), while VI_2 and VI_3 wait in FAULT.
	took := l.waitHolder(vip4, n1, 30*time.Second)
	t.Logf("VI_1 master after %s", took)
	l.waitInstance(0, "VI_2", "FAULT", "no IPv4 address on ifw1", 10*time.Second)
	st := l.waitInstance(0, "VI_3", "FAULT", "interface ifw2 does not exist", 10*time.Second)
	pid, restarts := st.vrrpPID()
	if pid == 0 || restarts != 0 {
		t.Fatalf("vrrp child pid %d restarted %d times, want one that runs from the start", pid, restarts)
	}
	if h := l.holders(vi2VIP); len(h) != 0 {
		t.Fatalf("VI_2 in FAULT: its VIP is held by %v", h)
	}

	// The address arrives: VI_2 sets up and, alone, becomes master.
	l.ip(0, "addr", "add", "198.51.100.1/24", "dev", "ifw1")
	l.waitHolder(vi2VIP, n1, 30*time.Second)
	l.waitInstance(0, "VI_2", "MASTER", "", 10*time.Second)

	// The interface is created (down, then up), then gets its address: VI_3 follows.
	l.ip(0, "link", "add", "ifw2", "type", "veth", "peer", "name", "ifw2p")
	l.ip(0, "link", "set", "ifw2p", "up")
	l.ip(0, "link", "set", "ifw2", "up")
	l.waitInstance(0, "VI_3", "FAULT", "no IPv4 address on ifw2", 10*time.Second)
	l.ip(0, "addr", "add", "203.0.113.1/24", "dev", "ifw2")
	l.waitHolder(vi3VIP, n1, 30*time.Second)

	// The master VI_2 loses its address: FAULT, VIP removed; VI_1 and VI_3 stay masters.
	l.ip(0, "addr", "del", "198.51.100.1/24", "dev", "ifw1")
	l.waitInstance(0, "VI_2", "FAULT", "no IPv4 address on ifw1", 10*time.Second)
	l.waitHolder(vi2VIP, "", 10*time.Second)
	if h1, h3 := l.holders(vip4), l.holders(vi3VIP); len(h1) != 1 || len(h3) != 1 {
		t.Fatalf("after VI_2 lost its address: VI_1's VIP held by %v, VI_3's by %v", h1, h3)
	}
	// It comes back.
	l.ip(0, "addr", "add", "198.51.100.1/24", "dev", "ifw1")
	l.waitHolder(vi2VIP, n1, 30*time.Second)

	st, err := l.status(0)
	if err != nil {
		t.Fatal(err)
	}
	if p, r := st.vrrpPID(); p != pid || r != 0 {
		t.Fatalf("vrrp child pid %d (restarts %d), want %d throughout", p, r, pid)
	}
}
