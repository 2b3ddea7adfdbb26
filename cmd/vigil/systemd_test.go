package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab"
)

// sdMessage is one datagram on the notify socket, with the PID the kernel says sent it.
type sdMessage struct {
	pid  int32
	text string
}

// notifySocket is the service manager's end of sd_notify, as systemd opens it: a unixgram
// socket with SO_PASSCRED, so that each message carries its sender's PID (NotifyAccess=main
// takes only the main process's).
type notifySocket struct {
	path string
	pid  int32 // vigil's main process: every message must come from it
	msgs chan sdMessage
	seen []string // every message read so far, for failure output
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	ns := &notifySocket{path: path, msgs: make(chan sdMessage, 1024)}
	go func() {
		defer close(ns.msgs)
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			m := sdMessage{pid: -1, text: string(buf[:n])}
			if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, c := range cmsgs {
					if cred, err := unix.ParseUnixCredentials(&c); err == nil {
						m.pid = cred.Pid
					}
				}
			}
			ns.msgs <- m
		}
	}()
	return ns
}

// next returns the next message, failing the test after d (a bound, not a measure).
func (ns *notifySocket) next(t *testing.T, d time.Duration, what string) sdMessage {
	t.Helper()
	select {
	case m, ok := <-ns.msgs:
		if !ok {
			t.Fatalf("notify socket closed while waiting for %s", what)
		}
		ns.seen = append(ns.seen, m.text)
		if m.pid != ns.pid {
			t.Errorf("%q came from pid %d, not vigil's main process %d", m.text, m.pid, ns.pid)
		}
		return m
	case <-time.After(d):
		t.Fatalf("no notification within %s while waiting for %s; so far:\n%s", d, what, strings.Join(ns.seen, "\n--\n"))
	}
	return sdMessage{}
}

// until reads messages until one satisfies ok, and returns those before it and it.
func (ns *notifySocket) until(t *testing.T, d time.Duration, what string, ok func(string) bool) (before []string, m sdMessage) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m = ns.next(t, time.Until(deadline), what)
		if ok(m.text) {
			return before, m
		}
		before = append(before, m.text)
	}
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func statusOf(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if s, ok := strings.CutPrefix(l, "STATUS="); ok {
			return s
		}
	}
	return ""
}

var monotonic = regexp.MustCompile(`(?m)^MONOTONIC_USEC=[1-9][0-9]*$`)

