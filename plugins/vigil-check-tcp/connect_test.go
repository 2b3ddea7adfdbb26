//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/plugins/internal/target"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// Only a probe that connects to an IP address from no chosen source takes connectOnly.
func TestPlainPathChosen(t *testing.T) {
	for _, tc := range []struct {
		params []check.Param
		plain  bool
	}{
		{params("address", "127.0.0.1:80"), true},
		{params("address", "[::1]:80"), true},
		{params("address", "localhost:80"), false},
		{params("address", "[fe80::1%lo]:80"), false},
		{params("address", "127.0.0.1:80", "send", "x"), false},
		{params("address", "127.0.0.1:80", "expect", "x"), false},
		{params("address", "127.0.0.1:80", "expect_regex", "x"), false},
		{params("address", "127.0.0.1:80", "bindto", "127.0.0.1"), false},
		{params("address", "127.0.0.1:80", "bind_port", "4000"), false},
	} {
		p, err := parse(tc.params)
		if err != nil {
			t.Fatalf("parse(%v): %v", tc.params, err)
		}
		if p.plain.IsValid() != tc.plain {
			t.Errorf("parse(%v): plain path %v; want %v", tc.params, p.plain.IsValid(), tc.plain)
		}
	}
}

// connectFileOnly is connectOnly through the runtime's poller (target.ConnectFile), its way when the
// plugin has no epoll instance of its own.
func connectFileOnly(ctx context.Context, dl time.Time, ap netip.AddrPort) error {
	fd, err := startConnect(ap)
	if err != nil || fd < 0 {
		return err
	}
	return target.ConnectFile(ctx, dl, ap, fd)
}

type connectFunc = func(context.Context, time.Time, netip.AddrPort) error

// connectOnly is a connector's connectOnly, on a poller of the test's own.
var connectOnly connectFunc = (&connector{}).connectOnly

var connectors = []struct {
	name    string
	connect connectFunc
}{{"own epoll", connectOnly}, {"runtime poller", connectFileOnly}, {"dead poller", deadPoller().connectOnly}}

// deadPoller is a connector whose poller died at its start: epoll_wait fails at once.
func deadPoller() *connector {
	return &connector{epollWait: func(int, []syscall.EpollEvent, int) (int, error) { return 0, syscall.EINVAL }}
}

// The server sees a whole connection, closed in order (FIN, not a reset), and the probe
// says it connected; a closed port is refused.
func TestConnectOnly(t *testing.T) {
	for _, c := range connectors {
		t.Run(c.name, func(t *testing.T) { testConnectOnly(t, c.connect) })
	}
}

func testConnectOnly(t *testing.T, connectOnly connectFunc) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		_, err = c.Read(b[:])
		got <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := connectOnly(ctx, time.Now().Add(10*time.Second), netip.MustParseAddrPort(ln.Addr().String())); err != nil {
		t.Fatalf("connectOnly: %v", err)
	}
	if err := <-got; !errors.Is(err, io.EOF) {
		t.Fatalf("the server read %v after the probe; want EOF (an orderly close)", err)
	}
	refused := closedPort(t)
	err = connectOnly(ctx, time.Time{}, netip.MustParseAddrPort(refused))
	if r := target.Reason(err); r != "refused" {
		t.Fatalf("connectOnly to a closed port: %v (%q); want refused", err, r)
	}
	if !strings.Contains(err.Error(), refused) {
		t.Errorf("error %q does not name %s", err, refused)
	}
}

// unanswered returns a loopback address whose SYNs are dropped: a listener whose accept queue
// (backlog 0) is full, so that a connect to it waits until its deadline.
func unanswered(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port)).String()
	// Fill the queue: connections the listener never accepts.
	for range 3 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

// A connect that gets no answer ends at the probe's deadline, as a timeout; cancelling
// the probe ends it at once.
func TestConnectOnlyTimeoutAndCancel(t *testing.T) {
	for _, c := range connectors {
		t.Run(c.name, func(t *testing.T) { testConnectOnlyTimeoutAndCancel(t, c.connect) })
	}
}

func testConnectOnlyTimeoutAndCancel(t *testing.T, connectOnly connectFunc) {
	addr := netip.MustParseAddrPort(unanswered(t))
	// Deadlines given out of order all come, each not before its time.
	errs := make(chan error, 4)
	for _, after := range []time.Duration{400, 100, 300, 200} {
		dl := time.Now().Add(after * time.Millisecond)
		go func() {
			err := connectOnly(context.Background(), dl, addr)
			switch {
			case target.Reason(err) != "timeout":
				errs <- fmt.Errorf("connectOnly to a full accept queue: %v (%q); want timeout", err, target.Reason(err))
			case time.Now().Before(dl):
				errs <- fmt.Errorf("connectOnly timed out before its deadline %s", dl)
			default:
				errs <- nil
			}
		}()
	}
	for range 4 {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a connect kept waiting past its deadline")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- connectOnly(ctx, time.Time{}, addr) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled connectOnly: %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled connect kept waiting")
	}
}

