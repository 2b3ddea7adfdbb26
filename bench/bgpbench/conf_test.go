package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// TestVigilConfAccepted checks that vigil accepts the configurations the vigil side runs on
// (VIGIL_BIN: a vigil binary; the test skips without it), both modes, both nodes.
func TestVigilConfAccepted(t *testing.T) {
	bin := os.Getenv("VIGIL_BIN")
	if bin == "" {
		t.Skip("skipping: set VIGIL_BIN to a vigil binary to check the vigil side's configurations")
	}
	l := &lab.Lab{Nodes: []*lab.Node{
		{Name: "n1", Iface: "eth0", Addr4: netip.MustParsePrefix("198.51.100.2/29"), Gateway4: netip.MustParseAddr("198.51.100.1"), VIPIface: lab.VIPIface},
		{Name: "n2", Iface: "eth0", Addr4: netip.MustParsePrefix("198.51.100.10/29"), Gateway4: netip.MustParseAddr("198.51.100.9"), VIPIface: lab.VIPIface},
	}}
	b := &bench{lab: l, work: t.TempDir(), o: options{interval: time.Second}, vip: lab.RoutedVIP(1, false)}
	for _, mode := range []string{"anycast", "master"} {
		s := &vigilSide{bin: bin, mode: mode, gshut: 3}
		for i := range l.Nodes {
			conf := s.conf(b, i)
			if !strings.Contains(conf, "mode "+mode) {
				t.Fatalf("%s conf lacks its mode:\n%s", mode, conf)
			}
			p := filepath.Join(b.work, "keepalived.conf")
			if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-t", "-f", p).CombinedOutput(); err != nil {
				t.Errorf("%s, n%d: vigil -t: %v\n%s\n%s", mode, i+1, err, out, conf)
			}
		}
	}
}

func TestWithdrawLogged(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 2, 48, 24, 500_000_000, time.Local)
	peer, vip := netip.MustParseAddr("198.51.100.2"), netip.MustParsePrefix("203.0.113.65/32")
	log := "2026/12/08 02:48:24.400000 BGP: [RZMGQ-A03CG] 198.51.100.2(Unknown) rcvd UPDATE about 203.0.113.65/32 IPv4 unicast -- withdrawn\n" +
		"2026/12/08 02:48:24.714565 BGP: [RZMGQ-A03CG] 198.51.100.10(Unknown) rcvd UPDATE about 203.0.113.65/32 IPv4 unicast -- withdrawn\n" +
		"2026/12/08 02:48:24.814565 BGP: [RZMGQ-A03CG] 198.51.100.2(Unknown) rcvd UPDATE about 203.0.113.65/32 IPv4 unicast -- withdrawn\n"
	if got, want := withdrawLogged(log, peer, vip, t0), 314565*time.Microsecond; got != want {
		t.Errorf("withdrawLogged = %v, want %v (the first line of the peer after t0)", got, want)
	}
	if got := withdrawLogged(log, netip.MustParseAddr("198.51.100.18"), vip, t0); got != -1 {
		t.Errorf("withdrawLogged(another peer) = %v, want -1", got)
	}
}
