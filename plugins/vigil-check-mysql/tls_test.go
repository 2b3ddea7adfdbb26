package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/mariadb"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// pki writes a CA and, signed by it, a server certificate for 127.0.0.1 and db.test and a client
// certificate, as PEM files in dir.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyPEM := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{cn}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := leaf(2, "db.test", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cDER, cKey := leaf(3, "vigil", x509.ExtKeyUsageClientAuth, nil)
	return pki{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", sDER),
		serverKey:  keyPEM("server-key.pem", sKey),
		clientCert: write("client.pem", "CERTIFICATE", cDER),
		clientKey:  keyPEM("client-key.pem", cKey),
	}
}

func TestTLS(t *testing.T) {
	if err := mariadb.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	p := newPKI(t, t.TempDir())
	s := mariadb.StartT(t, mariadb.Options{Args: []string{
		"--ssl-ca=" + p.ca, "--ssl-cert=" + p.serverCert, "--ssl-key=" + p.serverKey,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx,
		"CREATE USER 'tls_user'@'%' IDENTIFIED BY 'tls-pass' REQUIRE SSL",
		"CREATE USER 'x509_user'@'%' IDENTIFIED BY 'x509-pass' REQUIRE X509",
	); err != nil {
		t.Fatal(err)
	}
	tlsUser := []string{"address " + s.Addr(), "user tls_user", "password tls-pass"}
	with := func(base []string, extra ...string) []string { return append(append([]string{}, base...), extra...) }
	x509User := []string{"address " + s.Addr(), "user x509_user", "password x509-pass"}

	c := sdktest.ServeCheck(t, newMySQL())
	for _, tc := range []struct {
		name    string
		params  []string
		status  check.Status
		message string
	}{
		{"verified", with(tlsUser, "tls yes", "ca_file "+p.ca), check.OK, `^query ok$`},
		{"unknown CA", with(tlsUser, "tls yes"), check.Critical, `^127\.0\.0\.1:\d+: connecting: tls: failed to verify certificate: x509: certificate signed by unknown authority`},
		{"wrong name", with(tlsUser, "tls yes", "ca_file "+p.ca, "tls_server_name db.example.com"), check.Critical, `connecting: tls: .*certificate is valid for db\.test, not db\.example\.com$`},
		{"name given", with(tlsUser, "tls yes", "ca_file "+p.ca, "tls_server_name db.test"), check.OK, `^query ok$`},
		{"skip-verify", with(tlsUser, "tls skip-verify"), check.OK, `^query ok$`},
		{"preferred", with(tlsUser, "tls preferred"), check.OK, `^query ok$`},
		{"plain to an account that requires TLS", with(tlsUser, "tls no"), check.Critical, `Access denied for user 'tls_user'.*\(error 1045\)$`},
		{"client certificate", with(x509User, "tls yes", "ca_file "+p.ca, "cert_file "+p.clientCert, "key_file "+p.clientKey), check.OK, `^query ok$`},
		{"no client certificate", with(x509User, "tls yes", "ca_file "+p.ca), check.Critical, `Access denied for user 'x509_user'.*\(error 1045\)$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, probeOnce(t, c, tc.name, 5*time.Second, tc.params...), tc.status, tc.message)
		})
	}
}
