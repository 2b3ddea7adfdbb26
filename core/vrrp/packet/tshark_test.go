package packet

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tsharkCase is one advert for the real Wireshark dissector, with what tshark must print for it.
type tsharkCase struct {
	name     string
	a        Advert
	src, dst netip.Addr
	opt      Options
}

func tsharkCases() []tsharkCase {
	pw := [8]byte{'s', 'e', 'c', 'r', 'e', 't'}
	uni := netip.MustParseAddr("192.168.1.2")
	ll := netip.MustParseAddr("fe80::100")
	return []tsharkCase{
		{"v2 PASS", Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthPass, AuthData: pw, Addrs: addrs4(2)}, src4, IPv4Group, Options{}},
		{"v2 none", Advert{Version: 2, VRID: 1, Priority: 255, Interval: 3 * time.Second, Addrs: addrs4(1)}, src4, IPv4Group, Options{}},
		{"v3 IPv4", Advert{Version: 3, VRID: 52, Priority: 150, Interval: 250 * time.Millisecond, Addrs: addrs4(3)}, src4, IPv4Group, Options{}},
		{"v3 IPv4 unicast", Advert{Version: 3, VRID: 53, Priority: 0, Interval: time.Second, Addrs: addrs4(1)}, src4, uni, Options{}},
		{"v3 IPv6", Advert{Version: 3, VRID: 54, Priority: 200, Interval: 40950 * time.Millisecond, Addrs: append([]netip.Addr{ll}, addrs6(2)...)}, src6, IPv6Group, Options{}},
		{"v3 IPv4 V3ChecksumAsV2", Advert{Version: 3, VRID: 55, Priority: 100, Interval: time.Second, Addrs: addrs4(2)}, src4, IPv4Group, Options{V3ChecksumAsV2: true}},
	}
}

// want returns the tshark fields (see tsharkFields) we encoded, formatted as tshark prints them.
func (c tsharkCase) want() []string {
	var v4, v6 []string
	for _, a := range c.a.Addrs {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	interval, shortInterval, auth, authStr := "", "", "", ""
	if c.a.Version == 2 {
		interval = fmt.Sprint(int(c.a.Interval / time.Second))
		auth = fmt.Sprint(c.a.AuthType)
		if c.a.AuthType == AuthPass {
			authStr = string(bytes.TrimRight(c.a.AuthData[:], "\x00"))
		}
	} else {
		shortInterval = fmt.Sprint(int(c.a.Interval / (10 * time.Millisecond)))
	}
	return []string{
		fmt.Sprint(c.a.Version), "1", fmt.Sprint(c.a.VRID), fmt.Sprint(c.a.Priority),
		fmt.Sprint(len(c.a.Addrs)), interval, shortInterval, auth, authStr,
		strings.Join(v4, ","), strings.Join(v6, ","),
		"1", // vrrp.checksum.status: 1 is Good (0 Bad, 2 Unverified)
	}
}

var tsharkFields = []string{
	"vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.addr_count",
	"vrrp.adver_int", "vrrp.short_adver_int", "vrrp.auth_type", "vrrp.auth_string",
	"vrrp.ip_addr", "vrrp.ipv6_addr", "vrrp.checksum.status",
}

func tshark(t *testing.T, pcap string, extra ...string) string {
	t.Helper()
	args := append([]string{"-r", pcap, "-n"}, extra...)
	cmd := exec.Command("tshark", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile, default preferences
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func writePcapFile(t *testing.T, name string, cases []tsharkCase, corrupt bool) string {
	t.Helper()
	var pkts [][]byte
	for _, c := range cases {
		payload, err := c.a.Marshal(c.src, c.dst, c.opt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if corrupt {
			payload[7] ^= 0x01
		}
		pkts = append(pkts, BuildIPPacket(c.src, c.dst, 255, payload))
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WritePcap(f, pkts); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTshark hands vigil's adverts to Wireshark's VRRP dissector, an implementation written
// independently of ours and of keepalived's, and checks it reads back what we encoded with a
// good checksum, a good IPv4 header checksum, and no expert warning.
func TestTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (Debian: apt-get install tshark); skipping the dissector cross-check")
	}
	var rfc, asV2 []tsharkCase
	for _, c := range tsharkCases() {
		if c.opt.V3ChecksumAsV2 {
			asV2 = append(asV2, c)
		} else {
			rfc = append(rfc, c)
		}
	}
	// Wireshark has one global switch for the v3 IPv4 checksum convention, so each convention
	// gets its own file. (tshark has no vrrp.check_checksum preference: VRRP checksums are
	// always verified.)
	runs := []struct {
		cases []tsharkCase
		pref  string
	}{
		{rfc, "vrrp.v3_checksum_as_in_v2:FALSE"},
		{asV2, "vrrp.v3_checksum_as_in_v2:TRUE"},
	}
	for i, r := range runs {
		pcap := writePcapFile(t, fmt.Sprintf("vigil-%d.pcap", i), r.cases, false)
		prefs := []string{"-o", r.pref, "-o", "ip.check_checksum:TRUE"}

		verbose := tshark(t, pcap, append(prefs, "-V")...)
		frames := strings.Split(verbose, "\nFrame ")
		if len(frames) != len(r.cases) {
			t.Fatalf("tshark printed %d frames, want %d:\n%s", len(frames), len(r.cases), verbose)
		}
		for j, fr := range frames {
			name := r.cases[j].name
			if !strings.Contains(fr, "Virtual Router Redundancy Protocol") {
				t.Errorf("%s: not dissected as VRRP:\n%s", name, fr)
			}
			for _, bad := range []string{"incorrect", "Bad", "Malformed", "Expert Info", "Unverified"} {
				if strings.Contains(fr, bad) {
					t.Errorf("%s: tshark output contains %q:\n%s", name, bad, fr)
				}
			}
			good := []string{"[Checksum Status: Good]"}
			if r.cases[j].src.Is4() { // IPv6 has no header checksum
				good = append(good, "[Header checksum status: Good]")
			}
			for _, good := range good {
				if !strings.Contains(fr, good) {
					t.Errorf("%s: tshark output lacks %q:\n%s", name, good, fr)
				}
			}
		}

		fieldArgs := append(prefs, "-T", "fields", "-E", "separator=|", "-E", "aggregator=,")
		for _, f := range tsharkFields {
			fieldArgs = append(fieldArgs, "-e", f)
		}
		lines := strings.Split(strings.TrimRight(tshark(t, pcap, fieldArgs...), "\n"), "\n")
		if len(lines) != len(r.cases) {
			t.Fatalf("tshark printed %d lines, want %d: %q", len(lines), len(r.cases), lines)
		}
		for j, c := range r.cases {
			t.Logf("%s: tshark fields %s", c.name, lines[j])
			got := strings.Split(lines[j], "|")
			want := c.want()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				for k := range tsharkFields {
					if k >= len(got) || got[k] != want[k] {
						t.Errorf("%s: %s = %q, want %q", c.name, tsharkFields[k], at(got, k), want[k])
					}
				}
			}
		}
	}

	// Control: the same adverts with one checksum bit flipped must be flagged, or the
	// assertions above prove nothing.
	pcap := writePcapFile(t, "corrupt.pcap", rfc, true)
	out := tshark(t, pcap, "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-V")
	if n := strings.Count(out, "[Checksum Status: Bad]"); n != len(rfc) {
		t.Errorf("tshark flagged %d of %d corrupted adverts:\n%s", n, len(rfc), out)
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<missing>"
}
