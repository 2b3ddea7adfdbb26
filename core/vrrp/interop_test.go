package vrrp_test

import (
	"bufio"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// Interop tests: vigil and Debian's keepalived as live peers on the same lab bridge. Who holds
// the virtual address is asserted with `ip addr`; timings and the wire format come from a
// tshark capture on the lab's bridge (inside the lab's switch namespace only); both sides'
// logs are scanned for complaints about the other's packets.

// kaComplaint matches keepalived log lines about packets it did not like: "bad checksum",
// "invalid passwd", "ip ttl", "interval mismatch", "bogus VRRP packet", "not present in
// MASTER advert", "unknown auth type" and the like, and any error.
var kaComplaint = regexp.MustCompile(`(?i)bad|invalid|mismatch|bogus|wrong|not present|unknown|discard|ignor|error|fail|ttl|checksum|passw|malformed|too short`)

// kaBenign are keepalived lines kaComplaint would match that are ordinary protocol
// behaviour: a backup with preemption ignores a lower-priority master (RFC 5798 6.4.2).
var kaBenign = regexp.MustCompile(`received lower priority \(\d+\) advert from \S+ - discarding`)

// kaComplains reports whether a keepalived log line complains about a packet or an error.
// Lines naming the test's own files (command line, configuration file) are skipped: test
// names such as WrongAuthPass would match otherwise.
func kaComplains(line, dir string) bool {
	return !strings.Contains(line, dir) && kaComplaint.MatchString(line) && !kaBenign.MatchString(line)
}

var kaSeq atomic.Int64

// ilab is a namespace lab with keepalived and tshark on top of the vigil helpers.
type ilab struct {
	*testLab
	mu   sync.Mutex
	ka   []*kaRun
	vg   []*lab.Proc
	capt *capture
	// kaTolerate, when set, matches the lines keepalived -t may print without the test
	// refusing the file (see kaExpected).
	kaTolerate *regexp.Regexp
}

type kaRun struct {
	*lab.Proc
	node string
	conf string
	pids map[int]bool // parent and VRRP child, from keepalived's own pid files
}

// notePIDs remembers the PIDs keepalived wrote to its pid files (parent and VRRP child).
func (r *kaRun) notePIDs() {
	base := strings.TrimSuffix(r.conf, ".conf")
	for _, f := range []string{base + ".pid", base + "-vrrp.pid"} {
		if b, err := os.ReadFile(f); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				r.pids[pid] = true
			}
		}
	}
}

// kill ends keepalived's whole process group at once (kill -9), after noting its PIDs.
func (r *kaRun) kill() {
	r.notePIDs()
	r.Kill()
}

func newInteropLab(t *testing.T, n int) *ilab {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived is not installed")
	}
	il := &ilab{}
	// Registered before newLab, so it runs after the lab has been closed: nothing this test
	// started may survive it.
	t.Cleanup(il.checkSurvivors)
	il.testLab = newLab(t, n)
	// Runs before the lab is closed: note the PIDs of keepalived's children while its pid
	// files are still there.
	t.Cleanup(func() {
		il.mu.Lock()
		defer il.mu.Unlock()
		for _, r := range il.ka {
			r.notePIDs()
		}
	})
	t.Cleanup(func() {
		if il.capt != nil {
			il.capt.stop()
		}
	})
	return il
}

// startKA writes a keepalived configuration for node i and runs keepalived (VRRP only, in the
// foreground, logging to the console) with pid files of its own in the test's directory.
func (l *ilab) startKA(i int, conf string) *kaRun {
	l.t.Helper()
	nd := l.Nodes[i]
	base := filepath.Join(l.dir, fmt.Sprintf("ka-%s-%d", nd.Name, kaSeq.Add(1)))
	path := base + ".conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	// Checked in the node's namespace: the interfaces the file names are there.
	if out, err := nd.Exec(l.ctx, "keepalived", "-t", "-f", path); err != nil && !l.kaExpected(out) {
		l.t.Fatalf("keepalived rejects the configuration for %s: %v\n%s\n%s", nd.Name, err, out, conf)
	}
	p, err := nd.Start("keepalived", "-n", "-l", "-D", "-P", "-G", "-f", path,
		"-p", base+".pid", "-r", base+"-vrrp.pid")
	if err != nil {
		l.t.Fatal(err)
	}
	r := &kaRun{Proc: p, node: nd.Name, conf: path, pids: map[int]bool{p.Cmd.Process.Pid: true}}
	l.mu.Lock()
	l.ka = append(l.ka, r)
	l.mu.Unlock()
	return r
}