// TestSystemdNotify runs the real vigil under a notify socket as systemd would open it
// (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID in its environment) in a namespace, and reads
// the sequence it sends: READY=1 once the children run with the configuration, though an
// instance waits in FAULT for its interface (it does not exist yet), RELOADING=1 with MONOTONIC_USEC then READY=1
// around an applied and a refused reload, WATCHDOG=1 while the children answer and none
// while the vrrp child is frozen, and STOPPING=1 at SIGTERM; every message from vigil's
// main process.
func TestSystemdNotify(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skipf("skipping namespace test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := lab.BuildVigil(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.New(ctx, fmt.Sprintf("sd%d", os.Getpid()%100000), 1, dir)
	if err != nil {
		t.Fatal(err)
	}
	nd := l.Nodes[0]
	var p *lab.Proc
	t.Cleanup(func() {
		if t.Failed() && p != nil {
			out := p.Output()
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("--- vigil\n%s", out)
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})

	conf := filepath.Join(dir, "vigil.conf")
	good := `vrrp_script chk {
    script "/bin/true"
    interval 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface sd0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
`
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := listenNotify(t)
	sock := filepath.Join(dir, "control.sock")
	// sh gives vigil its own PID as WATCHDOG_PID, as systemd does, then becomes vigil.
	p, err = nd.Start("sh", "-c", fmt.Sprintf(`export NOTIFY_SOCKET=%s WATCHDOG_USEC=2000000 WATCHDOG_PID=$$; exec "$0" "$@"`, ns.path),
		bin, "-f", conf, "-p", filepath.Join(dir, "vigil.pid"), "--control", sock, "--watch", "0")
	if err != nil {
		t.Fatal(err)
	}
	ns.pid = int32(p.Cmd.Process.Pid)

	// The instance's interface does not exist: the vrrp child runs all the same, with VI_1
	// in FAULT until the interface is there, and vigil is ready (an instance in FAULT does
	// not hold readiness back, or systemd would time the start out and restart vigil on a
	// node whose interface comes late).
	m := ns.next(t, 2*time.Minute, "READY=1")
	if !hasLine(m.text, "READY=1") || !strings.Contains(statusOf(m.text), "VI_1") {
		t.Fatalf("first notification %q, want READY=1 with a STATUS naming VI_1", m.text)
	}
	// Ready means the vrrp child runs with the configuration: it answers for VI_1, and
	// says why it is in FAULT.
	out, err := exec.CommandContext(ctx, bin, "status", "--json", "--control", sock).Output()
	var st supervisor.Status
	if err == nil {
		err = json.Unmarshal(out, &st)
	}
	if err != nil || len(st.Instances) != 1 || st.Instances[0].Name != "VI_1" || st.Instances[0].State != "FAULT" ||
		st.Instances[0].Fault != "interface sd0 does not exist" {
		t.Fatalf("status after READY=1: %v %s; want VI_1 in FAULT for its missing interface", err, out)
	}
	vrrpPID := 0
	for _, pr := range st.Processes {
		if pr.Role == "vrrp" {
			vrrpPID = pr.PID
		}
	}
	// The interface appears (a veth pair inside the node, with an address): VI_1 sets up
	// in the running vrrp child and, alone on its link, becomes master; the status line
	// says so.
	for _, args := range [][]string{
		{"link", "add", "sd0", "type", "veth", "peer", "name", "sd0p"},
		{"addr", "add", "198.51.100.1/24", "dev", "sd0"},
		{"link", "set", "sd0p", "up"},
		{"link", "set", "sd0", "up"},
	} {
		if out, err := nd.Exec(ctx, "ip", args...); err != nil {
			t.Fatal(err, out)
		}
	}
	ns.until(t, time.Minute, "STATUS with VI_1 MASTER", func(s string) bool { return strings.Contains(statusOf(s), "VI_1 MASTER") })
	if regexp.MustCompile(`child stopped; restarting.*child=vrrp`).MatchString(p.Output()) {
		t.Fatalf("the vrrp child was restarted for an interface that came late")
	}

	// An applied reload (SIGHUP) and a refused one (vigil reload of a broken file).
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	_, m = ns.until(t, time.Minute, "RELOADING=1", func(s string) bool { return hasLine(s, "RELOADING=1") })
	if !monotonic.MatchString(m.text) || !strings.Contains(statusOf(m.text), "SIGHUP") || strings.Contains(m.text, "\n\n") {
		t.Errorf("RELOADING message %q lacks MONOTONIC_USEC or the trigger", m.text)
	}
	_, m2 := ns.until(t, time.Minute, "READY=1 after the reload", func(s string) bool { return hasLine(s, "READY=1") || hasLine(s, "RELOADING=1") })
	if !hasLine(m2.text, "READY=1") || !strings.Contains(statusOf(m2.text), "reload (SIGHUP) applied") {
		t.Errorf("after RELOADING=1: %q, want READY=1 with the reload applied", m2.text)
	}

	if err := os.WriteFile(conf, []byte(strings.Replace(good, "priority 100", "priority 1000", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, bin, "reload", "--control", sock).CombinedOutput(); err == nil {
		t.Errorf("vigil reload of a broken file succeeded: %s", out)
	}
	_, m = ns.until(t, time.Minute, "RELOADING=1", func(s string) bool { return hasLine(s, "RELOADING=1") })
	if !monotonic.MatchString(m.text) {
		t.Errorf("RELOADING message %q lacks MONOTONIC_USEC", m.text)
	}
	_, m2 = ns.until(t, time.Minute, "READY=1 after the refused reload", func(s string) bool { return hasLine(s, "READY=1") || hasLine(s, "RELOADING=1") })
	if !hasLine(m2.text, "READY=1") || !strings.Contains(statusOf(m2.text), "reload (vigil reload) refused") {
		t.Errorf("after RELOADING=1: %q, want READY=1 with the reload refused", m2.text)
	}

	// The watchdog: pings while both children answer.
	for i := 0; i < 3; i++ {
		ns.until(t, time.Minute, "WATCHDOG=1", func(s string) bool { return hasLine(s, "WATCHDOG=1") })
	}
	// The vrrp child frozen: the pings stop and a status line says why; none comes while it
	// stays frozen (watched over several of the 1 s intervals), and they resume after.
	if vrrpPID == 0 {
		t.Fatal("no vrrp child in the status")
	}
	if err := syscall.Kill(vrrpPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := true
	defer func() {
		if frozen {
			syscall.Kill(vrrpPID, syscall.SIGCONT)
		}
	}()
	ns.until(t, time.Minute, "the watchdog withheld", func(s string) bool {
		return strings.Contains(statusOf(s), "watchdog withheld: the vrrp process has not answered")
	})
	// Three of the watchdog's intervals (1 s) without a ping; well within the 15 s after which
	// core restarts a child that answers no health ping (core/supervisor pingWait).
	watch := time.After(3 * time.Second)
	for quiet := true; quiet; {
		select {
		case m := <-ns.msgs:
			ns.seen = append(ns.seen, m.text)
			if hasLine(m.text, "WATCHDOG=1") {
				t.Errorf("WATCHDOG=1 while the vrrp child is frozen")
			}
		case <-watch:
			quiet = false
		}
	}
	if err := syscall.Kill(vrrpPID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	frozen = false
	before, _ := ns.until(t, time.Minute, "WATCHDOG=1 after the child thawed", func(s string) bool { return hasLine(s, "WATCHDOG=1") })
	if len(before) == 0 || !strings.Contains(statusOf(before[len(before)-1]), "children answer again") {
		t.Errorf("before the pings resumed: %q, want a status line saying the children answer again", before)
	}

	// The stop: STOPPING=1, then nothing that says ready or alive.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.until(t, time.Minute, "STOPPING=1", func(s string) bool { return hasLine(s, "STOPPING=1") })
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("vigil did not stop cleanly: %v", err)
	}
	for {
		select {
		case m := <-ns.msgs:
			if hasLine(m.text, "READY=1") || hasLine(m.text, "WATCHDOG=1") {
				t.Errorf("after STOPPING=1: %q", m.text)
			}
			continue
		default:
		}
		break
	}
	t.Logf("notifications, in order:\n%s", strings.Join(ns.seen, "\n--\n"))
}
