package vrrp_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Interop with FRR's vrrpd, a third VRRP implementation, which sends its adverts from the
// virtual MAC (a macvlan per virtual router), and with keepalived using use_vmac, which does
// too. The case that matters is a partition that heals: two masters then hear each other,
// and the adverts of a peer sent from the virtual MAC reach, on a node whose own VMAC is up,
// only that VMAC (the kernel's macvlan hands a frame carrying an up macvlan's MAC to it
// alone). A vigil that does not listen there never hears the other master, which hears
// vigil's lower priority and stays master too: a split brain that never heals.
//
// One lab per address family runs every case at once, one virtual router each: vigil on n1,
// FRR on n2, keepalived on n3 (when installed). VRRPv3: vigil plain, with use_vmac, and with
// use_vmac and vmac_xmit_base, each below and above its peer's priority; for IPv4 also
// VRRPv2 beside FRR, plain and with use_vmac. n1 is taken off
// the bridge (its link stays up) and put back; then every virtual router must have one
// master again, the higher-priority one, and keep it.

// peerCase is one virtual router between vigil and a peer.
type peerCase struct {
	vrid      int
	vigilPrio int
	peerPrio  int
	vigilVMAC string // vigil's use_vmac lines
	peer      string // "frr" or "keepalived"
	version   int    // 3 (advert_int 0.2 s) unless 2 (1 s: VRRPv2 counts whole seconds)
}

// advert is the advert interval of the case, as vigil's configuration writes it.
func (c peerCase) advert() string {
	if c.version == 2 {
		return "1"
	}
	return "0.2"
}

func (c peerCase) vrrpVersion() int {
	if c.version == 2 {
		return 2
	}
	return 3
}

func (c peerCase) String() string {
	how := "plain"
	if c.vigilVMAC != "" {
		how = strings.Join(strings.Fields(c.vigilVMAC), " ")
	}
	return fmt.Sprintf("VRID %d (VRRPv%d, vigil %s, prio %d; %s prio %d)", c.vrid, c.vrrpVersion(), how, c.vigilPrio, c.peer, c.peerPrio)
}

func (c peerCase) vip(v6 bool) netip.Prefix {
	if v6 {
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8::1:%d/64", c.vrid))
	}
	return netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", 100+c.vrid))
}

const (
	vmacLine     = "    use_vmac\n"
	vmacXmitLine = "    use_vmac\n    vmac_xmit_base\n"
)

func peerCases(withKA, v6 bool) []peerCase {
	var cs []peerCase
	vrid := 71
	for _, vm := range []string{"", vmacLine, vmacXmitLine} {
		for _, peerHigh := range []bool{true, false} {
			c := peerCase{vrid: vrid, vigilPrio: 200, peerPrio: 100, vigilVMAC: vm, peer: "frr"}
			if peerHigh {
				c.vigilPrio, c.peerPrio = 100, 200
			}
			cs = append(cs, c)
			vrid++
		}
	}
	if !v6 {
		// VRRPv2 (IPv4 only), plain and use_vmac.
		for _, vm := range []string{"", vmacLine} {
			for _, peerHigh := range []bool{true, false} {
				c := peerCase{vrid: vrid, vigilPrio: 200, peerPrio: 100, vigilVMAC: vm, peer: "frr", version: 2}
				if peerHigh {
					c.vigilPrio, c.peerPrio = 100, 200
				}
				cs = append(cs, c)
				vrid++
			}
		}
	}
	if !withKA {
		return cs
	}
	vrid = 81
	for _, vm := range []string{vmacLine, vmacXmitLine} {
		for _, peerHigh := range []bool{true, false} {
			c := peerCase{vrid: vrid, vigilPrio: 200, peerPrio: 100, vigilVMAC: vm, peer: "keepalived"}
			if peerHigh {
				c.vigilPrio, c.peerPrio = 100, 200
			}
			cs = append(cs, c)
			vrid++
		}
	}
	return cs
}

// frrConf is vrrpd's configuration for the FRR cases.
func frrConf(cs []peerCase, v6 bool) string {
	var b strings.Builder
	b.WriteString("interface eth0\n")
	for _, c := range cs {
		if c.peer != "frr" {
			continue
		}
		fam := "ip"
		if v6 {
			fam = "ipv6"
		}
		ms := 200
		if c.version == 2 {
			ms = 1000
		}
		fmt.Fprintf(&b, " vrrp %d version %d\n vrrp %d priority %d\n vrrp %d advertisement-interval %d\n vrrp %d %s %s\n",
			c.vrid, c.vrrpVersion(), c.vrid, c.peerPrio, c.vrid, ms, c.vrid, fam, c.vip(v6).Addr())
	}
	return b.String()
}

func TestInteropPeersPartitionIPv4(t *testing.T) { testPeersPartition(t, false) }
func TestInteropPeersPartitionIPv6(t *testing.T) { testPeersPartition(t, true) }

