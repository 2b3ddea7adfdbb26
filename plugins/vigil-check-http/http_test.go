package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// page is a body whose MD5 is known independently of the code under test (md5sum).
const (
	page       = "hello world\n"
	pageDigest = "6f5902ac237024bdd0c176cb93063dc4"
)

// seen records what the server saw of the last request.
type seen struct {
	mu     sync.Mutex
	host   string
	sni    string
	proto  string
	agent  string
	remote string
}

func (s *seen) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{host: s.host, sni: s.sni, proto: s.proto, agent: s.agent, remote: s.remote}
}

// handler serves page at /, a status of choice at /status/NNN, a redirect at /moved, and a
// page that never comes at /slow.
func handler(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.host, s.proto, s.agent, s.remote = r.Host, r.Proto, r.UserAgent(), r.RemoteAddr
		if r.TLS != nil {
			s.sni = r.TLS.ServerName
		}
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/":
			fmt.Fprint(w, page)
		case strings.HasPrefix(r.URL.Path, "/status/"):
			var code int
			fmt.Sscanf(r.URL.Path, "/status/%d", &code)
			w.WriteHeader(code)
			fmt.Fprint(w, page)
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "/", http.StatusFound)
		case r.URL.Path == "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case r.URL.Path == "/big":
			w.Write([]byte(strings.Repeat("x", 4096)))
		default:
			http.NotFound(w, r)
		}
	})
}

// pki is a generated CA and a server certificate it signed for 127.0.0.1 and
// www.example.test, in files.
type pki struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "www.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"www.example.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, "CERTIFICATE", caDER)
	write(p.certFile, "CERTIFICATE", der)
	write(p.keyFile, "EC PRIVATE KEY", keyDER)
	p.server, err = tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func httpServer(t *testing.T) (string, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(handler(s))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), s
}

// httpsServer serves over TLS with p's certificate; clientCA, when set, requires a client
// certificate signed by it.
func httpsServer(t *testing.T, p pki, clientCA bool) (string, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(handler(s))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
	if clientCA {
		pool := x509.NewCertPool()
		b, _ := os.ReadFile(p.caFile)
		pool.AppendCertsFromPEM(b)
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), s
}

// rawServer answers every connection with serve, for replies net/http would not send.
func rawServer(t *testing.T, serve func(net.Conn)) string {
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
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequest reads a request up to its empty line.
func readRequest(c net.Conn) string {
	var req []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(req), "\r\n\r\n") {
		if _, err := c.Read(b); err != nil {
			break
		}
		req = append(req, b[0])
	}
	return string(req)
}

// P builds a param; url blocks with U.
func P(key string, values ...string) check.Param { return check.Param{Key: key, Values: values} }

func U(ps ...check.Param) check.Param { return check.Param{Key: "url", Block: ps} }

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
	if strings.Contains(resp.Message, "\n") {
		t.Errorf("message %q is not one line", resp.Message)
	}
	return resp
}

type probeCase struct {
	name    string
	params  []check.Param
	timeout time.Duration
	status  check.Status
	msg     string
}

