package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pages whose MD5s come from md5sum, not from the code under test.
const (
	genhashPage   = "hello world\n" // 6f5902ac237024bdd0c176cb93063dc4
	genhashDigest = "6f5902ac237024bdd0c176cb93063dc4"
	vhostPage     = "vhost\n" // the page for Host www.example.test
	vhostDigest   = "23413b9f9f968c9303f02c47ec45efe7"
)

type genhashSeen struct {
	mu         sync.Mutex
	host, sni  string
	proto, ua  string
	connection string
}

func genhashServer(t *testing.T, useTLS bool) (string, string, *genhashSeen) {
	t.Helper()
	s := &genhashSeen{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.host, s.proto, s.ua, s.connection = r.Host, r.Proto, r.UserAgent(), r.Header.Get("Connection")
		if r.TLS != nil {
			s.sni = r.TLS.ServerName
		}
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/missing":
			http.NotFound(w, r)
		case r.Host == "www.example.test":
			fmt.Fprint(w, vhostPage)
		default:
			fmt.Fprint(w, genhashPage)
		}
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return host, port, s
}

func TestGenhash(t *testing.T) {
	host, port, s := genhashServer(t, false)
	tlsHost, tlsPort, tlsSeen := genhashServer(t, true)
	for _, tc := range []struct {
		name   string
		args   []string
		seen   *genhashSeen
		digest string
		host   string
		sni    string
		proto  string
		conn   string
	}{
		{"http", []string{"genhash", "-s", host, "-p", port, "-u", "/"}, s, genhashDigest, host + ":" + port, "", "HTTP/1.0", ""},
		{"long flags and keepalived's form", []string{"--genhash", "--server", host, "--port", port, "--url", "/index.html"}, s, genhashDigest, host + ":" + port, "", "HTTP/1.0", ""},
		{"virtualhost", []string{"genhash", "-s", host, "-p", port, "-u", "/", "-V", "www.example.test"}, s, vhostDigest, "www.example.test", "", "HTTP/1.0", ""},
		{"protocol 1.0c", []string{"genhash", "-s", host, "-p", port, "-u", "/", "-P", "1.0c"}, s, genhashDigest, host + ":" + port, "", "HTTP/1.0", "close"},
		{"protocol 1.1", []string{"genhash", "-s", host, "-p", port, "-u", "/", "-P", "1.1"}, s, genhashDigest, host + ":" + port, "", "HTTP/1.1", "close"},
		{"ssl", []string{"genhash", "-S", "-s", tlsHost, "-p", tlsPort, "-u", "/"}, tlsSeen, genhashDigest, tlsHost + ":" + tlsPort, "", "HTTP/1.0", ""},
		{"ssl with sni", []string{"genhash", "-S", "-I", "-V", "www.example.test", "-s", tlsHost, "-p", tlsPort, "-u", "/"}, tlsSeen, vhostDigest, "www.example.test", "www.example.test", "HTTP/1.0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runVigil(tc.args...)
			if code != exitOK || stdout != tc.digest+"\n" {
				t.Fatalf("vigil %v = %d, stdout %q; want %s\nstderr: %s", tc.args, code, stdout, tc.digest, stderr)
			}
			tc.seen.mu.Lock()
			defer tc.seen.mu.Unlock()
			if tc.seen.host != tc.host || tc.seen.sni != tc.sni || tc.seen.proto != tc.proto || tc.seen.ua != "KeepAliveClient" || tc.seen.connection != tc.conn {
				t.Errorf("server saw Host %q SNI %q %s agent %q Connection %q; want %q %q %s KeepAliveClient %q",
					tc.seen.host, tc.seen.sni, tc.seen.proto, tc.seen.ua, tc.seen.connection, tc.host, tc.sni, tc.proto, tc.conn)
			}
		})
	}
}

