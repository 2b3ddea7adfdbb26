package netif

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Test addresses come only from the documentation ranges (RFC 5737, 3849).
var (
	mac0 = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	mac1 = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}
)

const nsPrefix = "vigil-netif-"

var labSeq atomic.Int64 // unique namespace names within this test binary

func TestMain(m *testing.M) {
	code := m.Run()
	// Every lab deletes its namespace; fail loudly if one was left behind.
	if entries, err := os.ReadDir("/var/run/netns"); err == nil {
		mine := fmt.Sprintf("%s%d-", nsPrefix, os.Getpid())
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), mine) {
				fmt.Fprintf(os.Stderr, "leftover network namespace %s\n", e.Name())
				code = 1
			}
		}
	}
	os.Exit(code)
}

// lab is a throwaway network namespace that the test's OS thread has joined.
type lab struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle // setup and assertions, independent of Netif
	n    *Netif          // the code under test, opened with NewAt
}

// newLab locks the test goroutine to its thread, moves the thread into a
// new, uniquely named namespace with lo up, and undoes all of it at cleanup.
func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netif tests need root: they create network namespaces, veth pairs and packet sockets")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current namespace: %v", err)
	}
	name := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), labSeq.Add(1))
	ns, err := netns.NewNamed(name)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		if errors.Is(err, unix.EPERM) {
			t.Skipf("cannot create network namespace %s (no CAP_SYS_ADMIN?): %v", name, err)
		}
		t.Fatalf("create namespace %s: %v", name, err)
	}
	l := &lab{name: name, ns: ns}
	t.Cleanup(func() {
		if l.n != nil {
			if err := l.n.Close(); err != nil {
				t.Errorf("Netif.Close: %v", err)
			}
		}
		if l.h != nil {
			l.h.Close()
		}
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with the test goroutine.
			t.Errorf("return to original namespace: %v", err)
		} else {
			runtime.UnlockOSThread()
		}
		orig.Close()
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	if l.h, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	if l.n, err = NewAt(ns); err != nil {
		t.Fatalf("NewAt(%s): %v", name, err)
	}
	lo, err := l.h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return l
}

// veth creates v0 (mac0) <-> v1 (mac1), both up.
func (l *lab) veth(t testing.TB) {
	t.Helper()
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "v0", HardwareAddr: mac0},
		PeerName:         "v1",
		PeerHardwareAddr: mac1,
	}
	if err := l.h.LinkAdd(v); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"v0", "v1"} {
		l.setUp(t, name, true)
	}
	// Until the kernel's linkwatch work has seen the carrier, a link that is up still has
	// the noop qdisc, which drops what a packet socket sends on it without an error. That
	// work is deferred (up to a second, longer on a busy machine), and a test that sent
	// its frame before it ran waited 30 s for nothing (CI, TestSendGARP). Operstate UP is
	// set by the same work, so it says the link really carries frames.
	for _, name := range []string{"v0", "v1"} {
		l.waitOperUp(t, name)
	}
}

func (l *lab) waitOperUp(t testing.TB, name string) {
	t.Helper()
	const bound = 30 * time.Second // ends only a test whose link never comes up
	deadline := time.Now().Add(bound)
	for {
		link, err := l.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: operstate %s after %s, want up", name, link.Attrs().OperState, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *lab) setUp(t testing.TB, name string, up bool) {
	t.Helper()
	link, err := l.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if up {
		err = l.h.LinkSetUp(link)
	} else {
		err = l.h.LinkSetDown(link)
	}
	if err != nil {
		t.Fatalf("set %s up=%v: %v", name, up, err)
	}
}

// ip runs ip(8) against the lab namespace and returns its output.
func (l *lab) ip(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not installed (apt-get install iproute2)")
	}
	out, err := exec.Command("ip", append([]string{"-n", l.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipLine returns the line of `ip -o addr show dev dev` that holds prefix.
func (l *lab) ipLine(t *testing.T, dev, prefix string) (string, bool) {
	t.Helper()
	for _, line := range strings.Split(l.ip(t, "-o", "addr", "show", "dev", dev), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[3] == prefix {
			return line, true
		}
	}
	return "", false
}

func (l *lab) sysctl(t *testing.T, path, value string) {
	t.Helper()
	// The test thread is inside the lab namespace, so /proc/sys/net is its.
	if err := os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

// capture is an AF_PACKET receiver bound to one interface of the lab.
type capture struct{ fd int }

func (l *lab) capture(t *testing.T, ifname string) *capture {
	t.Helper()
	link, err := l.h.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	// Opened on the test thread, which is in the lab namespace.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(Htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatalf("capture socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: Htons(unix.ETH_P_ALL), Ifindex: link.Attrs().Index}); err != nil {
		t.Fatalf("bind capture to %s: %v", ifname, err)
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return &capture{fd: fd}
}

// next returns the first frame for which match is true. The bound only ends a test whose
// frame never comes: the frame is usually there at once, but a busy machine (CI with
// other packages' tests beside it) has taken over 3 s to run this goroutine.
func (c *capture) next(t *testing.T, match func([]byte) bool) []byte {
	t.Helper()
	const bound = 30 * time.Second
	deadline := time.Now().Add(bound)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		if match(buf[:n]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
	t.Fatalf("capture: no matching frame within %s", bound)
	return nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
