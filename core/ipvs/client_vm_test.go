package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
	"golang.org/x/sys/unix"
)

// The TestVM tests run in a kernel with IPVS, booted once for this test
// binary by internal/lab/vm; on the host they skip and Main runs them in the VM.
// ipvsadm, from the host's root, is the judge of what the kernel holds.
func TestMain(m *testing.M) {
	vm.Main(m, "^TestVM", vm.Config{Modules: []string{
		"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "ip_vs_mh", "ip_vs_lc", "ip_vs_pe_sip", "veth",
	}})
}

// openVM opens a Client in the VM and empties the kernel's table before and
// after the test, so that each test starts from nothing.
func openVM(t *testing.T) *Client {
	t.Helper()
	vm.Guest(t)
	c, err := Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	clearAll := func() {
		tab, _, err := c.Read()
		if err != nil {
			t.Errorf("Read: %v", err)
			return
		}
		if err := c.Flush(context.Background(), tab.Keys()); err != nil {
			t.Errorf("Flush: %v", err)
		}
	}
	clearAll()
	t.Cleanup(func() {
		clearAll()
		c.Close()
	})
	return c
}

// kitchenSink is one service of each kind vigil can program.
func kitchenSink() Table {
	t := Table{}
	add := func(s Service, ds ...Destination) {
		t.Add(s)
		for _, d := range ds {
			if err := t.AddDest(s.Key, d); err != nil {
				panic(err)
			}
		}
	}
	ap := netip.MustParseAddrPort
	dk := func(s string) DestKey { return DestKeyFrom(ap(s)) }
	add(Service{Key: AddrKey(TCP, ap("192.0.2.10:80")), Scheduler: "wrr"},
		Destination{Key: dk("198.51.100.1:80"), Method: DR, Weight: 3},
		Destination{Key: dk("198.51.100.2:80"), Method: DR, Weight: 2},
		Destination{Key: dk("198.51.100.3:80"), Method: DR, Weight: 1, UpperThreshold: 100, LowerThreshold: 10})
	add(Service{Key: AddrKey(UDP, ap("192.0.2.10:53")), Scheduler: "rr", Flags: FlagOnePacket},
		Destination{Key: dk("198.51.100.1:5353"), Method: NAT, Weight: 1})
	add(Service{Key: AddrKey(SCTP, ap("192.0.2.11:9000")), Scheduler: "lc"},
		Destination{Key: dk("198.51.100.4:9000"), Method: NAT, Weight: 5})
	add(Service{Key: AddrKey(TCP, ap("[2001:db8::10]:443")), Scheduler: "mh", Flags: FlagMHFallback | FlagMHPort},
		Destination{Key: dk("[2001:db8:1::1]:443"), Method: NAT, Weight: 1},
		Destination{Key: dk("[2001:db8:1::2]:443"), Method: DR, Weight: 0})
	add(Service{Key: AddrKey(TCP, ap("192.0.2.12:0")), Scheduler: "rr", Flags: FlagPersistent, Timeout: 360},
		Destination{Key: dk("198.51.100.5:0"), Method: DR, Weight: 1})
	add(Service{Key: FWMarkKey(IPv4, 7), Scheduler: "sh", Flags: FlagPersistent | FlagSHFallback | FlagSHPort, Timeout: 300, Netmask: 24},
		Destination{Key: dk("198.51.100.6:0"), Method: TUN, Weight: 1},
		Destination{Key: dk("198.51.100.7:80"), Method: TUN, Weight: 1, TunnelType: GUE, TunnelPort: 6080, TunnelFlags: TunnelChecksum},
		Destination{Key: dk("198.51.100.8:0"), Method: TUN, Weight: 1, TunnelType: GRE, TunnelFlags: TunnelRemoteChecksum},
		Destination{Key: dk("198.51.100.10:0"), Method: TUN, Weight: 1, TunnelType: GUE, TunnelPort: 7000})
	add(Service{Key: FWMarkKey(IPv6, 8), Scheduler: "wrr", Flags: FlagPersistent, Timeout: 60, Netmask: 64},
		Destination{Key: dk("[2001:db8:1::3]:0"), Method: DR, Weight: 2})
	add(Service{Key: AddrKey(UDP, ap("192.0.2.13:5060")), Scheduler: "rr", Flags: FlagPersistent, Timeout: 120, PE: "sip"},
		Destination{Key: dk("198.51.100.9:5060"), Method: DR, Weight: 1})
	return t
}

