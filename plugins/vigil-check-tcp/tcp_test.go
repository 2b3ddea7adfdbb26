package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// server listens on addr ("127.0.0.1:0") and hands each connection to serve; it returns the
// address and a channel of the peers' addresses as they connect.
func server(t *testing.T, addr string, serve func(net.Conn)) (string, <-chan net.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan net.Addr, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr():
			default:
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String(), peers
}

// answering reads one line and answers it with reply.
func answering(reply string) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte(reply))
	}
}

// hanging accepts and never answers; the connection stays open until the client leaves.
func hanging(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [64]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// closedPort is a loopback port that nobody listens on: connecting to it is refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func params(kv ...string) []check.Param {
	var ps []check.Param
	for i := 0; i < len(kv); i += 2 {
		ps = append(ps, check.Param{Key: kv[i], Values: []string{kv[i+1]}})
	}
	return ps
}

func probeOnce(t *testing.T, c check.Checker, timeout time.Duration, ps []check.Param) check.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: ps}); err != nil {
		t.Fatalf("Configure(%v): %v", ps, err)
	}
	// The plugin answers a little before the probe's deadline (plugins/internal/target), so
	// that a timeout shows as its own message; on a machine too busy to carry that answer
	// back within the margin the host sees its deadline pass instead. That is the load, not
	// the plugin: the probe is tried again, and a plugin that never answers in time by
	// itself still fails every attempt.
	var resp check.CheckResponse
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		pctx, pcancel := context.WithTimeout(ctx, timeout)
		resp, err = c.Check(pctx, check.CheckRequest{Name: "chk"})
		pcancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func TestTCP(t *testing.T) {
	pong, _ := server(t, "127.0.0.1:0", answering("+PONG\r\n"))
	wrongClose, _ := server(t, "127.0.0.1:0", answering("-ERR no\r\n"))
	silent, _ := server(t, "127.0.0.1:0", hanging)
	refused := closedPort(t)
	c := sdktest.ServeCheck(t, newTCP())
	for _, tc := range []struct {
		name    string
		params  []check.Param
		timeout time.Duration
		status  check.Status
		msg     string
	}{
		{"connect", params("address", pong), time.Second, check.OK, "connected to " + pong},
		{"refused", params("address", refused), time.Second, check.Critical, "connect " + refused + ": refused"},
		{"connect to a silent service", params("address", silent), time.Second, check.OK, "connected"},
		{"send expect", params("address", pong, "send", `PING\r\n`, "expect", `+PONG\r\n`), time.Second, check.OK, `answered "+PONG\r\n"`},
		{"expect regex", params("address", pong, "send", `PING\n`, "expect_regex", `^\+PO+NG`), time.Second, check.OK, "answered"},
		{"wrong answer then close", params("address", wrongClose, "send", `PING\n`, "expect", "+PONG"), time.Second, check.Critical, `closed the connection: answer "-ERR no\r\n" does not match "+PONG"`},
		{"hanging", params("address", silent, "send", `PING\n`, "expect", "+PONG"), 300 * time.Millisecond, check.Critical, `timeout waiting for "+PONG": no answer`},
		{"expect without send", params("address", silent, "expect", "220"), 300 * time.Millisecond, check.Critical, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A timeout shows as the plugin's own answer (not the SDK's bare deadline error),
			// because the plugin stops a little before the deadline.
			resp := probeOnce(t, c, tc.timeout, tc.params)
			if resp.Status != tc.status || !strings.Contains(resp.Message, tc.msg) {
				t.Fatalf("Check = %s %q; want %s with %q", resp.Status, resp.Message, tc.status, tc.msg)
			}
			if strings.Contains(resp.Message, "\n") {
				t.Errorf("message %q is not one line", resp.Message)
			}
		})
	}
}

