package vrrp_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// vrrpChild is the pid of the vrrp child of vigil's core process core, or 0.
func vrrpChild(core int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after comm, which may hold spaces: state, ppid.
		f := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
		if len(f) < 2 || string(f[0]) == "Z" || string(f[1]) != strconv.Itoa(core) {
			continue
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmd, []byte("--role\x00vrrp")) {
			return pid
		}
	}
	return 0
}

// TestRestartedChildResignsForDeadMaster: the master's vrrp child dies with SIGKILL, leaving
// the VIP on its node and sending no priority 0 advert. Its successor finds the VIP, removes it
// (a backup must not hold it) and resigns for the dead child with a priority 0 advert, so that
// n2 takes over after Skew_Time rather than after Master_Down_Interval with nobody holding the
// VIP meanwhile (bench/faults master-vrrp-child-kill9: 2.9 s of outage before, as keepalived).
// Then n1, with the higher priority, takes the VIP back.
func TestRestartedChildResignsForDeadMaster(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	if l.capt == nil {
		t.Skip("tshark is not installed: the test reads the wire")
	}
	// advert_int 3: Master_Down_Interval (9.6 s on n2) dwarfs the restart, so that n2 can only
	// take over before n1's successor starts advertising if it was told to.
	a := inst{vrid: 83, prio: 150, advert: "3", vip: "192.0.2.100/24"}
	b := inst{vrid: 83, prio: 100, advert: "3", vip: "192.0.2.100/24"}
	n1, n2 := l.Nodes[0].Addr4.Addr(), l.Nodes[1].Addr4.Addr()
	core := l.startVigil(0, a.conf())
	l.waitHolder(vip4, "n1", 20*time.Second)
	l.startVigil(1, b.conf())
	l.stable(vip4, "n1", 4*time.Second)

	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid = vrrpChild(core.Cmd.Process.Pid); pid == 0; pid = vrrpChild(core.Cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("no vrrp child under n1's vigil")
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// n2 takes over, then n1 takes the VIP back once its successor's own timer runs out.
	l.waitHolder(vip4, "n2", 20*time.Second)
	l.waitHolder(vip4, "n1", 30*time.Second)

	ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, n1, killed, 150).IsZero() })
	resigned := firstFrom(ps, n1, killed, 0)
	if resigned.IsZero() {
		t.Fatal("no priority 0 advert from n1 after its vrrp child was killed")
	}
	// In this order on the wire: the resignation, n2's first advert as master, n1's advert
	// at 150 when it takes the VIP back.
	took := firstFrom(ps, n2, resigned, 100)
	back := firstFrom(ps, n1, killed, 150)
	if took.IsZero() || back.IsZero() || !took.Before(back) {
		t.Fatalf("after n1's resignation at %s: n2's first advert at %v, n1's at 150 at %v; want n2 first",
			resigned.Format("15:04:05.000"), took.Format("15:04:05.000"), back.Format("15:04:05.000"))
	}
	t.Logf("resigned %s after the kill, n2 advertised %s later, n1 back %s after the kill",
		resigned.Sub(killed).Round(time.Millisecond), took.Sub(resigned).Round(time.Millisecond), back.Sub(killed).Round(time.Millisecond))
}