// Many connects at once, some refused, all end with their own answer: the poller wakes each
// probe for its own socket.
func TestConnectOnlyMany(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open, closed := netip.MustParseAddrPort(ln.Addr().String()), netip.MustParseAddrPort(closedPort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 400
	errs := make(chan error, n)
	for i := range n {
		ap := open
		if i%2 == 1 {
			ap = closed
		}
		go func() {
			err := connectOnly(ctx, time.Now().Add(20*time.Second), ap)
			switch {
			case ap == open && err != nil:
				errs <- fmt.Errorf("connect to the listener: %w", err)
			case ap == closed && target.Reason(err) != "refused":
				errs <- fmt.Errorf("connect to a closed port: %v; want refused", err)
			default:
				errs <- nil
			}
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Through the plugin: a connect that times out is the plugin's own answer, naming it.
func TestTCPConnectTimeout(t *testing.T) {
	addr := unanswered(t)
	c := sdktest.ServeCheck(t, newTCP())
	resp := probeOnce(t, c, 500*time.Millisecond, params("address", addr))
	if resp.Status != check.Critical || resp.Message != "connect "+addr+": timeout" {
		t.Fatalf("Check = %s %q; want critical %q", resp.Status, resp.Message, "connect "+addr+": timeout")
	}
}

// A poller whose epoll_wait fails while connects wait on it wakes them, and they and every
// later connect go on through the runtime's poller: a healthy server stays up, a closed
// port is refused, and the poller's instance is closed once no connect uses it.
func TestDeadPollerFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The listener accepts nothing until the poller has died: every connect waits on the
	// poller (its handshake is over, the event collected, but epoll_wait fails first).
	failing := make(chan struct{})
	var fails atomic.Int32
	conn := &connector{epollWait: func(epfd int, events []syscall.EpollEvent, msec int) (int, error) {
		select {
		case <-failing:
			fails.Add(1)
			return 0, syscall.EINVAL
		default:
			return syscall.EpollWait(epfd, events, msec)
		}
	}}
	p, err := conn.poller()
	if err != nil {
		t.Fatal(err)
	}
	open, closed := netip.MustParseAddrPort(ln.Addr().String()), netip.MustParseAddrPort(closedPort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A connect to an address that never answers holds the poller while it dies.
	silent := netip.MustParseAddrPort(unanswered(t))
	held := make(chan error, 1)
	go func() { held <- conn.connectOnly(ctx, time.Now().Add(time.Minute), silent) }()
	for {
		p.mu.Lock()
		users := p.users
		p.mu.Unlock()
		if users == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(failing)
	// Wake the collector: a connect to the listener is an event.
	first := make(chan error, 1)
	go func() { first <- conn.connectOnly(ctx, time.Now().Add(time.Minute), open) }()
	select {
	case <-p.stopped:
	case <-ctx.Done():
		t.Fatal("the poller did not stop after epoll_wait failed")
	}
	if err := <-first; err != nil {
		t.Fatalf("connect to a healthy listener while the poller died: %v", err)
	}
	for i := range 20 {
		if err := conn.connectOnly(ctx, time.Now().Add(time.Minute), open); err != nil {
			t.Fatalf("connect %d to a healthy listener after the poller died: %v", i, err)
		}
		if r := target.Reason(conn.connectOnly(ctx, time.Now().Add(time.Minute), closed)); r != "refused" {
			t.Fatalf("connect %d to a closed port after the poller died: %q; want refused", i, r)
		}
	}
	// The held connect went on through the runtime's poller too: cancelling it ends it.
	cancel()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Errorf("the held connect ended with %v; want context.Canceled", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.file != nil || p.users != 0 {
		t.Errorf("the dead poller keeps its instance (%v) or users (%d) after every connect ended", p.file != nil, p.users)
	}
	if fails.Load() != 1 {
		t.Errorf("epoll_wait was called %d times after it failed; want once", fails.Load())
	}
}

// Through the plugin: with a poller that died, a connect-only TCP_CHECK to a healthy server
// is still OK.
func TestTCPDeadPoller(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tc := newTCP()
	tc.conn = deadPoller()
	c := sdktest.ServeCheck(t, tc)
	for range 3 {
		if resp := probeOnce(t, c, 5*time.Second, params("address", ln.Addr().String())); resp.Status != check.OK {
			t.Fatalf("Check with a dead poller = %s %q; want OK", resp.Status, resp.Message)
		}
	}
}