// ipvsadm runs ipvsadm and returns its output.
func ipvsadm(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		t.Fatalf("ipvsadm not found (apt-get install ipvsadm; .ci/deps.sh has it): %v", err)
	}
	out, err := exec.Command("ipvsadm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipvsadmTable is the kernel's table as ipvsadm -Ln shows it, with
// --tun-info for the tunnels and --thresholds for the thresholds.
func ipvsadmTable(t *testing.T) Table {
	t.Helper()
	out := ipvsadm(t, "-Ln", "--tun-info")
	tab, err := parseIpvsadm(out)
	if err != nil {
		t.Fatalf("parsing ipvsadm -Ln --tun-info: %v\n%s", err, out)
	}
	outT := ipvsadm(t, "-Ln", "--thresholds")
	thr, err := parseIpvsadm(outT)
	if err != nil {
		t.Fatalf("parsing ipvsadm -Ln --thresholds: %v\n%s", err, outT)
	}
	for k, v := range tab {
		for dk, d := range v.Dests {
			td := thr[k].Dests[dk]
			d.UpperThreshold, d.LowerThreshold = td.UpperThreshold, td.LowerThreshold
			v.Dests[dk] = d
		}
	}
	return tab
}

var (
	ipvsadmSvc  = regexp.MustCompile(`^(TCP|UDP|SCTP|FWM)\s+(\S+)(?:\s+(IPv6))?\s+(\S+)(.*)$`)
	ipvsadmDest = regexp.MustCompile(`^\s+->\s+(\S+)\s+(.*)$`)
)

// parseIpvsadm reads ipvsadm -Ln's listing. Its destination columns are
// taken from the header line, so that --thresholds reads too.
func parseIpvsadm(out string) (Table, error) {
	tab := Table{}
	var cols []string
	var cur ServiceKey
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "IP Virtual Server") {
			continue
		}
		// The destination columns are on the "->" header line (-Ln), or
		// on the "Prot" line when that has them alone (--thresholds).
		if strings.HasPrefix(line, "Prot ") {
			if f := strings.Fields(line); len(f) > 2 && f[2] != "Scheduler" {
				cols = f[2:]
			}
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "-> RemoteAddress") {
			if f := strings.Fields(line); len(f) > 2 {
				cols = f[2:]
			}
			continue
		}
		if m := ipvsadmSvc.FindStringSubmatch(line); m != nil {
			s, err := parseIpvsadmService(m)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			tab.Add(s)
			cur = s.Key
			continue
		}
		m := ipvsadmDest.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unexpected line %q", line)
		}
		if _, ok := tab[cur]; !ok {
			return nil, fmt.Errorf("destination before any service: %q", line)
		}
		ap, err := netip.ParseAddrPort(m[1])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		d := Destination{Key: DestKeyFrom(ap)}
		vals := strings.Fields(m[2])
		if len(vals) != len(cols) {
			return nil, fmt.Errorf("%q: %d values under %d columns %v", line, len(vals), len(cols), cols)
		}
		for i, col := range cols {
			n, _ := strconv.ParseUint(vals[i], 10, 32)
			switch col {
			case "Forward":
				switch vals[i] {
				case "Masq":
					d.Method = NAT
				case "Route":
					d.Method = DR
				case "Tunnel":
					d.Method = TUN
				default:
					return nil, fmt.Errorf("%q: forwarding %q", line, vals[i])
				}
			case "Weight":
				d.Weight = uint32(n)
			case "TunnelInfo":
				if err := parseTunnelInfo(&d, vals[i]); err != nil {
					return nil, fmt.Errorf("%q: %w", line, err)
				}
			case "Uthreshold":
				d.UpperThreshold = uint32(n)
			case "Lthreshold":
				d.LowerThreshold = uint32(n)
			}
		}
		tab.AddDest(cur, d)
	}
	return tab, nil
}

