package vrrp_test

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// capture records what crosses the lab's bridge with tshark, for d, into a pcap file.
func (l *testLab) capture(d time.Duration) (file string, wait func()) {
	l.t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		l.t.Skip("tshark is not installed (make test installs it)")
	}
	file = filepath.Join(l.dir, "bridge.pcap")
	ctx, cancel := context.WithTimeout(l.ctx, d+120*time.Second) // startTshark may take up to 90 s
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.Switch, "tshark", "-q", "-i", "br0",
		"-a", "duration:"+strings.TrimSuffix(d.String(), "s"), "-w", file, "-f", "ip proto 112 or ip6 proto 112 or arp or icmp6")
	done, werr := startTshark(l.t, cmd, cancel)
	return file, func() {
		defer cancel()
		<-done
		if *werr != nil {
			l.t.Fatalf("tshark: %v", *werr)
		}
	}
}

// startTshark starts cmd, a tshark capture, and returns once tshark says it is listening
// ("Capturing on ..." on its standard error). done is closed when tshark has exited, with
// the error of its Wait in *werr. When it does not start capturing, cancel is called (it
// may end cmd's context) and the test fails.
func startTshark(t *testing.T, cmd *exec.Cmd, cancel func()) (done <-chan struct{}, werr *error) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready, exited, waitErr := make(chan struct{}), make(chan struct{}), new(error)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Capturing on") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
		*waitErr = cmd.Wait()
		close(exited)
	}()
	select {
	case <-ready:
	case <-exited:
		cancel()
		t.Fatal("tshark exited before capturing")
	case <-time.After(90 * time.Second):
		// tshark (dumpcap and its dissector tables) takes about a second to start on an
		// idle machine and took over 15 s at a load of 20 on two cores: the bound only ends
		// a tshark that will never capture.
		cancel()
		t.Fatal("tshark did not start capturing within 90 s")
	}
	return exited, waitErr
}

func tsharkRead(t *testing.T, file string, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", append([]string{"-r", file}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // "Running as root ..." and the like, not data
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// TestWireFormatDissected captures vigil's own traffic in the lab and has Wireshark's dissector
// read it: VRRPv2 with PASS, VRRPv3 over IPv4 and IPv6, the gratuitous ARPs and the unsolicited
// neighbour advertisements of a takeover.
func TestWireFormatDissected(t *testing.T) {
	l := newLab(t, 2)
	// Long enough for n1's Master_Down_Interval (3.4 s), the second round of announcements
	// 1 s after its takeover, and a slow machine.
	file, wait := l.capture(10 * time.Second)
	garp := "    garp_master_delay 1\n    garp_master_repeat 2\n"
	auth := "    authentication {\n        auth_type PASS\n        auth_pass vigil\n    }\n"
	conf := func(prio int) string {
		return inst{name: "V2", vrid: 70, prio: prio, vip: "192.0.2.100/24", extra: garp + auth}.conf() +
			inst{name: "V3", vrid: 71, prio: prio, advert: "0.5", version: 3, vip: "192.0.2.101/24"}.conf() +
			inst{name: "V6", vrid: 72, prio: prio, advert: "0.5", version: 3, vip: "2001:db8::100/64", extra: garp}.conf()
	}
	// n2 only once n1 is master: started together, their Master_Down_Timers (3.41 s and
	// 3.61 s) can run out at the same moment on a busy machine, and both become master for
	// a moment (tshark then warns of a duplicate address, and n1 re-announces).
	l.start(0, conf(150))
	l.waitHolder(vip4, "n1", 15*time.Second)
	l.start(1, conf(100))
	wait()

	full := tsharkRead(t, file, "-V", "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-o", "ip.check_checksum:TRUE")
	for _, bad := range []string{"Malformed", "[Checksum Status: Bad]", "Expert Info (Error", "Expert Info (Warning"} {
		if strings.Contains(full, bad) {
			t.Errorf("tshark reports %q in vigil's traffic", bad)
		}
	}
	fields := tsharkRead(t, file, "-Y", "vrrp", "-T", "fields", "-E", "separator=|",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio",
		"-e", "vrrp.auth_type", "-e", "vrrp.auth_string", "-e", "vrrp.checksum.status", "-e", "ip.ttl", "-e", "ipv6.hlim")
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(fields), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 10 {
			continue
		}
		if f[7] != "1" {
			t.Errorf("checksum not good: %s", line)
		}
		if f[8] != "" && f[8] != "255" || f[9] != "" && f[9] != "255" {
			t.Errorf("TTL/hop limit not 255: %s", line)
		}
		if f[0] == "192.0.2.11" || strings.HasPrefix(f[1], "fe80::") {
			seen[f[2]+"/"+f[3]] = true
			if f[3] == "70" && (f[5] != "1" || f[6] != "vigil") {
				t.Errorf("v2 advert without the PASS password: %s", line)
			}
		}
	}
	for _, want := range []string{"2/70", "3/71", "3/72"} {
		if !seen[want] {
			t.Errorf("no advert version/VRID %s from the master in the capture:\n%s", want, fields)
		}
	}
	// Takeover announcements: 2 at once and 2 more after garp_master_delay.
	garps := tsharkRead(t, file, "-Y", "arp.isgratuitous && arp.src.proto_ipv4 == 192.0.2.100", "-T", "fields", "-e", "frame.time_relative")
	if n := len(strings.Fields(garps)); n != 4 {
		t.Errorf("%d gratuitous ARPs for 192.0.2.100, want 4 (2 + 2 after 1 s):\n%s", n, garps)
	}
	nas := tsharkRead(t, file, "-Y", "icmpv6.type == 136 && icmpv6.nd.na.target_address == 2001:db8::100 && icmpv6.nd.na.flag.o == 1", "-T", "fields", "-e", "ipv6.hlim")
	if n := len(strings.Fields(nas)); n != 4 {
		t.Errorf("%d unsolicited NAs for 2001:db8::100, want 4:\n%s", n, nas)
	}
}
