package notify

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/lvs"
)

// TestLVSScriptsAndFIFOs: the load balancer's notifications run the real servers' notify_up
// and notify_down and the virtual server's quorum_up and quorum_down, one at a time in their
// order, and write keepalived's lines to notify_fifo and lvs_notify_fifo, not to
// vrrp_notify_fifo (which gets VRRP's lines only); a server the configuration lacks is
// neither run nor written. The shutdown's notifications are taken after Stop.
func TestLVSScriptsAndFIFOs(t *testing.T) {
	dir := t.TempDir()
	fifos := map[string]string{}
	for _, name := range []string{"notify", "vrrp", "lvs"} {
		p := filepath.Join(dir, name+".fifo")
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		fifos[name] = p
	}
	out := filepath.Join(dir, "out")
	w := func(name string) string { return writer(t, dir, name, out) }
	cfg := parse(t, "global_defs {\n notify_fifo "+fifos["notify"]+"\n vrrp_notify_fifo "+fifos["vrrp"]+"\n lvs_notify_fifo "+fifos["lvs"]+"\n}\n"+
		instance("VI_1", 1, "")+
		`virtual_server 192.0.2.100 80 {
 lb_algo rr
 lb_kind NAT
 protocol TCP
 quorum_up "`+w("quorum_up")+` vs1"
 quorum_down "`+w("quorum_down")+` vs1"
 real_server 192.0.2.11 8080 {
  weight 1
  notify_up "`+w("rs_up")+` rs1"
  notify_down "`+w("rs_down")+` rs1"
 }
 real_server 192.0.2.12 8080 {
  weight 1
 }
}
`)
	d := New(cfg, Options{Log: testLog(t)})
	defer d.Close()
	notifyR, vrrpR, lvsR := readFIFO(t, fifos["notify"]), readFIFO(t, fifos["vrrp"]), readFIFO(t, fifos["lvs"])

	const vs = "TCP 192.0.2.100:80"
	d.LVS(LVSEvent{Kind: lvs.QuorumUp, Service: vs})
	d.LVS(LVSEvent{Kind: lvs.RealDown, Service: vs, Real: "192.0.2.11:8080"})
	d.LVS(LVSEvent{Kind: lvs.RealDown, Service: vs, Real: "192.0.2.12:8080"}) // no script: a line only
	d.LVS(LVSEvent{Kind: lvs.QuorumDown, Service: vs})
	d.LVS(LVSEvent{Kind: lvs.RealUp, Service: vs, Real: "192.0.2.99:8080"})               // not configured
	d.LVS(LVSEvent{Kind: lvs.QuorumUp, Service: "TCP 192.0.2.200:80"})                    // not configured
	d.Transition(Transition{Instance: "VI_1", From: "INIT", To: "MASTER", Priority: 100}) // VRRP's line
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	d.LVS(LVSEvent{Kind: lvs.RealUp, Service: vs, Real: "192.0.2.11:8080", Stopping: true})
	if err := d.WaitLVS(ctx); err != nil {
		t.Fatal(err)
	}

	lvsLines := []string{
		"VS [192.0.2.100]:tcp:80 UP",
		"RS [192.0.2.11]:tcp:8080 [192.0.2.100]:tcp:80 DOWN",
		"RS [192.0.2.12]:tcp:8080 [192.0.2.100]:tcp:80 DOWN",
		"VS [192.0.2.100]:tcp:80 DOWN",
	}
	vrrpLines := []string{`INSTANCE "VI_1" MASTER 100`, `INSTANCE "VI_1" STOP 100`}
	for _, want := range append(append(slices.Clone(lvsLines), vrrpLines...), "RS [192.0.2.11]:tcp:8080 [192.0.2.100]:tcp:80 UP") {
		if got := notifyR.next(t); got != want {
			t.Errorf("notify_fifo line %q, want %q", got, want)
		}
	}
	for _, want := range append(lvsLines, "RS [192.0.2.11]:tcp:8080 [192.0.2.100]:tcp:80 UP") {
		if got := lvsR.next(t); got != want {
			t.Errorf("lvs_notify_fifo line %q, want %q", got, want)
		}
	}
	for _, want := range vrrpLines {
		if got := vrrpR.next(t); got != want {
			t.Errorf("vrrp_notify_fifo line %q, want %q", got, want)
		}
	}
	select {
	case l := <-vrrpR.lines:
		t.Errorf("vrrp_notify_fifo got %q besides VRRP's lines", l)
	default:
	}
	// keepalived runs these scripts as written, without arguments of its own.
	want := []string{"quorum_up vs1", "rs_down rs1", "quorum_down vs1", "rs_up rs1"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("scripts ran as %q, want %q", got, want)
	}
}