// parseTunnelInfo reads --tun-info's column: "n/a", "ipip", "gue:PORT",
// "gre", each kind but ipip with ":+c" (checksum) or ":r+c" (remote
// checksum) when set.
func parseTunnelInfo(d *Destination, v string) error {
	if v == "n/a" {
		return nil
	}
	f := strings.Split(v, ":")
	switch f[0] {
	case "ipip":
		d.TunnelType = IPIP
	case "gre":
		d.TunnelType = GRE
	case "gue":
		d.TunnelType = GUE
		if len(f) < 2 {
			return fmt.Errorf("tunnel %q without a port", v)
		}
		p, err := strconv.ParseUint(f[1], 10, 16)
		if err != nil {
			return fmt.Errorf("tunnel %q: %w", v, err)
		}
		d.TunnelPort = uint16(p)
		f = f[1:]
	default:
		return fmt.Errorf("tunnel %q", v)
	}
	for _, fl := range f[1:] {
		switch fl {
		case "+c":
			d.TunnelFlags |= TunnelChecksum
		case "r+c":
			d.TunnelFlags |= TunnelRemoteChecksum
		case "-c":
		default:
			return fmt.Errorf("tunnel %q: flag %q", v, fl)
		}
	}
	return nil
}

func parseIpvsadmService(m []string) (Service, error) {
	var s Service
	if m[1] == "FWM" {
		mark, err := strconv.ParseUint(m[2], 10, 32)
		if err != nil {
			return s, err
		}
		fam := IPv4
		if m[3] == "IPv6" {
			fam = IPv6
		}
		s.Key = FWMarkKey(fam, uint32(mark))
	} else {
		ap, err := netip.ParseAddrPort(m[2])
		if err != nil {
			return s, err
		}
		s.Key = AddrKey(map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}[m[1]], ap)
	}
	s.Scheduler = m[4]
	words := strings.Fields(strings.NewReplacer("(", " ", ")", " ", ",", " ").Replace(m[5]))
	for i := 0; i < len(words); i++ {
		next := func() string {
			if i+1 < len(words) {
				i++
				return words[i]
			}
			return ""
		}
		switch w := words[i]; w {
		case "sh-fallback", "mh-fallback", "flag-1":
			s.Flags |= FlagSched1
		case "sh-port", "mh-port", "flag-2":
			s.Flags |= FlagSched2
		case "flag-3":
			s.Flags |= FlagSched3
		case "ops":
			s.Flags |= FlagOnePacket
		case "persistent":
			s.Flags |= FlagPersistent
			n, err := strconv.ParseUint(next(), 10, 32)
			if err != nil {
				return s, fmt.Errorf("persistent: %w", err)
			}
			s.Timeout = uint32(n)
		case "mask":
			v := next()
			if a, err := netip.ParseAddr(v); err == nil && a.Is4() {
				b := a.As4()
				ones := 0
				for _, x := range b {
					for ; x&0x80 != 0; x <<= 1 {
						ones++
					}
				}
				s.Netmask = uint8(ones)
			} else if n, err := strconv.ParseUint(v, 10, 8); err == nil {
				s.Netmask = uint8(n)
			} else {
				return s, fmt.Errorf("mask %q", v)
			}
		case "pe":
			s.PE = next()
		default:
			return s, fmt.Errorf("unknown word %q", w)
		}
	}
	return s.normal(), nil
}

// check says whether the kernel holds want, as Read and as ipvsadm see it.
func check(t *testing.T, c *Client, want Table) {
	t.Helper()
	got, stats, err := c.Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !got.Equal(normalTable(want)) {
		t.Errorf("Read differs from what was applied; ops to fix it: %v", Diff(got, want))
	}
	for k, v := range got {
		if len(stats[k].Dests) != len(v.Dests) {
			t.Errorf("%v: stats for %d destinations, want %d", k, len(stats[k].Dests), len(v.Dests))
		}
	}
	if adm := ipvsadmTable(t); !adm.Equal(normalTable(want)) {
		t.Errorf("ipvsadm -Ln differs from what was applied; ops from it: %v\n%s", Diff(adm, want), ipvsadm(t, "-Ln", "--tun-info"))
	}
}