// kaExpected reports whether every line of keepalived -t's output is one the test expects
// (kaTolerate): keepalived reports what it ignores as configuration errors, and the test
// may be about what it does then.
func (l *ilab) kaExpected(out string) bool {
	if l.kaTolerate == nil {
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !l.kaTolerate.MatchString(line) {
			return false
		}
	}
	return true
}

// startVigil runs vigil on node i and remembers it for the log checks.
func (l *ilab) startVigil(i int, conf string) *lab.Proc {
	l.t.Helper()
	p := l.start(i, conf)
	l.mu.Lock()
	l.vg = append(l.vg, p)
	l.mu.Unlock()
	return p
}

// stopTERM sends SIGTERM and waits for a clean exit.
func (l *ilab) stopTERM(p *lab.Proc) time.Time {
	l.t.Helper()
	at := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		l.t.Fatal(err)
	}
	return at
}

// checkClean fails the test if keepalived logged complaints or vigil dropped adverts.
func (l *ilab) checkClean() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.ka {
		for _, line := range strings.Split(r.Output(), "\n") {
			if kaComplains(line, l.dir) {
				l.t.Errorf("keepalived on %s complains: %s", r.node, line)
			}
		}
	}
	for _, p := range l.vg {
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, "advert dropped") || strings.Contains(line, "[ERROR]") {
				l.t.Errorf("vigil: %s", line)
			}
		}
	}
}

// checkSurvivors runs after the lab is closed: no keepalived or vigil process of this test may
// still run. Processes are found by PID and by their command line naming this test's files,
// never by a bare program name.
func (l *ilab) checkSurvivors() {
	if l.testLab == nil {
		return
	}
	t := l.t
	out, _ := exec.Command("pgrep", "-a").CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || !strings.Contains(line, l.dir) {
			continue
		}
		t.Errorf("keepalived survived the test: %s", line)
		if pid, err := strconv.Atoi(strings.Fields(line)[0]); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// By PID: a process that still runs with this run's configuration file on its command
	// line (a zombie has none) survived.
	for _, r := range l.ka {
		for pid := range r.pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), r.conf) {
				t.Errorf("keepalived pid %d survived the test", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var checked []int
	for _, r := range l.ka {
		for pid := range r.pids {
			checked = append(checked, pid)
		}
	}
	t.Logf("no keepalived left running (pgrep -a keepalived; PIDs checked %v)", checked)
	if l.capt != nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", l.capt.cmd.Process.Pid)); err == nil && strings.Contains(string(b), "tshark") {
			t.Errorf("tshark pid %d survived the test", l.capt.cmd.Process.Pid)
		}
	}
}

// capture runs tshark on the lab's bridge (in the switch namespace) and dissects every VRRP
// packet into one line of fields.
type capture struct {
	cmd  *exec.Cmd
	path string
	done chan struct{}
}

type pkt struct {
	at      time.Time
	src     netip.Addr
	dst     netip.Addr
	ttl     int
	version int
	vrid    int
	prio    int
	csum    string // tshark's checksum status: 1 good, 0 bad, 2 unverified
	auth    string
}

