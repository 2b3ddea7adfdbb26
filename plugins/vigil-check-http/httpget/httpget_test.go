package httpget

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// MD5s from md5sum, not from the code under test.
const (
	md5Hello   = "5d41402abc4b2a76b9719d911017c592" // "hello"
	md5Empty   = "d41d8cd98f00b204e9800998ecf8427e" // ""
	md5Chunked = "79e9489e3bd3f0cb0158215341de046d" // "5\r\nhello\r\n0\r\n\r\n"
)

// serveOnce accepts one connection on loopback, reads the request, records it and answers
// with reply (then closes, unless hold).
func serveOnce(t *testing.T, network, addr, reply string, hold bool) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	reqs := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var req []byte
		b := make([]byte, 1)
		for !strings.HasSuffix(string(req), "\r\n\r\n") {
			if _, err := c.Read(b); err != nil {
				break
			}
			req = append(req, b[0])
		}
		reqs <- string(req)
		c.Write([]byte(reply))
		if hold {
			c.Read(b) // until the client leaves
		}
	}()
	return ln.Addr().String(), reqs
}

func get(t *testing.T, addr string, req Request) (*Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	return Get(ctx, conn, addr, req)
}

func TestRequestText(t *testing.T) {
	for _, tc := range []struct {
		proto Protocol
		host  string
		want  string
	}{
		{"", "", "GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: ADDR\r\n\r\n"},
		{HTTP10Close, "", "GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: ADDR\r\n\r\n"},
		{HTTP11, "www.example.test", "GET /p HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.test\r\n\r\n"},
	} {
		addr, reqs := serveOnce(t, "tcp", "127.0.0.1:0", "HTTP/1.0 200 OK\r\n\r\n", false)
		if _, err := get(t, addr, Request{Path: "/p", Host: tc.host, Protocol: tc.proto}); err != nil {
			t.Fatal(err)
		}
		if got, want := <-reqs, strings.Replace(tc.want, "ADDR", addr, 1); got != want {
			t.Errorf("request = %q; want %q", got, want)
		}
	}
}

// keepalived's Host for an IPv6 address is the address in brackets with the port.
func TestRequestIPv6Host(t *testing.T) {
	addr, reqs := serveOnce(t, "tcp6", "[::1]:0", "HTTP/1.0 200 OK\r\n\r\n", false)
	if _, err := get(t, addr, Request{Path: "/"}); err != nil {
		t.Fatal(err)
	}
	if got := <-reqs; !strings.Contains(got, "\r\nHost: [::1]:") {
		t.Errorf("request = %q; want Host [::1]:PORT", got)
	}
}

func TestResponses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     string
		hold      bool // the server keeps the connection open after replying
		maxBody   int64
		code      int
		digest    string
		body      int64
		truncated bool
	}{
		{"body to the end of the connection", "HTTP/1.0 200 OK\r\n\r\nhello", false, 0, 200, md5Hello, 5, false},
		{"Content-Length ends the body", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", false, 0, 200, md5Hello, 5, false},
		{"Content-Length without waiting for the close", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", true, 0, 200, md5Hello, 5, false},
		{"Content-Length 0", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", true, 0, 204, md5Empty, 0, false},
		{"short body hashed as it came", "HTTP/1.0 200 OK\r\nContent-Length: 50\r\n\r\nhello", false, 0, 200, md5Hello, 5, false},
		{"chunked bytes hashed as sent, as keepalived does", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, 0, 200, md5Chunked, 15, false},
		{"over max_body", "HTTP/1.0 200 OK\r\n\r\nhelloworld", false, 5, 200, md5Hello, 5, true},
		{"exactly max_body", "HTTP/1.0 200 OK\r\n\r\nhello", false, 5, 200, md5Hello, 5, false},
		{"no status number", "HTTP/1.0 OK\r\n\r\nhello", false, 0, 0, md5Hello, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := serveOnce(t, "tcp", "127.0.0.1:0", tc.reply, tc.hold)
			resp, err := get(t, addr, Request{Path: "/", MaxBody: tc.maxBody, KeepBody: true})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || resp.Digest != tc.digest || resp.BodyBytes != tc.body || resp.Truncated != tc.truncated || int64(len(resp.Body)) != tc.body {
				t.Errorf("got code %d digest %s body %d truncated %v; want %d %s %d %v", resp.StatusCode, resp.Digest, resp.BodyBytes, resp.Truncated, tc.code, tc.digest, tc.body, tc.truncated)
			}
		})
	}
}

func TestBrokenResponses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string
		stage Stage
		want  string
	}{
		{"nothing", "", StageRead, "no HTTP response"},
		{"header cut short", "HTTP/1.0 200 OK\r\nServer: x\r\n", StageReply, "(got 28 bytes)"},
		{"header without end", "HTTP/1.0 200 OK\r\n" + strings.Repeat("X-Junk: 0123456789abcdef\r\n", 3000), StageReply, "header longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := serveOnce(t, "tcp", "127.0.0.1:0", tc.reply, false)
			_, err := get(t, addr, Request{Path: "/"})
			var ge *Error
			if !errors.As(err, &ge) || ge.Stage != tc.stage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Get = %v; want a %s error with %q", err, tc.stage, tc.want)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	if got := Digest([]byte("hello")); got != md5Hello {
		t.Errorf("Digest(hello) = %s; want %s", got, md5Hello)
	}
}