func runCases(t *testing.T, c check.Checker, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			resp := probeOnce(t, c, timeout, tc.params)
			t.Logf("%s %q", resp.Status, resp.Message)
			if resp.Status != tc.status || !strings.Contains(resp.Message, tc.msg) {
				t.Fatalf("Check = %s %q; want %s with %q", resp.Status, resp.Message, tc.status, tc.msg)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	addr, _ := httpServer(t)
	refused := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	a := P("address", addr)
	runCases(t, sdktest.ServeCheck(t, newHTTP()), []probeCase{
		{"default status 200-299", []check.Param{a, U(P("path", "/"))}, 0, check.OK, "GET /: 200 in "},
		{"status in a range", []check.Param{a, U(P("path", "/status/204"), P("status_code", "200-299"))}, 0, check.OK, "GET /status/204: 204"},
		{"status outside the default", []check.Param{a, U(P("path", "/status/503"))}, 0, check.Critical, "GET /status/503: status 503 not in 200-299"},
		{"status in one of several", []check.Param{a, U(P("path", "/status/503"), P("status_code", "200", "500-503"))}, 0, check.OK, "503"},
		{"status outside several", []check.Param{a, U(P("path", "/status/404"), P("status_code", "200", "500-503"))}, 0, check.Critical, "status 404 not in 200 500-503"},
		{"a redirect is not followed", []check.Param{a, U(P("path", "/moved"))}, 0, check.Critical, "status 302 not in 200-299"},
		{"a redirect as the expected status", []check.Param{a, U(P("path", "/moved"), P("status_code", "300-399"))}, 0, check.OK, "302"},
		{"digest match", []check.Param{a, U(P("path", "/"), P("digest", strings.ToUpper(pageDigest)))}, 0, check.OK, "GET /: 200"},
		{"digest mismatch", []check.Param{a, U(P("path", "/"), P("digest", "0123456789abcdef0123456789abcdef"))}, 0, check.Critical,
			"GET /: digest mismatch: got " + pageDigest + " want 0123456789abcdef0123456789abcdef"},
		{"regex", []check.Param{a, U(P("path", "/"), P("regex", "^hello"))}, 0, check.OK, "200"},
		{"regex fails", []check.Param{a, U(P("path", "/"), P("regex", "^HELLO"))}, 0, check.Critical, `body does not match regex "^HELLO"`},
		{"regex caseless", []check.Param{a, U(P("path", "/"), P("regex", "^HELLO"), P("regex_options", "caseless"))}, 0, check.OK, "200"},
		{"regex_no_match", []check.Param{a, U(P("path", "/"), P("regex", "world"), P("regex_no_match"))}, 0, check.Critical, "(regex_no_match)"},
		{"several urls", []check.Param{a, U(P("path", "/")), U(P("path", "/status/201"))}, 0, check.OK, "2 urls ok"},
		{"first failing url named", []check.Param{a, U(P("path", "/")), U(P("path", "/status/500")), U(P("path", "/nope"))}, 0, check.Critical, "GET /status/500: status 500"},
		{"refused", []check.Param{P("address", refused), U(P("path", "/"))}, 0, check.Critical, "GET /: connect " + refused + ": refused"},
		{"timeout via the probe deadline", []check.Param{a, U(P("path", "/slow"))}, 300 * time.Millisecond, check.Critical, "GET /slow: read: timeout"},
		{"body over max_body fails a digest", []check.Param{a, P("max_body", "1k"), U(P("path", "/big"), P("digest", pageDigest))}, 0, check.Critical, "body longer than max_body (1024 bytes)"},
		{"body over max_body with status only", []check.Param{a, P("max_body", "1k"), U(P("path", "/big"))}, 0, check.OK, "200"},
	})
}

// The request is keepalived's: HTTP/1.0 by default, its User-Agent, Host the address or the
// virtualhost (the url's first, then the check's).
func TestHTTPRequest(t *testing.T) {
	addr, s := httpServer(t)
	c := sdktest.ServeCheck(t, newHTTP())
	for _, tc := range []struct {
		params []check.Param
		host   string
		proto  string
	}{
		{[]check.Param{P("address", addr), U(P("path", "/"))}, addr, "HTTP/1.0"},
		{[]check.Param{P("address", addr), P("virtualhost", "www.example.test"), U(P("path", "/"))}, "www.example.test", "HTTP/1.0"},
		{[]check.Param{P("address", addr), P("virtualhost", "www.example.test"), U(P("path", "/"), P("virtualhost", "url.example.test"))}, "url.example.test", "HTTP/1.0"},
		{[]check.Param{P("address", addr), P("http_protocol", "1.1"), U(P("path", "/"))}, addr, "HTTP/1.1"},
	} {
		if resp := probeOnce(t, c, 2*time.Second, tc.params); resp.Status != check.OK {
			t.Fatalf("Check(%v) = %+v", tc.params, resp)
		}
		got := s.get()
		if got.host != tc.host || got.proto != tc.proto || got.agent != "KeepAliveClient" {
			t.Errorf("server saw Host %q %s agent %q; want %q %s KeepAliveClient", got.host, got.proto, got.agent, tc.host, tc.proto)
		}
	}
	// bind_port: the server sees the source port, and several urls take turns on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	ps := []check.Param{P("address", addr), P("bind_port", port), U(P("path", "/")), U(P("path", "/status/201")), U(P("path", "/status/202"))}
	if resp := probeOnce(t, c, 2*time.Second, ps); resp.Status != check.OK {
		t.Fatalf("Check with bind_port and 3 urls = %s %q", resp.Status, resp.Message)
	}
	if got := s.get(); !strings.HasSuffix(got.remote, ":"+port) {
		t.Errorf("server saw the request from %s; want port %s", got.remote, port)
	}
	// bindto: the server sees the source address.
	if resp := probeOnce(t, c, 2*time.Second, []check.Param{P("address", addr), P("bindto", "127.0.0.2"), U(P("path", "/"))}); resp.Status != check.OK {
		t.Fatalf("Check with bindto = %+v", resp)
	}
	if got := s.get(); !strings.HasPrefix(got.remote, "127.0.0.2:") {
		t.Errorf("server saw the request from %s; want 127.0.0.2", got.remote)
	}
}

// The digest covers the body as sent, up to Content-Length, which a raw server controls.
func TestHTTPDigestBytes(t *testing.T) {
	reqs := make(chan string, 4)
	addr := rawServer(t, func(c net.Conn) {
		reqs <- readRequest(c)
		// Content-Length says 12: the bytes after it are not part of the page.
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n%sTRAILING GARBAGE", page)
	})
	resp := probeOnce(t, sdktest.ServeCheck(t, newHTTP()), 2*time.Second, []check.Param{P("address", addr), U(P("path", "/x?y=1"), P("digest", pageDigest))})
	if resp.Status != check.OK {
		t.Fatalf("Check = %+v", resp)
	}
	want := "GET /x?y=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + addr + "\r\n\r\n"
	if got := <-reqs; got != want {
		t.Errorf("request = %q; want %q", got, want)
	}
}

func TestHTTPBrokenServers(t *testing.T) {
	closing := rawServer(t, func(c net.Conn) { readRequest(c) })
	silent := rawServer(t, func(c net.Conn) { readRequest(c); time.Sleep(5 * time.Second) })
	garbage := rawServer(t, func(c net.Conn) { readRequest(c); fmt.Fprint(c, "SSH-2.0-OpenSSH\r\n\r\n") })
	plain, _ := httpServer(t)
	runCases(t, sdktest.ServeCheck(t, newHTTP()), []probeCase{
		{"closes without answer", []check.Param{P("address", closing), U(P("path", "/"))}, 0, check.Critical, "GET /: read: no HTTP response"},
		{"never answers", []check.Param{P("address", silent), U(P("path", "/"))}, 300 * time.Millisecond, check.Critical, "GET /: read: timeout"},
		{"not HTTP", []check.Param{P("address", garbage), U(P("path", "/"))}, 0, check.Critical, `no status code in "SSH-2.0-OpenSSH"`},
		{"TLS to a plain server", []check.Param{P("address", plain), P("tls", "yes"), U(P("path", "/"))}, 0, check.Critical, "GET /: TLS handshake:"},
	})
}

func TestHTTPS(t *testing.T) {
	p := newPKI(t)
	addr, s := httpsServer(t, p, false)
	mtls, _ := httpsServer(t, p, true)
	otherCA := newPKI(t).caFile
	base := func(ps ...check.Param) []check.Param {
		return append([]check.Param{P("address", addr), P("tls", "yes")}, append(ps, U(P("path", "/"), P("digest", pageDigest)))...)
	}
	runCases(t, sdktest.ServeCheck(t, newHTTP()), []probeCase{
		{"no verification, as keepalived", base(), 0, check.OK, "GET /: 200"},
		{"verified by the address's IP", base(P("tls_verify", "yes"), P("ca_file", p.caFile)), 0, check.OK, "200"},
		{"verified by the virtualhost", base(P("tls_verify", "yes"), P("ca_file", p.caFile), P("virtualhost", "www.example.test")), 0, check.OK, "200"},
		{"verified by sni_name", base(P("tls_verify", "yes"), P("ca_file", p.caFile), P("sni_name", "www.example.test")), 0, check.OK, "200"},
		{"unknown CA", base(P("tls_verify", "yes"), P("ca_file", otherCA)), 0, check.Critical,
			"GET /: TLS handshake: certificate verification failed: x509: certificate signed by unknown authority"},
		{"system roots do not know the test CA", base(P("tls_verify", "yes")), 0, check.Critical, "certificate verification failed"},
		{"name mismatch", base(P("tls_verify", "yes"), P("ca_file", p.caFile), P("virtualhost", "other.example.test")), 0, check.Critical,
			"certificate verification failed: x509: certificate is valid for www.example.test, not other.example.test"},
		{"client certificate required, none sent", []check.Param{P("address", mtls), P("tls", "yes"), U(P("path", "/"))}, 0, check.Critical, "GET /: read: tls: certificate required"},
		{"client certificate", []check.Param{P("address", mtls), P("tls", "yes"), P("cert_file", p.certFile), P("key_file", p.keyFile), U(P("path", "/"))}, 0, check.OK, "200"},
	})

	// SNI: none without enable_sni (keepalived's default), the virtualhost or sni_name with it.
	c := sdktest.ServeCheck(t, newHTTP())
	for _, tc := range []struct {
		params []check.Param
		sni    string
		host   string
	}{
		{base(P("virtualhost", "www.example.test")), "", "www.example.test"},
		{base(P("virtualhost", "www.example.test"), P("enable_sni", "yes")), "www.example.test", "www.example.test"},
		{base(P("virtualhost", "www.example.test"), P("sni_name", "sni.example.test")), "sni.example.test", "www.example.test"},
		{base(P("enable_sni")), "", addr}, // no name to send: an IP is never sent as SNI
	} {
		if resp := probeOnce(t, c, 2*time.Second, tc.params); resp.Status != check.OK {
			t.Fatalf("Check(%v) = %+v", tc.params, resp)
		}
		if got := s.get(); got.sni != tc.sni || got.host != tc.host {
			t.Errorf("Check(%v): server saw SNI %q Host %q; want %q %q", tc.params, got.sni, got.host, tc.sni, tc.host)
		}
	}
}

func TestHTTPRejectsBadParams(t *testing.T) {
	p := newPKI(t)
	a := P("address", "127.0.0.1:80")
	root := U(P("path", "/"))
	c := sdktest.ServeCheck(t, newHTTP())
	for _, tc := range []struct {
		params []check.Param
		want   string
	}{
		{[]check.Param{root}, "address is required"},
		{[]check.Param{a}, "no url to check: add url { path / }"},
		{[]check.Param{a, U(P("digest", pageDigest))}, "url has no path"},
		{[]check.Param{a, P("url", "/")}, "url is a block"},
		{[]check.Param{a, U(P("path", "/a b"))}, `url path "/a b"`},
		{[]check.Param{a, U(P("path", "/"), P("digest", "abc"))}, `url digest "abc": want the 32 hex digits`},
		{[]check.Param{a, U(P("path", "/"), P("digest", strings.Repeat("g", 32)))}, "want the 32 hex digits"},
		{[]check.Param{a, U(P("path", "/"), P("status_code", "99"))}, `status_code "99"`},
		{[]check.Param{a, U(P("path", "/"), P("status_code", "300-200"))}, `status_code "300-200"`},
		{[]check.Param{a, U(P("path", "/"), P("status_code", "2xx"))}, `status_code "2xx"`},
		{[]check.Param{a, U(P("path", "/"), P("regex", "("))}, "regex \"(\" (Go RE2 syntax)"},
		{[]check.Param{a, U(P("path", "/"), P("regex", "a"), P("regex_options", "extended"))}, `regex_options "extended" is not supported`},
		{[]check.Param{a, U(P("path", "/"), P("regex_no_match"))}, "need a regex"},
		{[]check.Param{a, U(P("path", "/"), P("regex_min_offset", "10"))}, "regex_min_offset is not supported"},
		{[]check.Param{a, U(P("path", "/"), P("bogus", "1"))}, `unknown url param "bogus"`},
		{[]check.Param{a, root, P("http_protocol", "2")}, `http_protocol "2": want 1.0, 1.0C or 1.1`},
		{[]check.Param{a, root, P("tls", "maybe")}, `tls "maybe": want yes or no`},
		{[]check.Param{a, root, P("enable_sni", "yes")}, "enable_sni applies to HTTPS only: add tls yes"},
		{[]check.Param{a, root, P("tls_verify", "yes")}, "tls_verify applies to HTTPS only"},
		{[]check.Param{a, root, P("tls", "yes"), P("ca_file", "/nonexistent/ca.pem"), P("tls_verify", "yes")}, "ca_file: stat /nonexistent/ca.pem: no such file"},
		{[]check.Param{a, root, P("tls", "yes"), P("ca_file", p.keyFile), P("tls_verify", "yes")}, "no PEM certificate in it"},
		{[]check.Param{a, root, P("tls", "yes"), P("ca_file", p.caFile)}, "ca_file is only used with tls_verify yes"},
		{[]check.Param{a, root, P("tls", "yes"), P("cert_file", p.certFile)}, "cert_file needs key_file"},
		{[]check.Param{a, root, P("tls", "yes"), P("cert_file", p.certFile), P("key_file", p.caFile)}, "cert_file " + p.certFile + ", key_file " + p.caFile},
		{[]check.Param{a, root, P("max_body", "lots")}, `max_body "lots"`},
		{[]check.Param{a, root, P("connect_timeout", "soon")}, `connect_timeout: "soon": want seconds`},
		{[]check.Param{a, root, P("connect_timeout", "0")}, "connect_timeout must be more than 0"},
		{[]check.Param{a, root, P("bogus", "3")}, `unknown param "bogus" (known: address`},
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

// A probe cancelled by vigil ends at once, not at the server's leisure.
func TestHTTPCancel(t *testing.T) {
	addr, _ := httpServer(t)
	p, err := parse([]check.Param{P("address", addr), U(P("path", "/slow"))})
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

// The built binary, launched as vigil launches it, over HTTP and HTTPS.
func TestHTTPBinary(t *testing.T) {
	p := newPKI(t)
	plain, _ := httpServer(t)
	secure, _ := httpsServer(t, p, false)
	c := sdktest.LaunchCheck(t, sdktest.Build(t, "."))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if info, err := c.Describe(ctx); err != nil || info.Name != "http" {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
	runCases(t, c, []probeCase{
		{"http digest", []check.Param{P("address", plain), U(P("path", "/"), P("digest", pageDigest))}, 0, check.OK, "GET /: 200"},
		{"http status", []check.Param{P("address", plain), U(P("path", "/status/503"))}, 0, check.Critical, "status 503 not in 200-299"},
		{"https verified", []check.Param{P("address", secure), P("tls", "yes"), P("tls_verify", "yes"), P("ca_file", p.caFile), U(P("path", "/"))}, 0, check.OK, "200"},
		{"https unverified CA", []check.Param{P("address", secure), P("tls", "yes"), P("tls_verify", "yes"), U(P("path", "/"))}, 0, check.Critical, "certificate verification failed"},
	})
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "bad", Params: []check.Param{P("address", plain)}}); err == nil || !strings.Contains(err.Error(), "no url to check") {
		t.Errorf("bad params through the binary = %v", err)
	}
}

// The digest that keepalived's genhash prints for a page is the one the check accepts, so
// existing HTTP_GET blocks keep working. Needs genhash from Debian's keepalived package.
func TestHTTPDigestFromKeepalivedGenhash(t *testing.T) {
	genhash, err := exec.LookPath("genhash")
	if err != nil {
		t.Skip("keepalived's genhash is not installed (Debian package keepalived)")
	}
	addr, _ := httpServer(t)
	p := newPKI(t)
	secure, _ := httpsServer(t, p, false)
	c := sdktest.ServeCheck(t, newHTTP())
	for _, tc := range []struct {
		addr string
		path string
		args []string // genhash's, besides -s -p -u
		ps   []check.Param
	}{
		{addr, "/status/200", nil, nil},
		{addr, "/", []string{"-P", "1.1"}, []check.Param{P("http_protocol", "1.1")}},
		{secure, "/", []string{"-S"}, []check.Param{P("tls", "yes")}},
	} {
		host, port, _ := net.SplitHostPort(tc.addr)
		args := append([]string{"-s", host, "-p", port, "-u", tc.path}, tc.args...)
		out, err := exec.Command(genhash, args...).Output()
		if err != nil {
			t.Fatalf("genhash %v: %v", args, err)
		}
		digest := strings.TrimSpace(string(out))
		ps := append([]check.Param{P("address", tc.addr), U(P("path", tc.path), P("digest", digest))}, tc.ps...)
		if resp := probeOnce(t, c, 2*time.Second, ps); resp.Status != check.OK {
			t.Errorf("Check with genhash's digest %s (%v) = %s %q", digest, args, resp.Status, resp.Message)
		}
	}
}

// connect_timeout times each step of a GET from its own start, as keepalived's HTTP_GET does
// (each read waits connect_timeout for the server), while the probe's timeout bounds the whole:
// a server that pauses between its writes for less than a step passes though the pauses add
// up to more; one that falls silent for longer fails at that read, long before the probe's
// timeout; and one that trickles forever fails at the probe's timeout.
func TestHTTPStepTimeouts(t *testing.T) {
	pieces := []string{"HTTP/1.0 200 OK\r\n", "Content-Length: 2\r\n", "\r\n", "ok"}
	paused := rawServer(t, func(c net.Conn) {
		readRequest(c)
		for _, s := range pieces {
			time.Sleep(300 * time.Millisecond)
			c.Write([]byte(s))
		}
	})
	silent := rawServer(t, func(c net.Conn) {
		readRequest(c)
		c.Write([]byte(pieces[0]))
		c.Read(make([]byte, 1)) // until the checker gives up and closes
	})
	trickle := rawServer(t, func(c net.Conn) {
		readRequest(c)
		c.Write([]byte(pieces[0]))
		for {
			time.Sleep(200 * time.Millisecond)
			if _, err := c.Write([]byte("X-Trickle: 1\r\n")); err != nil {
				return
			}
		}
	})
	step := P("connect_timeout", "1")
	root := U(P("path", "/"))
	c := newHTTP()

	// 4 × 300 ms of pauses: more than a step, less than the probe.
	resp := probeOnce(t, c, 5*time.Second, []check.Param{P("address", paused), step, root})
	if resp.Status != check.OK {
		t.Errorf("pauses shorter than a step: %s %q; want ok", resp.Status, resp.Message)
	}
	// The same server with a probe timeout of one step and no connect_timeout: the pauses
	// add up past the whole (the test that the case above measures something).
	resp = probeOnce(t, c, time.Second, []check.Param{P("address", paused), root})
	if resp.Status != check.Critical || !strings.Contains(resp.Message, "read: timeout") {
		t.Errorf("pauses past a whole probe of one step: %s %q; want critical read: timeout", resp.Status, resp.Message)
	}

	start := time.Now()
	resp = probeOnce(t, c, time.Minute, []check.Param{P("address", silent), step, root})
	if resp.Status != check.Critical || !strings.Contains(resp.Message, "read: timeout") {
		t.Errorf("a server silent for more than a step: %s %q; want critical read: timeout", resp.Status, resp.Message)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("a server silent for more than a step was given %v: the probe's timeout (1m), not the step's (1s)", d)
	}

	resp = probeOnce(t, c, 2*time.Second, []check.Param{P("address", trickle), step, root})
	if resp.Status != check.Critical || !strings.Contains(resp.Message, "read: timeout") {
		t.Errorf("a server that trickles: %s %q; want critical read: timeout at the probe's timeout", resp.Status, resp.Message)
	}
}