func (l *ilab) startCapture() {
	l.t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		l.t.Log("tshark is not installed: no capture")
		return
	}
	c := &capture{path: filepath.Join(l.dir, "capture.txt"), done: make(chan struct{})}
	f, err := os.Create(c.path)
	if err != nil {
		l.t.Fatal(err)
	}
	errPath := filepath.Join(l.dir, "tshark.err")
	ef, err := os.Create(errPath)
	if err != nil {
		l.t.Fatal(err)
	}
	fields := []string{"frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.ttl", "ipv6.hlim",
		"vrrp.version", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.checksum.status", "vrrp.auth_string"}
	args := []string{"netns", "exec", l.Switch, "tshark", "-i", "br0", "-l", "-n", "-f", "ip proto 112 or ip6 proto 112",
		"-Y", "vrrp", "-T", "fields", "-E", "separator=|"}
	for _, fl := range fields {
		args = append(args, "-e", fl)
	}
	c.cmd = exec.Command("ip", args...)
	c.cmd.Stdout, c.cmd.Stderr = f, ef
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); f.Close(); ef.Close(); close(c.done) }()
	l.capt = c
	// Wait until tshark reports the capture is live.
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(errPath)
		if strings.Contains(string(b), "Capturing on") {
			return
		}
		select {
		case <-c.done:
			l.t.Fatalf("tshark exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("tshark did not start: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *capture) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// packets returns what the capture has dissected so far (after a short flush delay).
func (l *ilab) packets() []pkt {
	time.Sleep(300 * time.Millisecond)
	return l.readPackets()
}

// packetsUntil waits (at most 3 s) until the capture holds what ok looks for: tshark's
// output lags the wire a little.
func (l *ilab) packetsUntil(ok func([]pkt) bool) []pkt {
	deadline := time.Now().Add(3 * time.Second)
	for {
		ps := l.readPackets()
		if l.capt == nil || ok(ps) || time.Now().After(deadline) {
			return ps
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *ilab) readPackets() []pkt {
	if l.capt == nil {
		return nil
	}
	f, err := os.Open(l.capt.path)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	var ps []pkt
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "|")
		if len(fs) < 12 {
			continue
		}
		sec, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		whole, frac := math.Modf(sec)
		p := pkt{at: time.Unix(int64(whole), int64(frac*1e9)), csum: fs[10], auth: fs[11]}
		p.src, _ = netip.ParseAddr(first(fs[1], fs[2]))
		p.dst, _ = netip.ParseAddr(first(fs[3], fs[4]))
		p.ttl, _ = strconv.Atoi(first(fs[5], fs[6]))
		p.version, _ = strconv.Atoi(fs[7])
		p.vrid, _ = strconv.Atoi(fs[8])
		p.prio, _ = strconv.Atoi(fs[9])
		ps = append(ps, p)
	}
	return ps
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkWire asserts that every VRRP packet on the bridge verified (tshark's checksum status)
// and that multicast adverts carry TTL/hop limit 255 and the expected version.
func (l *ilab) checkWire(version int) {
	l.t.Helper()
	ps := l.packets()
	if l.capt != nil && len(ps) == 0 {
		l.t.Error("the capture saw no VRRP packets")
	}
	bySrc := map[netip.Addr]int{}
	for _, p := range ps {
		bySrc[p.src]++
		if p.csum != "1" {
			l.t.Errorf("tshark: checksum status %q (1 = good) in advert from %v at %s", p.csum, p.src, p.at.Format("15:04:05.000"))
		}
		if p.dst.IsMulticast() && p.ttl != 255 {
			l.t.Errorf("tshark: multicast advert from %v with TTL/hop limit %d", p.src, p.ttl)
		}
		if p.version != version {
			l.t.Errorf("tshark: VRRPv%d advert from %v, want v%d", p.version, p.src, version)
		}
	}
	l.t.Logf("capture: %d VRRP packets, by source %v", len(ps), bySrc)
	if os.Getenv("DUMPCAP") != "" {
		b, _ := os.ReadFile(l.capt.path)
		l.t.Logf("%s", b)
	}
}

// lastFrom is the time of the last advert from src before t (zero if none).
func lastFrom(ps []pkt, src netip.Addr, before time.Time) time.Time {
	var at time.Time
	for _, p := range ps {
		if p.src == src && p.at.Before(before) {
			at = p.at
		}
	}
	return at
}

// firstFrom is the first advert from src after t with priority prio (-1: any).
func firstFrom(ps []pkt, src netip.Addr, after time.Time, prio int) time.Time {
	for _, p := range ps {
		if p.src == src && p.at.After(after) && (prio < 0 || p.prio == prio) {
			return p.at
		}
	}
	return time.Time{}
}

// waitHas waits until node i carries addr (others may carry it too) and returns how long it took.
func (l *ilab) waitHas(i int, addr netip.Addr, timeout time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		ok, err := l.Nodes[i].HasAddr(l.ctx, addr)
		if err != nil {
			l.t.Fatal(err)
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("%s does not hold %s after %s", l.Nodes[i].Name, addr, timeout)
	return 0
}

// waitState waits for keepalived to log entering state (MASTER, BACKUP) at least n times.
func waitState(t *testing.T, r *kaRun, state string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for strings.Count(r.Output(), "Entering "+state+" STATE") < n {
		if time.Now().After(deadline) {
			t.Fatalf("keepalived on %s did not enter %s state (%d times) within %s", r.node, state, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mdi is Master_Down_Interval: 3 x advert + skew, skew = (256-prio)/256 x advert (RFC 5798;
// RFC 3768 uses (256-prio)/256 s, the same for a 1 s advert).
func mdi(advert time.Duration, prio int) time.Duration {
	return 3*advert + skew(advert, prio)
}

// takeoverReasons waits until vigil's core has logged n transitions to MASTER (core's
// lines, "vigil: state change:", not the vrrp child's it relays) and returns their reasons.
func takeoverReasons(t *testing.T, p *lab.Proc, n int) []string {
	t.Helper()
	var reasons []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		reasons = nil
		for line := range strings.Lines(p.Output()) {
			if !strings.Contains(line, " vigil: state change:") || !strings.Contains(line, "to=MASTER") {
				continue
			}
			_, r, _ := strings.Cut(line, "reason=")
			if strings.HasPrefix(r, `"`) {
				r, _, _ = strings.Cut(r[1:], `"`)
			} else {
				r, _, _ = strings.Cut(r, " ")
			}
			reasons = append(reasons, strings.TrimSpace(r))
		}
		if len(reasons) >= n {
			return reasons
		}
		if time.Now().After(deadline) {
			t.Fatalf("vigil logged %d transitions to MASTER (%q), want %d:\n%s", len(reasons), reasons, n, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func skew(advert time.Duration, prio int) time.Duration {
	return time.Duration(256-prio) * advert / 256
}

const passAuth = "    authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }\n"

// vigilMasterKABackup: vigil on n1 (150) is master, keepalived on n2 (100) backup and stays
// so; SIGTERM vigil hands over to keepalived because of its priority 0 advert (keepalived's
// log says it heard one before it entered MASTER); restarting vigil preempts back.
func vigilMasterKABackup(t *testing.T, l *ilab, vip netip.Addr, a, b inst, advert time.Duration) {
	vcfg := a.conf()
	pv := l.startVigil(0, vcfg)
	// keepalived joins once vigil is master. Started together, both begin as backups and the
	// one whose Master_Down_Timer ends first takes over for a moment, which on a loaded
	// machine can be keepalived (its process starts faster): a race of the test, not a
	// protocol question.
	l.waitHolder(vip, "n1", 30*time.Second)
	ka := l.startKA(1, b.conf())
	waitState(t, ka, "BACKUP", 1, 30*time.Second)
	l.stable(vip, "n1", 3*time.Second)
	if strings.Contains(ka.Output(), "Entering MASTER STATE") {
		t.Fatalf("keepalived became master next to a higher-priority vigil:\n%s", ka.Output())
	}

	// Graceful stop of vigil: priority 0 advert, keepalived waits only its skew time.
	// Not timed: on a loaded machine the handover takes longer, and at advert_int 0.2 a
	// takeover by the Master_Down_Timer comes only 0.4 s after one by Skew_Time. keepalived
	// logs the priority 0 advert it accepted; a takeover it did not cause would come without
	// that line before it.
	stopped := l.stopTERM(pv)
	took := l.waitHolder(vip, "n2", 30*time.Second)
	if err := pv.Wait(30 * time.Second); err != nil {
		t.Errorf("vigil did not exit cleanly on SIGTERM: %v", err)
	}
	waitState(t, ka, "MASTER", 1, 30*time.Second)
	if out := ka.Output(); !strings.Contains(out[:strings.Index(out, "Entering MASTER STATE")], "Backup received priority 0 advertisement") {
		t.Errorf("keepalived entered MASTER without a priority 0 advert from vigil before:\n%s", out)
	}
	src, kaSrc := l.srcOf(0, vip.Is6()), l.srcOf(1, vip.Is6())
	ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, kaSrc, stopped, -1).IsZero() })
	zero := firstFrom(ps, src, stopped.Add(-time.Second), 0)
	kaFirst := firstFrom(ps, kaSrc, stopped, -1)
	if l.capt != nil && zero.IsZero() {
		t.Errorf("no priority-0 advert from vigil on the wire after SIGTERM")
	}
	t.Logf("vigil SIGTERM -> keepalived holds %s: %s by ip addr; on the wire prio 0 at +%s, keepalived's first advert %s after it (skew %s, MDI %s)",
		vip, took.Round(time.Millisecond), zero.Sub(stopped).Round(100*time.Microsecond), kaFirst.Sub(zero).Round(time.Millisecond),
		skew(advert, b.prio), mdi(advert, b.prio))

	// Restart vigil: it preempts back (after its own Master_Down_Interval as a backup).
	l.startVigil(0, vcfg)
	back := l.waitHolder(vip, "n1", mdi(advert, a.prio)+30*time.Second)
	t.Logf("vigil restarted -> preempted back after %s", back.Round(time.Millisecond))
	waitState(t, ka, "BACKUP", 2, 30*time.Second)
	l.stable(vip, "n1", 2*time.Second)
}

// srcOf guesses the source address node i sends adverts from: its eth0 IPv4 address, or for
// IPv6 the link-local source seen on the wire that is not another node's.
func (l *ilab) srcOf(i int, v6 bool) netip.Addr {
	if !v6 {
		return l.Nodes[i].Addr4.Addr()
	}
	out, err := l.Nodes[i].Exec(l.ctx, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
	if err != nil {
		l.t.Fatal(err)
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil {
			return p.Addr()
		}
	}
	l.t.Fatalf("no link-local address on %s", l.Nodes[i].Name)
	return netip.Addr{}
}

// 1. VRRPv2 with PASS authentication: vigil master, keepalived backup.
func TestInteropV2PassVigilMaster(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	a := inst{vrid: 61, prio: 150, vip: "192.0.2.100/24", extra: passAuth}
	b := inst{vrid: 61, prio: 100, vip: "192.0.2.100/24", extra: passAuth}
	vigilMasterKABackup(t, l, vip4, a, b, time.Second)
	l.checkWire(2)
	for _, p := range l.packets() {
		if p.auth != "s3cret" {
			t.Errorf("advert from %v carries auth string %q, want s3cret", p.src, p.auth)
			break
		}
	}
	l.checkClean()
}

// 2. VRRPv2: keepalived master, vigil backup; graceful stop and kill -9 of keepalived.
func TestInteropV2KeepalivedMaster(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	kcfg := inst{vrid: 62, prio: 150, vip: "192.0.2.100/24", extra: passAuth}.conf()
	ka := l.startKA(0, kcfg)
	l.waitHolder(vip4, "n1", 30*time.Second) // vigil joins a running master (see vigilMasterKABackup)
	pv := l.startVigil(1, inst{vrid: 62, prio: 100, vip: "192.0.2.100/24", extra: passAuth}.conf())
	l.stable(vip4, "n1", 3*time.Second)
	waitState(t, ka, "MASTER", 1, 30*time.Second)
	if strings.Contains(pv.Output(), "to=MASTER") {
		t.Errorf("vigil became master next to a higher-priority keepalived:\n%s", pv.Output())
	}

	// Graceful stop: keepalived sends priority 0; vigil takes over after its skew time, and
	// says that this is why (not timed: a loaded machine delays both kinds of takeover).
	sk, down := skew(time.Second, 100), mdi(time.Second, 100)
	stopped := l.stopTERM(ka.Proc)
	took := l.waitHolder(vip4, "n2", 30*time.Second)
	if err := ka.Wait(30 * time.Second); err != nil {
		t.Errorf("keepalived did not exit cleanly on SIGTERM: %v", err)
	}
	if r := takeoverReasons(t, pv, 1); r[0] != "master resigned (priority 0 advert)" {
		t.Errorf("vigil took over from keepalived's SIGTERM with reason %q; want keepalived's priority 0 advert", r[0])
	}
	ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, l.Nodes[1].Addr4.Addr(), stopped, 100).IsZero() })
	zero := firstFrom(ps, l.Nodes[0].Addr4.Addr(), stopped.Add(-time.Second), 0)
	vFirst := firstFrom(ps, l.Nodes[1].Addr4.Addr(), stopped, 100)
	if l.capt != nil && zero.IsZero() {
		t.Errorf("no priority-0 advert from keepalived on the wire after SIGTERM")
	}
	t.Logf("keepalived SIGTERM -> vigil holds the VIP: %s by ip addr; on the wire vigil's first advert %s after keepalived's priority 0 (skew %s)",
		took.Round(time.Millisecond), vFirst.Sub(zero).Round(time.Millisecond), sk)

	// keepalived comes back and preempts.
	ka = l.startKA(0, kcfg)
	l.waitHolder(vip4, "n1", mdi(time.Second, 150)+30*time.Second)
	waitState(t, ka, "MASTER", 1, 30*time.Second)
	l.stable(vip4, "n1", 2*time.Second)

	// kill -9 of keepalived's whole process group: no goodbye. The dead master leaves the
	// address behind; vigil must add it after Master_Down_Interval.
	killed := time.Now()
	ka.kill()
	tookKill := l.waitHas(1, vip4, 2*down+30*time.Second)
	// No goodbye this time: the Master_Down_Timer, not a resignation, made vigil master.
	if r := takeoverReasons(t, pv, 2); r[1] != "master down timer expired" {
		t.Errorf("vigil took over from a killed keepalived with reason %q; want the Master_Down_Timer", r[1])
	}
	ps = l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, l.Nodes[1].Addr4.Addr(), killed, 100).IsZero() })
	last := lastFrom(ps, l.Nodes[0].Addr4.Addr(), killed)
	vFirst = firstFrom(ps, l.Nodes[1].Addr4.Addr(), killed, 100)
	if l.capt != nil && !last.IsZero() && !vFirst.IsZero() {
		gap := vFirst.Sub(last)
		t.Logf("kill -9 keepalived -> vigil holds the VIP %s after the kill; on the wire %s from keepalived's last advert to vigil's first (Master_Down_Interval %s)",
			tookKill.Round(time.Millisecond), gap.Round(time.Millisecond), down)
		if gap < down-100*time.Millisecond {
			t.Errorf("vigil took over %s after the last advert, earlier than Master_Down_Interval %s", gap, down)
		}
		if gap > 2*down {
			t.Errorf("vigil took over %s after the last advert, more than 2 x Master_Down_Interval %s", gap, down)
		}
	} else {
		t.Logf("kill -9 keepalived -> vigil holds the VIP %s after the kill (Master_Down_Interval %s)", tookKill, down)
		if tookKill < down-time.Second-100*time.Millisecond || tookKill > 2*down {
			t.Errorf("takeover %s after kill -9, want within [MDI - advert, 2 x MDI] = [%s, %s]", tookKill, down-time.Second, 2*down)
		}
	}
	l.checkWire(2)
	l.checkClean()
}

// 3. VRRPv3 over IPv4 multicast with advert_int 0.2, both directions of mastership.
func TestInteropV3Fast(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	const adv = 200 * time.Millisecond
	a := inst{vrid: 63, prio: 150, advert: "0.2", version: 3, vip: "192.0.2.100/24"}
	b := inst{vrid: 63, prio: 100, advert: "0.2", version: 3, vip: "192.0.2.100/24"}
	vigilMasterKABackup(t, l, vip4, a, b, adv)

	// Now the other direction: keepalived (n2) master at 200, vigil (n1) at 150 backs it up.
	for _, r := range l.ka {
		if !r.Exited() {
			l.stopTERM(r.Proc)
			_ = r.Wait(5 * time.Second)
		}
	}
	l.waitHolder(vip4, "n1", 5*time.Second)
	b.prio = 200
	ka := l.startKA(1, b.conf())
	l.waitHolder(vip4, "n2", mdi(adv, 200)+5*time.Second)
	waitState(t, ka, "MASTER", 1, 2*time.Second)
	l.stable(vip4, "n2", 2*time.Second)
	killed := time.Now()
	ka.kill()
	down := mdi(adv, 150)
	tookKill := l.waitHas(0, vip4, 2*down+2*time.Second)
	ps := l.packetsUntil(func(ps []pkt) bool { return !firstFrom(ps, l.Nodes[0].Addr4.Addr(), killed, 150).IsZero() })
	last := lastFrom(ps, l.Nodes[1].Addr4.Addr(), killed)
	vFirst := firstFrom(ps, l.Nodes[0].Addr4.Addr(), killed, 150)
	if l.capt != nil {
		gap := vFirst.Sub(last)
		t.Logf("v3 0.2 s: kill -9 keepalived -> vigil holds the VIP %s after the kill; %s from keepalived's last advert to vigil's first (MDI %s)",
			tookKill.Round(time.Millisecond), gap.Round(time.Millisecond), down)
		if last.IsZero() || vFirst.IsZero() {
			t.Errorf("capture misses keepalived's last (%v) or vigil's first (%v) advert", last, vFirst)
		} else if gap < down-50*time.Millisecond || gap > 2*down {
			t.Errorf("vigil took over %s after the last advert, want within [MDI, 2 x MDI] = [%s, %s]", gap, down, 2*down)
		}
	}
	l.checkWire(3)
	l.checkClean()
}

// 4. VRRPv3 over IPv6.
func TestInteropV3IPv6(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	vip6 := netip.MustParseAddr("2001:db8::100")
	a := inst{vrid: 64, prio: 150, advert: "0.2", version: 3, vip: "2001:db8::100/64"}
	b := inst{vrid: 64, prio: 100, advert: "0.2", version: 3, vip: "2001:db8::100/64"}
	vigilMasterKABackup(t, l, vip6, a, b, 200*time.Millisecond)
	l.checkWire(3)
	l.checkClean()
}

// 5. VRRPv2 unicast (unicast_src_ip / unicast_peer) with PASS authentication.
func TestInteropUnicastV2(t *testing.T) {
	l := newInteropLab(t, 2)
	l.startCapture()
	a1, a2 := l.Nodes[0].Addr4.Addr(), l.Nodes[1].Addr4.Addr()
	a := inst{vrid: 65, prio: 150, vip: "192.0.2.100/24", src: a1, unicastTo: []netip.Addr{a2}, extra: passAuth}
	b := inst{vrid: 65, prio: 100, vip: "192.0.2.100/24", src: a2, unicastTo: []netip.Addr{a1}, extra: passAuth}
	vigilMasterKABackup(t, l, vip4, a, b, time.Second)
	for _, p := range l.packets() {
		if p.dst.IsMulticast() {
			t.Errorf("multicast advert from %v in a unicast setup", p.src)
			break
		}
	}
	l.checkWire(2)
	l.checkClean()
}

// 6. A wrong auth_pass on one side must not interoperate silently. Both sides drop the
// other's adverts as invalid, so both become master: a split brain, which is the correct
// outcome (RFC 3768 5.3.6: an advert that fails authentication MUST be discarded). What must
// not happen is a silent one: vigil logs the drop with reason auth_mismatch, keepalived
// logs the bad password.
func TestInteropWrongAuthPass(t *testing.T) {
	l := newInteropLab(t, 2)
	pv := l.startVigil(0, inst{vrid: 66, prio: 150, vip: "192.0.2.100/24", extra: passAuth}.conf())
	ka := l.startKA(1, inst{vrid: 66, prio: 100, vip: "192.0.2.100/24",
		extra: "    authentication {\n        auth_type PASS\n        auth_pass other\n    }\n"}.conf())
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := l.holders(vip4)
		if len(h) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with different passwords %s is held by %v, want both nodes (split brain)", vip4, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// It stays that way: neither accepts the other's adverts.
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if h := l.holders(vip4); len(h) != 2 {
			t.Fatalf("split brain resolved itself (held by %v): an advert with the wrong password was accepted", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var dropped string
	for _, line := range strings.Split(pv.Output(), "\n") {
		if strings.Contains(line, "advert dropped") && strings.Contains(line, "reason=auth_mismatch") {
			dropped = line
		}
	}
	if dropped == "" {
		t.Errorf("vigil did not log \"advert dropped\" with reason auth_mismatch:\n%s", pv.Output())
	} else {
		t.Logf("vigil: %s", strings.TrimSpace(dropped))
	}
	var kaSays []string
	for _, line := range strings.Split(ka.Output(), "\n") {
		if kaComplains(line, l.dir) {
			kaSays = append(kaSays, strings.TrimSpace(line))
		}
	}
	if !strings.Contains(ka.Output(), "received an invalid passwd") {
		t.Errorf("keepalived did not log \"received an invalid passwd\" for vigil's adverts:\n%s", ka.Output())
	} else {
		t.Logf("keepalived (%d lines like this): %s", len(kaSays), kaSays[0])
	}
}
