package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
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
