package kerneltest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// TestVMQuorum: with quorum 2 and hysteresis 1 over three real servers of weight 1, losing
// two keeps the service (hysteresis); losing the third puts the sorry server in alone and
// runs quorum_down; two coming back is not enough (3 is needed), the third is: quorum_up
// runs and the sorry server leaves. Each real server's notify_up and notify_down run, and
// lvs_notify_fifo gets keepalived's lines.
func TestVMQuorum(t *testing.T) {
	vm.Guest(t)
	// Each test has namespaces (and so IPVS tables) of its own: they overlap their waits.
	t.Parallel()
	tp := newTopo(t, "quo")
	sorry := tp.backends[0]
	sorry.body[8084] = "sorry"
	sorry.serve(t, 8084, nil)
	work := t.TempDir()
	out := filepath.Join(work, "events")
	note := filepath.Join(work, "note")
	if err := os.WriteFile(note, []byte("#!/bin/sh\necho \"$1\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(work, "lvs.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader from the start, so that the FIFO's lines wait in its buffer.
	rd, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var rs strings.Builder
	for _, b := range tp.backends {
		fmt.Fprintf(&rs, `    real_server %s 8080 {
        weight 1
        notify_up "%[2]s up-%[3]s"
        notify_down "%[2]s down-%[3]s"
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 2
            retry 1
            delay_before_retry 1
        }
    }
`, b.addr, note, b.name)
	}
	conf := fmt.Sprintf(`
global_defs {
    lvs_notify_fifo %s
}
virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    hysteresis 1
    quorum_up "%[3]s quorum_up"
    quorum_down "%[3]s quorum_down"
    sorry_server %[4]s 8084
%[5]s}
`, fifo, vipNAT, note, sorry.addr, rs.String())
	d := startVigil(t, tp.dir, conf)
	svc := "TCP " + vipNAT + ":80"
	addrs := func() []string {
		o, _ := tp.dir.try("ipvsadm", "-Ln")
		var a []string
		for _, l := range dests(o, svc) {
			a = append(a, strings.Fields(l)[0])
		}
		return a
	}
	table := func(want ...string) func() bool {
		return func() bool { return slices.Equal(addrs(), want) }
	}
	all := []string{"198.51.100.11:8080", "198.51.100.12:8080", "198.51.100.13:8080"}
	vsOf := func() *supervisor.VirtualServerStatus {
		st, err := d.status()
		if err != nil || len(st.VirtualServers) != 1 {
			return nil
		}
		return &st.VirtualServers[0]
	}
	alive := func(name string, want bool) func() bool {
		return func() bool {
			v := vsOf()
			if v == nil {
				return false
			}
			for _, r := range v.RealServers {
				if r.Address == name+":8080" {
					return r.Alive == want
				}
			}
			return false
		}
	}
	waitFor(t, 60*time.Second, "the three real servers are in", table(all...))
	waitFor(t, 60*time.Second, "vigil has quorum", func() bool { v := vsOf(); return v != nil && v.QuorumUp })
	for _, b := range tp.backends {
		waitFor(t, 60*time.Second, b.name+" checked alive", alive(b.addr, true))
	}
	lines := func() []string {
		b, _ := os.ReadFile(out)
		return strings.Fields(string(b))
	}
	// Quorum is gained at start, before any check has an answer, and its
	// script runs then; on a slow VM it can end after the checks are up.
	waitFor(t, 60*time.Second, "the start's quorum_up script", func() bool { return slices.Contains(lines(), "quorum_up") })
	start := len(lines())
	t.Logf("scripts at start: %q", lines())
	since := func() []string { return lines()[start:] }
	step := func(b *backend, fail bool, what string, wantTable []string, wantLines ...string) {
		t.Helper()
		b.setFail(8080, fail)
		waitFor(t, 60*time.Second, what, alive(b.addr, !fail))
		waitFor(t, 60*time.Second, what+": the table", table(wantTable...))
		// The scripts run after the change; the lines wanted appear, and no others.
		waitFor(t, 60*time.Second, what+": scripts "+strings.Join(wantLines, " "), func() bool {
			return len(since()) >= len(wantLines)
		})
		if got := since(); !sameSet(got, wantLines) {
			t.Fatalf("%s: scripts %q, want %q", what, got, wantLines)
		}
		start += len(wantLines)
	}
	b1, b2, b3 := tp.backends[0], tp.backends[1], tp.backends[2]
	step(b1, true, "b1 fails", all[1:], "down-b1")
	step(b2, true, "b2 fails (hysteresis keeps the quorum)", all[2:], "down-b2")
	if v := vsOf(); v == nil || !v.QuorumUp || v.SorryIn {
		t.Fatalf("with live weight 1 of quorum 2 hysteresis 1: %+v", v)
	}
	sorryDest := sorry.addr + ":8084"
	step(b3, true, "b3 fails: quorum lost", []string{sorryDest}, "down-b3", "quorum_down")
	if got := spread(t, tp.client, "http://"+vipNAT+"/", 10); got["sorry"] != 10 {
		t.Errorf("requests with the quorum lost: %v, want the sorry server's 10", got)
	}
	step(b1, false, "b1 recovers", []string{sorryDest}, "up-b1")
	step(b2, false, "b2 recovers (3 needed to regain)", []string{sorryDest}, "up-b2")
	if v := vsOf(); v == nil || v.QuorumUp || !v.SorryIn {
		t.Fatalf("with live weight 2 of quorum 2 hysteresis 1, quorum lost: %+v", v)
	}
	step(b3, false, "b3 recovers: quorum regained", all, "up-b3", "quorum_up")
	if got := spread(t, tp.client, "http://"+vipNAT+"/", 30); got["b1"] != 10 || got["b2"] != 10 || got["b3"] != 10 {
		t.Errorf("requests with the quorum back: %v", got)
	}

	buf := make([]byte, 1<<16)
	if err := syscall.SetNonblock(int(rd.Fd()), true); err != nil {
		t.Fatal(err)
	}
	n, _ := rd.Read(buf)
	got := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	t.Logf("lvs_notify_fifo:\n%s", buf[:n])
	vs := "[" + vipNAT + "]:tcp:80"
	rsLine := func(b *backend, s string) string { return "RS [" + b.addr + "]:tcp:8080 " + vs + " " + s }
	want := []string{rsLine(b1, "DOWN"), rsLine(b2, "DOWN"), rsLine(b3, "DOWN"), "VS " + vs + " DOWN",
		rsLine(b1, "UP"), rsLine(b2, "UP"), rsLine(b3, "UP"), "VS " + vs + " UP"}
	if i := slices.Index(got, want[0]); i < 0 || !slices.Equal(got[i:], want) {
		t.Errorf("lvs_notify_fifo lines %q,\nwant them to end with %q", got, want)
	}
}

// sameSet: a and b hold the same lines, in any order (the scripts of one change run
// concurrently).
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
