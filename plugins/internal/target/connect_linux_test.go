//go:build linux

package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// An IP address from no chosen source takes dialPlain; a name, a zone or a chosen source
// takes net.Dialer.
func TestDialPathChosen(t *testing.T) {
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
	port := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		t     Target
		plain bool
	}{
		{Target{Address: ln.Addr().String()}, true},
		{Target{Address: fmt.Sprintf("localhost:%d", port)}, false},
		{Target{Address: ln.Addr().String(), BindTo: netip.MustParseAddr("127.0.0.1")}, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := tc.t.Dial(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%+v: %v", tc.t, err)
		}
		_, plain := conn.(*fileConn)
		conn.Close()
		if plain != tc.plain {
			t.Errorf("%+v: Dial gave a %T; want the plain path %v", tc.t, conn, tc.plain)
		}
	}
}

// A closed port is refused, and a reset reads as one, in the words net.Dialer's would.
func TestDialPlainErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*net.TCPConn).SetLinger(0)
			c.Write([]byte("x"))
			c.Close() // a reset, after the byte
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err2 error
	conn, err := Target{Address: addr}.Dial(ctx)
	if err != nil {
		// On a busy machine the server may accept and reset before the dial asks its
		// socket whether it is connected: then the dial is what meets the reset.
		err2 = err
	} else {
		defer conn.Close()
		for err2 == nil {
			_, err2 = conn.Read(make([]byte, 16))
		}
	}
	if Reason(err2) != "reset by peer" {
		t.Errorf("dial or read after the server's reset: %v (%q); want reset by peer", err2, Reason(err2))
	}
	ln.Close()
	if _, err := (Target{Address: addr}).Dial(ctx); Reason(err) != "refused" {
		t.Errorf("Dial to a closed port: %v (%q); want refused", err, Reason(err))
	}
}

// A reply that came before the deadline is read although the plugin asks for it only after
// the deadline (a stall on a busy machine), and a request is sent on a writable socket:
// Go's own Read and Write fail such a call as a timeout without asking the socket. What the
// socket cannot do at once stays a timeout.
func TestLateReadAndWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(served)
			return
		}
		c.Write([]byte("hello"))
		served <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Target{Address: ln.Addr().String()}.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := <-served
	if c == nil {
		t.Fatal("the server accepted nothing")
	}
	defer c.Close()
	waitReadable(t, conn, 5)
	// The stall: the deadline passed while the reply waited in the socket.
	conn.SetDeadline(time.Now().Add(-time.Second))
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("late Read = %q, %v; want hello", buf[:n], err)
	}
	if _, err := conn.Read(buf); Reason(err) != "timeout" {
		t.Errorf("late Read with nothing there: %v; want a timeout", err)
	}
	if n, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil || n != 18 {
		t.Errorf("late Write = %d, %v; want all 18 bytes sent", n, err)
	}
	got := make([]byte, 18)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Errorf("the server read %q, %v", got, err)
	}
}

// A handshake that was over before the plugin looked counts, however late it looks.
func TestLateConnectCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ap, _ := PlainAddr(ln.Addr().String())
	fd, done, err := StartConnect(ap)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); !done; time.Sleep(time.Millisecond) {
		if done, err = Connected(fd); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("no handshake on loopback in 10s")
		}
	}
	if err := ConnectFile(context.Background(), time.Now().Add(-time.Second), ap, fd); err != nil {
		t.Errorf("a connect over before a passed deadline: %v; want it counted", err)
	}
	// Ended by its context, not its deadline, a connect still says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if fd, _, err = StartConnect(ap); err != nil {
		t.Fatal(err)
	}
	if err := ConnectFile(ctx, time.Time{}, ap, fd); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled connect: %v; want connected or cancelled", err)
	}
}

// waitReadable waits until conn's socket holds at least n bytes.
func waitReadable(t *testing.T, conn net.Conn, n int) {
	t.Helper()
	rc := rawConn(t, conn)
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		var got int
		rc.Control(func(fd uintptr) {
			got, _, _ = syscall.Recvfrom(int(fd), make([]byte, n), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		})
		if got >= n {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d bytes did not arrive on loopback in 10s", n)
		}
	}
}