func apply(t *testing.T, c *Client, ops []Op) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Apply(ctx, ops); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// TestVMApply: every kind of service and destination goes in, reads back the
// same and shows in ipvsadm the same; then each in-place change is one op
// and reads back, and deletions leave the rest.
func TestVMApply(t *testing.T) {
	c := openVM(t)
	want := kitchenSink()
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	apply(t, c, Diff(nil, want))
	check(t, c, want)

	ap := netip.MustParseAddrPort
	web := AddrKey(TCP, ap("192.0.2.10:80"))
	rs2 := DestKeyFrom(ap("198.51.100.2:80"))
	for _, step := range []struct {
		name string
		edit func(Table)
		ops  int
	}{
		{"weight", func(w Table) { d := w[web].Dests[rs2]; d.Weight = 9; w[web].Dests[rs2] = d }, 1},
		{"inhibit", func(w Table) { d := w[web].Dests[rs2]; d.Weight = 0; w[web].Dests[rs2] = d }, 1},
		{"method and thresholds", func(w Table) {
			d := w[web].Dests[rs2]
			d.Method, d.UpperThreshold, d.LowerThreshold = NAT, 50, 5
			w[web].Dests[rs2] = d
		}, 1},
		{"tunnel type", func(w Table) {
			k := FWMarkKey(IPv4, 7)
			dk := DestKeyFrom(ap("198.51.100.6:0"))
			d := w[k].Dests[dk]
			d.TunnelType, d.TunnelPort = GUE, 5555
			w[k].Dests[dk] = d
		}, 1},
		{"scheduler", func(w Table) { s := w[web].Service; s.Scheduler = "rr"; w.Add(s) }, 1},
		{"mh to sh flags", func(w Table) {
			k := AddrKey(TCP, ap("[2001:db8::10]:443"))
			s := w[k].Service
			s.Scheduler, s.Flags = "sh", FlagSHPort
			w.Add(s)
		}, 1},
		{"persistence", func(w Table) {
			k := FWMarkKey(IPv4, 7)
			s := w[k].Service
			s.Timeout, s.Netmask = 900, 16
			w.Add(s)
		}, 1},
		{"persistence off", func(w Table) {
			k := AddrKey(TCP, ap("192.0.2.12:0"))
			s := w[k].Service
			s.Flags, s.Timeout = 0, 0
			w.Add(s)
		}, 1},
		{"persistence engine off", func(w Table) {
			k := AddrKey(UDP, ap("192.0.2.13:5060"))
			s := w[k].Service
			s.PE = ""
			w.Add(s)
		}, 1},
		{"persistence engine on", func(w Table) {
			k := AddrKey(UDP, ap("192.0.2.13:5060"))
			s := w[k].Service
			s.PE = "sip"
			w.Add(s)
		}, 1},
		{"real server out and in", func(w Table) {
			delete(w[web].Dests, rs2)
			w.AddDest(web, Destination{Key: DestKeyFrom(ap("198.51.100.20:8080")), Method: DR, Weight: 4})
		}, 2},
		{"a service goes", func(w Table) { delete(w, AddrKey(SCTP, ap("192.0.2.11:9000"))) }, 1},
		{"cross-family tunnel", func(w Table) {
			w.AddDest(web, Destination{Key: DestKeyFrom(ap("[2001:db8:1::9]:80")), Method: TUN, Weight: 1})
		}, 1},
	} {
		t.Run(step.name, func(t *testing.T) {
			have, _, err := c.Read()
			if err != nil {
				t.Fatal(err)
			}
			next := have.Clone()
			step.edit(next)
			ops := Diff(have, next)
			if len(ops) != step.ops {
				t.Errorf("%d ops, want %d: %v", len(ops), step.ops, ops)
			}
			apply(t, c, ops)
			check(t, c, next)
		})
	}
}

