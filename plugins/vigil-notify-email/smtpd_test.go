package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpd is a small SMTP server for tests, on 127.0.0.1:0: EHLO, optional STARTTLS or TLS
// from the start, optional AUTH PLAIN/LOGIN against one user, MAIL, RCPT, DATA, QUIT. It
// keeps what it received.
type smtpd struct {
	ln       net.Listener
	tls      *tls.Config // offered with STARTTLS, or used from the start when implicit
	implicit bool
	user     string // "": no AUTH offered
	pass     string
	hang     bool // accept and greet nothing

	mu   sync.Mutex
	mail []received
}

type received struct {
	from   string
	to     []string
	data   string
	tls    bool
	authed string
}

func startSMTPD(t *testing.T, s *smtpd) *smtpd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.implicit {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpd) port() string {
	_, p, _ := net.SplitHostPort(s.ln.Addr().String())
	return p
}

func (s *smtpd) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received{}, s.mail...)
}

func (s *smtpd) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if s.hang {
		time.Sleep(30 * time.Second)
		return
	}
	_, secure := c.(*tls.Conn)
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	read := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			return ""
		}
		return strings.TrimRight(l, "\r\n")
	}
	say("220 test ESMTP")
	var m received
	for {
		line := read()
		if line == "" {
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-test")
			if s.tls != nil && !s.implicit && !secure {
				say("250-STARTTLS")
			}
			if s.user != "" {
				say("250-AUTH PLAIN LOGIN")
			}
			say("250 8BITMIME")
		case "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure = tc, true
			r = bufio.NewReader(c)
		case "AUTH":
			f := strings.Fields(line)
			var user, pass string
			switch strings.ToUpper(f[1]) {
			case "PLAIN":
				resp := ""
				if len(f) > 2 {
					resp = f[2]
				} else {
					say("334 ")
					resp = read()
				}
				b, _ := base64.StdEncoding.DecodeString(resp)
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					user, pass = parts[1], parts[2]
				}
			case "LOGIN":
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Username:")))
				b, _ := base64.StdEncoding.DecodeString(read())
				user = string(b)
				say("334 " + base64.StdEncoding.EncodeToString([]byte("Password:")))
				b, _ = base64.StdEncoding.DecodeString(read())
				pass = string(b)
			}
			if user == s.user && pass == s.pass {
				m.authed = user
				say("235 ok")
			} else {
				say("535 bad credentials")
			}
		case "MAIL":
			if s.user != "" && m.authed == "" {
				say("530 authentication required")
				continue
			}
			m.from = strings.TrimSuffix(strings.TrimPrefix(line[len("MAIL FROM:"):], "<"), ">")
			m.from, _, _ = strings.Cut(m.from, ">")
			say("250 ok")
		case "RCPT":
			to := strings.TrimSuffix(strings.TrimPrefix(line[len("RCPT TO:"):], "<"), ">")
			m.to = append(m.to, to)
			say("250 ok")
		case "DATA":
			say("354 end with .")
			var data strings.Builder
			for {
				l := read()
				if l == "." {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".") + "\n")
			}
			m.data, m.tls = data.String(), secure
			s.mu.Lock()
			s.mail = append(s.mail, m)
			s.mu.Unlock()
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not here")
		}
	}
}

// testCert makes a CA and a server certificate for 127.0.0.1; it returns the server's TLS
// config and the CA's PEM file.
func testCert(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}
