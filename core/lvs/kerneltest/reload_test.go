package kerneltest

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// echoConn is a long-lived connection through the VIP to an echo server.
type echoConn struct {
	t *testing.T
	c net.Conn
	n int
}

func (e *echoConn) ping() {
	e.t.Helper()
	e.n++
	msg := fmt.Sprintf("ping %d\n", e.n)
	e.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(e.c, msg); err != nil {
		e.t.Fatalf("long-lived connection, write %d: %v", e.n, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(e.c, buf); err != nil || string(buf) != msg {
		e.t.Fatalf("long-lived connection, echo %d: %q %v", e.n, buf, err)
	}
}

// connEntry is the kernel's connection table entry of the client's connection from local,
// as ipvsadm -Lnc lists it without its expiry: "PRO STATE SOURCE VIRTUAL DESTINATION".
func connEntry(t *testing.T, d netns, local string) string {
	t.Helper()
	for _, l := range strings.Split(d.exec(t, "ipvsadm", "-Lnc"), "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[3] == local {
			return strings.Join(append([]string{f[0]}, f[2:]...), " ")
		}
	}
	return ""
}

// activeConns is the ActiveConn column of each destination of the service in ipvsadm -Ln.
func activeConns(out, service string) map[string]string {
	res := map[string]string{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM"):
			in = f[0]+" "+f[1] == service
		case in && len(f) >= 6 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			res[f[1]] = f[4]
		}
	}
	return res
}

// TestVMReload: a reload that adds a real server (vigil reload), then one that changes its
// weight (SIGHUP), leave everything else as it was: a long-lived connection through the
// VIP keeps echoing, its entry in the kernel's connection table is the same, and its
// destination still counts it active (a destination deleted and added again would not).
func TestVMReload(t *testing.T) {
	vm.Guest(t)
	// Each test has namespaces (and so IPVS tables) of its own: they overlap their waits.
	t.Parallel()
	tp := newTopo(t, "rel")
	for _, b := range tp.backends {
		b.echo(t, 9000)
	}
	conf := func(servers int, w3 int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "virtual_server %s 90 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", vipNAT)
		for i, be := range tp.backends[:servers] {
			w := 1
			if i == 2 {
				w = w3
			}
			fmt.Fprintf(&b, "    real_server %s 9000 {\n        weight %d\n    }\n", be.addr, w)
		}
		b.WriteString("}\n")
		return b.String()
	}
	d := startVigil(t, tp.dir, conf(2, 1))
	svc := "TCP " + vipNAT + ":90"
	table := func(want ...string) func() bool {
		return func() bool {
			out, _ := tp.dir.try("ipvsadm", "-Ln")
			return slices.Equal(dests(out, svc), want)
		}
	}
	two := []string{"198.51.100.11:9000 Masq 1", "198.51.100.12:9000 Masq 1"}
	waitFor(t, 60*time.Second, "two real servers", table(two...))

	c, err := tp.client.dial(t.Context(), "tcp", vipNAT+":90")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &echoConn{t: t, c: c}
	e.ping()
	local := c.LocalAddr().String()
	entry := connEntry(t, tp.dir, local)
	if !strings.Contains(entry, "ESTABLISHED") {
		t.Fatalf("no established entry for %s in ipvsadm -Lnc: %q", local, entry)
	}
	dest := strings.Fields(entry)[4]
	t.Logf("the connection: %s", entry)
	before := tp.dir.exec(t, "ipvsadm", "-Ln")
	if got := activeConns(before, svc)[dest]; got != "1" {
		t.Fatalf("ActiveConn of %s before the reload: %q\n%s", dest, got, before)
	}

	d.rewrite(t, conf(3, 1))
	out, err := exec.Command(filepath.Join(binDir(t), "vigil"), "reload", "--control", d.sock()).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil reload: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "vigil reload adds b3", table(append(two, "198.51.100.13:9000 Masq 1")...))
	e.ping()
	d.rewrite(t, conf(3, 2))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "SIGHUP's reload sets b3's weight", table(append(two, "198.51.100.13:9000 Masq 2")...))
	for range 10 {
		e.ping()
	}
	if got := connEntry(t, tp.dir, local); got != entry {
		t.Errorf("the connection's entry after two reloads: %q, before %q", got, entry)
	}
	after := tp.dir.exec(t, "ipvsadm", "-Ln")
	if got := activeConns(after, svc)[dest]; got != "1" {
		t.Errorf("ActiveConn of %s after the reloads: %q\n%s", dest, got, after)
	}
	t.Logf("ipvsadm -Ln after the reloads:\n%s", after)
}