// A probe's context cancelled (vigil gave up, or is stopping) ends the wait at once.
func TestTCPCancel(t *testing.T) {
	silent, _ := server(t, "127.0.0.1:0", hanging)
	p, err := parse(params("address", silent, "send", "x", "expect", "y"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan check.CheckResponse)
	go func() { done <- p.run(ctx) }()
	select {
	case resp := <-done:
		if resp.Status != check.Critical {
			t.Fatalf("cancelled probe = %+v; want critical", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled probe kept waiting")
	}
}

// bindto and bind_port choose the source of the connection, as the server sees it.
func TestTCPBind(t *testing.T) {
	addr, peers := server(t, "127.0.0.1:0", func(net.Conn) {})
	port := closedPort(t) // a free port to bind to
	_, bindPort, _ := net.SplitHostPort(port)
	c := sdktest.ServeCheck(t, newTCP())
	for _, tc := range []struct {
		params []check.Param
		want   string
	}{
		{params("address", addr, "bindto", "127.0.0.2"), "127.0.0.2:"},
		{params("address", addr, "bind_to", "127.0.0.3", "bind_port", bindPort), "127.0.0.3:" + bindPort},
	} {
		resp := probeOnce(t, c, time.Second, tc.params)
		if resp.Status != check.OK {
			t.Fatalf("Check(%v) = %+v", tc.params, resp)
		}
		select {
		case peer := <-peers:
			if !strings.HasPrefix(peer.String(), tc.want) {
				t.Errorf("server saw %s; want %s", peer, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server saw no connection")
		}
	}
	// Probes one after another from the same source port all connect, though the server
	// keeps each connection open after the plugin closed it: the port is not left waiting
	// for the server's close (FIN_WAIT2), then in TIME_WAIT.
	silent, _ := server(t, "127.0.0.1:0", func(net.Conn) { time.Sleep(2 * time.Second) })
	for i := range 3 {
		if resp := probeOnce(t, c, time.Second, params("address", silent, "bind_port", bindPort)); resp.Status != check.OK {
			t.Fatalf("probe %d from port %s = %s %q", i, bindPort, resp.Status, resp.Message)
		}
	}
	// A source address this host does not have fails the probe, saying so.
	resp := probeOnce(t, c, time.Second, params("address", addr, "bindto", "192.0.2.1"))
	if resp.Status != check.Critical || !strings.Contains(resp.Message, "source address not available") {
		t.Errorf("bind to a foreign address = %s %q", resp.Status, resp.Message)
	}
}

func TestTCPRejectsBadParams(t *testing.T) {
	c := sdktest.ServeCheck(t, newTCP())
	for _, tc := range []struct {
		params []check.Param
		want   string
	}{
		{nil, "address is required"},
		{params("address", "localhost"), `address "localhost": want HOST:PORT`},
		{params("address", "127.0.0.1:0"), "port \"0\" is not a number from 1 to 65535"},
		{params("address", "127.0.0.1:http"), "is not a number"},
		{params("address", "127.0.0.1:80", "bindto", "lo"), `bindto "lo": want an IP address`},
		{params("address", "127.0.0.1:80", "bind_port", "70000"), "bind_port \"70000\": want a port"},
		{params("address", "127.0.0.1:80", "send", `PING\q`), `unknown escape \q`},
		{params("address", "127.0.0.1:80", "expect", `\x4`), `\x needs two hex digits`},
		{params("address", "127.0.0.1:80", "expect", `abc\`), "lone backslash"},
		{params("address", "127.0.0.1:80", "expect_regex", `(`), "expect_regex \"(\": error parsing regexp"},
		{params("address", "127.0.0.1:80", "expect", "a", "expect_regex", "b"), "keep one"},
		{params("address", "127.0.0.1:80", "connect_timeout", "3"), `unknown param "connect_timeout"`},
		{[]check.Param{{Key: "address", Values: []string{"127.0.0.1:80"}}, {Key: "send"}}, "send needs a string"},
	} {
		_, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "chk", Params: tc.params, ValidateOnly: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v; want %q", tc.params, err, tc.want)
		}
	}
	if _, err := c.Check(context.Background(), check.CheckRequest{Name: "chk"}); err == nil {
		t.Error("ValidateOnly kept a configuration, or Check of an unconfigured name succeeded")
	}
}

func TestUnescapedSend(t *testing.T) {
	got := make(chan string, 1)
	addr, _ := server(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, _ := c.Read(b)
		got <- string(b[:n])
	})
	// Two unquoted words come as two values, joined by the space the operator wrote.
	ps := []check.Param{{Key: "address", Values: []string{addr}}, {Key: "send", Values: []string{`HELLO`, `a\tb\x41\0\\\r\n`}}}
	if resp := probeOnce(t, sdktest.ServeCheck(t, newTCP()), time.Second, ps); resp.Status != check.OK {
		t.Fatalf("Check = %+v", resp)
	}
	select {
	case s := <-got:
		if want := "HELLO a\tbA\x00\\\r\n"; s != want {
			t.Errorf("server got %q; want %q", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server got nothing")
	}
}

// The built binary, launched as vigil launches it.
func TestTCPBinary(t *testing.T) {
	pong, _ := server(t, "127.0.0.1:0", answering("+PONG\r\n"))
	c := sdktest.LaunchCheck(t, sdktest.Build(t, "."))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Describe(ctx)
	if err != nil || info.Name != "tcp" {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
	if resp := probeOnce(t, c, time.Second, params("address", pong, "send", `PING\n`, "expect", "PONG")); resp.Status != check.OK {
		t.Errorf("ok probe = %+v", resp)
	}
	if resp := probeOnce(t, c, time.Second, params("address", closedPort(t))); resp.Status != check.Critical || !strings.Contains(resp.Message, "refused") {
		t.Errorf("refused probe = %+v", resp)
	}
	_, err = c.Configure(ctx, check.ConfigureRequest{Name: "bad", Params: params("address", "nowhere")})
	if err == nil || !strings.Contains(err.Error(), "want HOST:PORT") {
		t.Errorf("bad params through the binary = %v", err)
	}
}