// TestLVSAfterReload: the last notifications of a real or virtual server that a reload
// removed come after the new dispatcher took over (the check process reports them when it
// applies the reload); they run the old configuration's scripts.
func TestLVSAfterReload(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	w := func(name string) string { return writer(t, dir, name, out) }
	vs := func(addr, reals string) string {
		return "virtual_server " + addr + " 80 {\n lb_algo rr\n protocol TCP\n quorum_down \"" + w("quorum_down") + " " + addr + "\"\n" + reals + "}\n"
	}
	real := func(addr string) string {
		return " real_server " + addr + " 80 {\n  notify_down \"" + w("rs_down") + " " + addr + "\"\n }\n"
	}
	old := New(parse(t, vs("192.0.2.100", real("192.0.2.11")+real("192.0.2.12"))+vs("192.0.2.101", real("192.0.2.13"))), Options{Log: testLog(t)})
	d := New(parse(t, vs("192.0.2.100", real("192.0.2.11"))), Options{Log: testLog(t)})
	defer d.Close()
	d.Adopt(old)
	old.Close()
	d.LVS(LVSEvent{Kind: lvs.RealDown, Service: "TCP 192.0.2.100:80", Real: "192.0.2.12:80"})
	d.LVS(LVSEvent{Kind: lvs.RealDown, Service: "TCP 192.0.2.101:80", Real: "192.0.2.13:80"})
	d.LVS(LVSEvent{Kind: lvs.QuorumDown, Service: "TCP 192.0.2.101:80"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.WaitLVS(ctx); err != nil {
		t.Fatal(err)
	}
	// Each virtual server's in order; two virtual servers' scripts run side by side.
	got := lines(out)
	sorted := slices.Sorted(slices.Values(got))
	want := []string{"quorum_down 192.0.2.101", "rs_down 192.0.2.12", "rs_down 192.0.2.13"}
	if !slices.Equal(sorted, want) || slices.Index(got, "rs_down 192.0.2.13") > slices.Index(got, "quorum_down 192.0.2.101") {
		t.Errorf("scripts ran as %q, want %q with 192.0.2.101's in order", got, want)
	}
}

// TestLVSReloadsForgetRemovedServers: whether a real server is up is kept across reloads for
// the servers of the configuration, and for those a reload removed until their last
// notification (or the next reload): many reloads that each add a server and remove one
// leave as many states as the configuration has servers.
func TestLVSReloadsForgetRemovedServers(t *testing.T) {
	const svc = "TCP 192.0.2.100:80"
	conf := func(first, n int) (*config.Config, []string) {
		text := "virtual_server 192.0.2.100 80 {\n lb_algo rr\n protocol TCP\n"
		var keys []string
		for i := first; i < first+n; i++ {
			addr := fmt.Sprintf("198.51.100.%d", i)
			text += " real_server " + addr + " 80 {\n }\n"
			keys = append(keys, lvsKey(svc, addr+":80"))
		}
		return parse(t, text+"}\n"), keys
	}
	states := func(d *Dispatcher) []string {
		d.mu.Lock()
		defer d.mu.Unlock()
		return slices.Sorted(maps.Keys(d.rsUp))
	}
	cfg, _ := conf(1, 3)
	d := New(cfg, Options{Log: testLog(t)})
	for i := 2; i < 60; i++ {
		cfg, keys := conf(i, 3)
		next := New(cfg, Options{Log: testLog(t)})
		next.Adopt(d)
		d.Close()
		d = next
		removed := fmt.Sprintf("198.51.100.%d:80", i-1)
		if i%2 == 0 {
			// The removed server's last notification comes: it is forgotten at once.
			d.LVS(LVSEvent{Kind: lvs.RealDown, Service: svc, Real: removed})
			if got := states(d); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
				t.Fatalf("reload %d: states of %q; want the configuration's %q", i, got, keys)
			}
			continue
		}
		// No notification: it is kept until the next reload.
		want := slices.Sorted(slices.Values(append(keys, lvsKey(svc, removed))))
		if got := states(d); !slices.Equal(got, want) {
			t.Fatalf("reload %d: states of %q; want %q", i, got, want)
		}
	}
	d.Close()
}