func TestGenhashFailures(t *testing.T) {
	host, port, _ := genhashServer(t, false)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"genhash", "-s", host, "-p", port}, exitUsage, "", "-s SERVER, -p PORT and -u URL are required"},
		{[]string{"genhash", "-s", host, "-p", "70000", "-u", "/"}, exitUsage, "", "invalid port number 70000"},
		{[]string{"genhash", "-s", host, "-p", port, "-u", "/", "-P", "2"}, exitUsage, "", `http_protocol "2"`},
		{[]string{"genhash", "-s", host, "-p", port, "-u", "/", "-H", "sha1"}, exitUsage, "", `hash "sha1": only md5`},
		{[]string{"genhash", "-s", host, "-p", port, "-u", "/", "-I"}, exitUsage, "", "give it with -V"},
		{[]string{"genhash", "-s", host, "-p", port, "-u", "/", "extra"}, exitUsage, "", `unexpected argument "extra"`},
		{[]string{"genhash", "-s", "127.0.0.1", "-p", closed, "-u", "/"}, genhashFailed, "", "connection refused"},
		{[]string{"genhash", "-S", "-s", host, "-p", port, "-u", "/"}, genhashFailed, "", "TLS handshake"},
		// A 404 still has a digest, as in keepalived; genhash says how to accept it.
		{[]string{"genhash", "-s", host, "-p", port, "-u", "/missing"}, exitOK, "", "add status_code 404"},
		{[]string{"genhash", "-r"}, exitOK, "vigil ", ""},
	} {
		code, stdout, stderr := runVigil(tc.args...)
		if code != tc.code || !strings.HasPrefix(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("vigil %v = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

// vigil genhash prints what keepalived's genhash prints, for the same pages: the digests in
// existing configurations stay valid. Needs genhash from Debian's keepalived package.
func TestGenhashMatchesKeepalived(t *testing.T) {
	genhash, err := exec.LookPath("genhash")
	if err != nil {
		t.Skip("keepalived's genhash is not installed (Debian package keepalived)")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked": // chunked framing when the request is HTTP/1.1
			fmt.Fprint(w, "first part\n")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "second part\n")
		case "/vhost":
			fmt.Fprintf(w, "host %s\n", r.Host)
		case "/missing":
			http.NotFound(w, r)
		default:
			fmt.Fprint(w, strings.Repeat("a page of some length\n", 2000))
		}
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	raw := rawHTTP(t, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhelloNOT PART OF THE PAGE")
	for _, tc := range []struct {
		name string
		addr string
		args []string
	}{
		{"page", plain.Listener.Addr().String(), []string{"-u", "/"}},
		{"virtualhost", plain.Listener.Addr().String(), []string{"-u", "/vhost", "-V", "www.example.test"}},
		{"no virtualhost", plain.Listener.Addr().String(), []string{"-u", "/vhost"}},
		{"404", plain.Listener.Addr().String(), []string{"-u", "/missing"}},
		{"chunked over 1.1", plain.Listener.Addr().String(), []string{"-u", "/chunked", "-P", "1.1"}},
		{"1.0c", plain.Listener.Addr().String(), []string{"-u", "/chunked", "-P", "1.0c"}},
		{"Content-Length", raw, []string{"-u", "/"}},
		{"ssl", secure.Listener.Addr().String(), []string{"-S", "-u", "/"}},
		{"ssl sni", secure.Listener.Addr().String(), []string{"-S", "-I", "-V", "www.example.test", "-u", "/vhost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tc.addr)
			args := append([]string{"-s", host, "-p", port}, tc.args...)
			ka, err := exec.Command(genhash, args...).Output()
			if err != nil {
				t.Fatalf("genhash %v: %v", args, err)
			}
			code, ours, stderr := runVigil(append([]string{"genhash"}, args...)...)
			if code != exitOK || ours != string(ka) {
				t.Errorf("vigil genhash %v = %d %q; keepalived's genhash printed %q\n%s", args, code, ours, ka, stderr)
			}
		})
	}
	// The chunked case above is one: its framing is part of the digest, as in keepalived.
	host, port, _ := net.SplitHostPort(plain.Listener.Addr().String())
	_, chunked, _ := runVigil("genhash", "-s", host, "-p", port, "-u", "/chunked", "-P", "1.1")
	_, whole, _ := runVigil("genhash", "-s", host, "-p", port, "-u", "/chunked", "-P", "1.0")
	if chunked == whole {
		t.Errorf("HTTP/1.1 and 1.0 digests of /chunked are the same (%s): the server did not chunk", whole)
	}
}

// rawHTTP answers every connection with reply, for replies net/http would not send.
func rawHTTP(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 4096)
				c.Read(b)
				c.Write([]byte(reply))
			}()
		}
	}()
	return ln.Addr().String()
}