func testPeersPartition(t *testing.T, v6 bool) {
	if err := lab.FRRAvailable(); err != nil {
		t.Skipf("skipping FRR interop: %v", err)
	}
	_, kaErr := exec.LookPath("keepalived")
	withKA := kaErr == nil
	if !withKA {
		t.Log("keepalived is not installed: FRR cases only")
	}
	n := 2
	if withKA {
		n = 3
	}
	// newInteropLab skips without keepalived; this test runs FRR without it too.
	var l *ilab
	if withKA {
		l = newInteropLab(t, n)
	} else {
		l = &ilab{testLab: newLab(t, n)}
	}
	cs := peerCases(withKA, v6)

	// The peers first, each alone master of its virtual routers; then vigil joins.
	for _, c := range cs {
		if c.peer != "frr" {
			continue
		}
		fam := "4"
		if v6 {
			fam = "6"
		}
		if err := l.Nodes[1].AddFRRVMAC(l.ctx, fmt.Sprintf("frr%s-%d", fam, c.vrid), c.vrid, v6, c.vip(v6)); err != nil {
			t.Fatal(err)
		}
	}
	frr, err := l.Nodes[1].StartFRR(l.ctx, frrConf(cs, v6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("FRRLOG") != "" { // FRRLOG=1 go test -v -run Peers: what vrrpd said
			t.Logf("--- FRR vrrpd\n%s", frr.Output())
		}
		if t.Failed() {
			out := frr.Output()
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			t.Logf("--- FRR vrrpd\n%s", out)
		}
		if err := frr.Stop(); err != nil {
			t.Errorf("stop FRR: %v", err)
		}
	})
	var kaConf, vigilConf strings.Builder
	for _, c := range cs {
		vip := c.vip(v6).String()
		name := fmt.Sprintf("VI_%d", c.vrid)
		vigilConf.WriteString(inst{name: name, vrid: c.vrid, prio: c.vigilPrio, advert: c.advert(), version: c.vrrpVersion(), vip: vip, extra: c.vigilVMAC}.conf())
		if c.peer == "keepalived" {
			kaConf.WriteString(inst{name: name, vrid: c.vrid, prio: c.peerPrio, advert: c.advert(), version: c.vrrpVersion(), vip: vip, extra: vmacLine}.conf())
		}
	}
	if withKA {
		l.startKA(2, kaConf.String())
	}

	// peerMaster reports, per case, whether the peer is master: FRR by its own account (its
	// addresses stay on its macvlans), keepalived by the address it holds.
	peerMaster := func() map[int]bool {
		states, err := frr.States(l.ctx, v6)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]bool{}
		for _, c := range cs {
			switch c.peer {
			case "frr":
				m[c.vrid] = states[c.vrid] == "Master"
			case "keepalived":
				ok, err := l.Nodes[2].HasAddr(l.ctx, c.vip(v6).Addr())
				if err != nil {
					t.Fatal(err)
				}
				m[c.vrid] = ok
			}
		}
		return m
	}
	vigilMaster := func() map[int]bool {
		m := map[int]bool{}
		for _, c := range cs {
			ok, err := l.Nodes[0].HasAddr(l.ctx, c.vip(v6).Addr())
			if err != nil {
				t.Fatal(err)
			}
			m[c.vrid] = ok
		}
		return m
	}
	// wrong lists the cases whose masters are not what want says (vigil's, the peer's).
	wrong := func(want func(c peerCase) (vigil, peer bool)) []string {
		vm, pm := vigilMaster(), peerMaster()
		var bad []string
		for _, c := range cs {
			wv, wp := want(c)
			if vm[c.vrid] != wv || pm[c.vrid] != wp {
				bad = append(bad, fmt.Sprintf("%s: vigil master %v, %s master %v (want %v, %v)", c, vm[c.vrid], c.peer, pm[c.vrid], wv, wp))
			}
		}
		sort.Strings(bad)
		return bad
	}
	higherWins := func(c peerCase) (bool, bool) { return c.vigilPrio > c.peerPrio, c.peerPrio > c.vigilPrio }
	bothMaster := func(peerCase) (bool, bool) { return true, true }
	// waitFor waits (at most d, a bound for failure only) until no case is wrong.
	waitFor := func(what string, want func(peerCase) (bool, bool), d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			bad := wrong(want)
			if len(bad) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after %s:\n  %s", what, d, strings.Join(bad, "\n  "))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the peers alone on the bridge", func(peerCase) (bool, bool) { return false, true }, 20*time.Second)

	l.startVigil(0, vigilConf.String())
	waitFor("vigil joined", higherWins, 20*time.Second)

	// Partition: vigil's node off the bridge, its link up. Every side is master alone.
	if err := l.Nodes[0].Isolate(l.ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor("partitioned", bothMaster, 20*time.Second)
	// Heal: each pair of masters hears the other and the lower priority steps down.
	healed := time.Now()
	if err := l.Nodes[0].Isolate(l.ctx, false); err != nil {
		t.Fatal(err)
	}
	waitFor("healed (a split brain that does not end)", higherWins, 20*time.Second)
	t.Logf("healed: one master per virtual router %s after the partition ended, in %d cases", time.Since(healed).Round(10*time.Millisecond), len(cs))
	// And it stays so.
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		if bad := wrong(higherWins); len(bad) > 0 {
			t.Fatalf("after the heal:\n  %s", strings.Join(bad, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.checkClean()
}
