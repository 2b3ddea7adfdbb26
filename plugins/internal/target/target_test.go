package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

func TestUnescape(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{`PING\r\n`, "PING\r\n", ""},
		{`a\tb\0c\\d\"e\'f`, "a\tb\x00c\\d\"e'f", ""},
		{`\x41\x7e\xff`, "A~\xff", ""},
		{`plain text`, "plain text", ""},
		{`\x4`, "", `\x needs two hex digits`},
		{`\xzz`, "", `\x needs two hex digits`},
		{`\q`, "", `unknown escape \q`},
		{`end\`, "", "lone backslash"},
	} {
		got, err := Unescape(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Unescape(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "refused"},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "cancelled"},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "reset by peer"},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, "unreachable"},
		{&net.DNSError{Name: "nowhere.invalid", Err: "no such host"}, "cannot resolve nowhere.invalid"},
		{errors.New("something else"), "something else"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
		err    bool
	}{
		{nil, true, false}, // a bare keyword, as keepalived's enable_sni
		{[]string{"yes"}, true, false},
		{[]string{"On"}, true, false},
		{[]string{"no"}, false, false},
		{[]string{"0"}, false, false},
		{[]string{"maybe"}, false, true},
		{[]string{"yes", "no"}, false, true},
	} {
		got, err := ParseBool(check.Param{Key: "k", Values: tc.values})
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseBool(%v) = %v, %v; want %v, error %v", tc.values, got, err, tc.want, tc.err)
		}
	}
}

// Dial honours ctx: the connection's deadline is ctx's, and cancelling ctx ends a read.
func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The server holds the connection open, then closes it: a Read that ignores ctx ends with
	// EOF when the server closes, not with "timeout", so the reason alone tells them apart and
	// the test needs no clock. The hold only bounds how long a broken Read keeps the test.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(60 * time.Second)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := Target{Address: ln.Addr().String()}.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = conn.Read(make([]byte, 1))
	if Reason(err) != "timeout" {
		t.Errorf("Read after cancel = %v after %s; want it interrupted by the cancel", err, time.Since(start))
	}
}

// A probe's connection sets no TCP keep-alive, on either way of dialing: it would never fire
// within a probe, and costs system calls on every one.
func TestDialWithoutKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, address := range []string{ln.Addr().String(), fmt.Sprintf("localhost:%d", port)} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := Target{Address: address}.Dial(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var on int
		var serr error
		if err := rawConn(t, conn).Control(func(fd uintptr) {
			on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		}); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if serr != nil {
			t.Fatal(serr)
		}
		if on != 0 {
			t.Fatalf("%s: SO_KEEPALIVE = %d on a probe's connection; want 0", address, on)
		}
	}
}

// rawConn is the socket under a connection from Dial, by either way.
func rawConn(t *testing.T, conn net.Conn) syscall.RawConn {
	t.Helper()
	if cc, ok := conn.(*ctxConn); ok {
		conn = cc.Conn
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		t.Fatalf("Dial gave a %T, with no socket to ask", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}