// TestVMErrors: the kernel's refusals come back with the op and what to do;
// the rest of the ops are applied.
func TestVMErrors(t *testing.T) {
	c := openVM(t)
	ap := netip.MustParseAddrPort
	bad := Service{Key: AddrKey(TCP, ap("192.0.2.20:80")), Scheduler: "nosuch"}
	good := Service{Key: AddrKey(TCP, ap("192.0.2.21:80")), Scheduler: "rr"}
	want := Table{}
	want.Add(bad)
	want.AddDest(bad.Key, Destination{Key: DestKeyFrom(ap("198.51.100.1:80")), Method: DR, Weight: 1})
	want.Add(good)
	want.AddDest(good.Key, Destination{Key: DestKeyFrom(ap("198.51.100.1:80")), Method: DR, Weight: 1})
	err := c.Apply(context.Background(), Diff(nil, want))
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply: %v, want an *ApplyError", err)
	}
	// One failure: the bad service; its destination is not tried.
	if len(ae.Failed) != 1 || ae.Failed[0].Op.Kind != AddService || ae.Failed[0].Op.Service.Key != bad.Key {
		t.Fatalf("failed ops: %v", err)
	}
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), `modprobe ip_vs_nosuch`) {
		t.Errorf("error %q: want ENOENT and what to load", err)
	}
	t.Logf("the error: %v", err)
	delete(want, bad.Key)
	check(t, c, want)

	// An existing service: EEXIST, named.
	err = c.Apply(context.Background(), []Op{{Kind: AddService, Service: good}})
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("adding twice: %v", err)
	}
	// A scheduler flag the kernel does not know is refused by Validate
	// before it gets there; an unknown persistence engine by the kernel.
	pe := good
	pe.PE = "nosuch"
	err = c.Apply(context.Background(), []Op{{Kind: UpdateService, Service: pe}})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "ip_vs_pe_nosuch") {
		t.Errorf("unknown persistence engine: %v", err)
	}
	check(t, c, want)
}

// TestVMFlush: Flush removes the services named and leaves one added by hand.
func TestVMFlush(t *testing.T) {
	c := openVM(t)
	want := kitchenSink()
	apply(t, c, Diff(nil, want))
	ipvsadm(t, "-A", "-t", "203.0.113.1:25", "-s", "rr")
	if err := c.Flush(context.Background(), want.Keys()); err != nil {
		t.Fatal(err)
	}
	// Flushing what is gone already is no error.
	if err := c.Flush(context.Background(), want.Keys()); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	got, _, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	hand := AddrKey(TCP, netip.MustParseAddrPort("203.0.113.1:25"))
	if len(got) != 1 || got[hand].Service.Scheduler != "rr" {
		t.Errorf("after Flush: %v, want only %v", got, hand)
	}
}

// TestVMStats: a connection attempt to a service shows in its counters.
func TestVMStats(t *testing.T) {
	c := openVM(t)
	ap := netip.MustParseAddrPort
	s := Service{Key: AddrKey(TCP, ap("192.0.2.30:80")), Scheduler: "rr"}
	rs := Destination{Key: DestKeyFrom(ap("198.51.100.30:80")), Method: NAT, Weight: 1}
	want := Table{}
	want.Add(s)
	want.AddDest(s.Key, rs)
	apply(t, c, Diff(nil, want))
	// The VIP on lo, so that a local connect reaches IPVS's LOCAL_OUT hook.
	if out, err := exec.Command("ip", "addr", "add", "192.0.2.30/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "addr", "del", "192.0.2.30/32", "dev", "lo").Run() })
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	conn, err := net.DialTimeout("tcp", "192.0.2.30:80", 2*time.Second)
	if err == nil {
		conn.Close()
	}
	// The kernel sums its per-CPU counters every two seconds (its rate
	// estimator's tick): wait for the connection to show, with a bound
	// for failure only.
	var st ServiceStats
	for deadline := time.Now().Add(time.Minute); ; {
		_, stats, err := c.Read()
		if err != nil {
			t.Fatal(err)
		}
		st = stats[s.Key]
		if st.Conns != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.Conns != 1 || st.Dests[rs.Key].Conns != 1 || st.InPackets == 0 {
		t.Errorf("after one connection attempt: service %+v, destination %+v; want 1 connection each\n%s",
			st.Stats, st.Dests[rs.Key], ipvsadm(t, "-Ln", "--stats"))
	}
}

var ipvsadmDaemon = regexp.MustCompile(`(master|backup) sync daemon \(mcast=(\S+), syncid=(\d+)(?:, maxlen=(\d+))?(?:, group=(\S+))?(?:, port=(\d+))?(?:, ttl=(\d+))?\)`)

// TestVMDaemon: sync daemons start, show in ipvsadm -L --daemon with their
// settings, refuse a second start and stop.
func TestVMDaemon(t *testing.T) {
	c := openVM(t)
	ctx := context.Background()
	link := fmt.Sprintf("vsync%d", time.Now().UnixNano()%100000)
	if out, err := exec.Command("ip", "link", "add", link, "type", "veth", "peer", "name", link+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	for _, l := range []string{link, link + "p"} {
		if out, err := exec.Command("ip", "link", "set", l, "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set up: %v: %s", err, out)
		}
	}
	t.Cleanup(func() {
		c.StopDaemon(ctx, Master)
		c.StopDaemon(ctx, Backup)
	})
	master := Daemon{State: Master, Interface: link, SyncID: 51, MaxLen: 1400, Port: 8849, TTL: 2, Group: netip.MustParseAddr("239.0.0.81")}
	backup := Daemon{State: Backup, Interface: link + "p", SyncID: 51}
	if err := c.StartDaemon(ctx, master); err != nil {
		t.Fatalf("StartDaemon master: %v", err)
	}
	if err := c.StartDaemon(ctx, backup); err != nil {
		t.Fatalf("StartDaemon backup: %v", err)
	}
	if err := c.StartDaemon(ctx, master); !errors.Is(err, unix.EEXIST) {
		t.Errorf("a second master: %v, want EEXIST", err)
	}
	ds, err := c.Daemons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0] != master || ds[1].State != Backup || ds[1].Interface != backup.Interface || ds[1].SyncID != 51 {
		t.Errorf("Daemons: %+v, want %+v and %+v (with the kernel's defaults)", ds, master, backup)
	}
	out := ipvsadm(t, "-Ln", "--daemon")
	t.Logf("Daemons: %+v\nipvsadm -Ln --daemon:\n%s", ds, out)
	ms := ipvsadmDaemon.FindAllStringSubmatch(out, -1)
	if len(ms) != 2 || ms[0][1] != "master" || ms[0][2] != link || ms[0][3] != "51" || ms[1][1] != "backup" || ms[1][2] != link+"p" {
		t.Errorf("ipvsadm -Ln --daemon:\n%s", out)
	}
	if ms != nil && ms[0][4] != "" && (ms[0][4] != "1400" || ms[0][5] != "239.0.0.81" || ms[0][6] != "8849" || ms[0][7] != "2") {
		t.Errorf("master's settings in ipvsadm: %q", ms[0][0])
	}
	if err := c.StopDaemon(ctx, Master); err != nil {
		t.Fatal(err)
	}
	if err := c.StopDaemon(ctx, Master); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
	ds, err = c.Daemons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != Backup {
		t.Errorf("after stopping the master: %+v", ds)
	}
	if out := ipvsadm(t, "-Ln", "--daemon"); strings.Contains(out, "master") {
		t.Errorf("ipvsadm still shows a master:\n%s", out)
	}
	if err := c.StopDaemon(ctx, Backup); err != nil {
		t.Fatal(err)
	}
	if ds, err := c.Daemons(ctx); err != nil || len(ds) != 0 {
		t.Errorf("after stopping both: %+v, %v", ds, err)
	}
}
