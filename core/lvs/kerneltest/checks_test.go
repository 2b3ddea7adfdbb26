package kerneltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/supervisor"
	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// selfSigned is a TLS configuration with a certificate the test makes.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "backend.example"},
		DNSNames:     []string{"backend.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// realServer finds a real server in vigil's status.
func realServer(st *supervisor.LVSStatus, vs, addr string) *supervisor.RealServerStatus {
	for i := range st.VirtualServers {
		v := &st.VirtualServers[i]
		if v.ID != vs {
			continue
		}
		for j := range v.RealServers {
			if v.RealServers[j].Address == addr {
				return &v.RealServers[j]
			}
		}
	}
	return nil
}

// TestVMChecks: a real server whose check fails (HTTP_GET answering 500, SSL_GET on a real
// TLS server answering 500, TCP_CHECK on a closed port) leaves the kernel's table and
// vigil's status says so; no request through the VIP fails afterwards; it comes back when
// it recovers. With inhibit_on_failure its weight goes to 0 and a connection through the
// VIP established before lives on.
func TestVMChecks(t *testing.T) {
	vm.Guest(t)
	// Each test has namespaces (and so IPVS tables) of its own: they overlap their waits.
	t.Parallel()
	tp := newTopo(t, "chk")
	cert := selfSigned(t)
	for _, b := range tp.backends {
		b.serve(t, 8443, cert)
		b.serve(t, 8082, nil)
	}
	b1 := tp.backends[0]
	b1.serve(t, 8083, nil)
	b1.echo(t, 9000)
	check := func(kind, extra string) string {
		return fmt.Sprintf("        %s {\n%s            connect_timeout 2\n            retry 1\n            delay_before_retry 1\n        }\n", kind, extra)
	}
	url := "            url {\n                path /\n                status_code 200\n            }\n"
	conf := fmt.Sprintf(`
virtual_server %[1]s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%[2]s}
virtual_server %[1]s 82 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%[3]s}
virtual_server %[1]s 83 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%[4]s}
virtual_server %[1]s 90 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %[5]s 9000 {
        weight 1
        inhibit_on_failure
%[6]s    }
}
`, vipNAT,
		realServers(tp, 8080, []int{1, 1, 1}, check("HTTP_GET", url)),
		realServers(tp, 8443, []int{1, 1, 1}, check("SSL_GET", url)),
		realServers(tp, 8082, []int{1, 1, 1}, check("TCP_CHECK", "")),
		b1.addr, check("TCP_CHECK", "            connect_port 8083\n"))
	d := startVigil(t, tp.dir, conf)
	full := func(port int) []string {
		var ds []string
		for _, b := range tp.backends {
			ds = append(ds, fmt.Sprintf("%s:%d Masq 1", b.addr, port))
		}
		return ds
	}
	table := func(svc string, want []string) func() bool {
		return func() bool {
			out, _ := tp.dir.try("ipvsadm", "-Ln")
			return slices.Equal(dests(out, "TCP "+svc), want)
		}
	}
	for port, svc := range map[int]string{8080: vipNAT + ":80", 8443: vipNAT + ":82", 8082: vipNAT + ":83"} {
		waitFor(t, 60*time.Second, svc+" has its three servers", table(svc, full(port)))
	}
	waitFor(t, 60*time.Second, "the inhibit service has b1", table(vipNAT+":90", []string{b1.addr + ":9000 Masq 1"}))

	b2 := tp.backends[1]
	for _, c := range []struct {
		name      string
		vport     int
		port      int
		fail, fix func()
	}{
		{"HTTP_GET", 80, 8080, func() { b2.setFail(8080, true) }, func() { b2.setFail(8080, false) }},
		{"SSL_GET", 82, 8443, func() { b2.setFail(8443, true) }, func() { b2.setFail(8443, false) }},
		{"TCP_CHECK", 83, 8082, func() { b2.stop(8082) }, func() { b2.serve(t, 8082, nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc := fmt.Sprintf("%s:%d", vipNAT, c.vport)
			id := "TCP " + svc
			rs := fmt.Sprintf("%s:%d", b2.addr, c.port)
			c.fail()
			waitFor(t, 60*time.Second, "b2 leaves "+svc, table(svc, []string{tp.backends[0].addr + fmt.Sprintf(":%d Masq 1", c.port), tp.backends[2].addr + fmt.Sprintf(":%d Masq 1", c.port)}))
			st, err := d.status()
			if err != nil {
				t.Fatal(err)
			}
			if r := realServer(st, id, rs); r == nil || r.Alive || r.InTable {
				t.Errorf("vigil status of %s in %s after the failure: %+v", rs, id, r)
			}
			scheme := "http"
			if c.port == 8443 {
				scheme = "https"
			}
			got := spreadTLS(t, tp, fmt.Sprintf("%s://%s/", scheme, svc), 60)
			if want := map[string]int{"b1": 30, "b3": 30}; !maps.Equal(got, want) {
				t.Errorf("60 requests with b2 out: %v, want %v", got, want)
			}
			c.fix()
			waitFor(t, 60*time.Second, "b2 back in "+svc, table(svc, full(c.port)))
			if st, err = d.status(); err != nil {
				t.Fatal(err)
			}
			if r := realServer(st, id, rs); r == nil || !r.Alive || !r.InTable || r.TableWeight != 1 {
				t.Errorf("vigil status of %s in %s after recovery: %+v", rs, id, r)
			}
		})
	}

	t.Run("inhibit_on_failure", func(t *testing.T) {
		svc := vipNAT + ":90"
		conn, err := tp.client.dial(t.Context(), "tcp", svc)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ping := func(i int) {
			t.Helper()
			msg := fmt.Sprintf("ping %d\n", i)
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatalf("established connection, write %d: %v", i, err)
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
				t.Fatalf("established connection, echo %d: %q %v", i, buf, err)
			}
		}
		ping(0)
		b1.stop(8083)
		waitFor(t, 60*time.Second, "b1's weight goes to 0", table(svc, []string{b1.addr + ":9000 Masq 0"}))
		st, err := d.status()
		if err != nil {
			t.Fatal(err)
		}
		if r := realServer(st, "TCP "+svc, b1.addr+":9000"); r == nil || r.Alive || !r.InTable || r.TableWeight != 0 {
			t.Errorf("vigil status of b1 inhibited: %+v", r)
		}
		for i := 1; i <= 20; i++ {
			ping(i)
		}
		out := tp.dir.exec(t, "ipvsadm", "-Lnc")
		if !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, b1.addr+":9000") {
			t.Errorf("ipvsadm -Lnc lacks the established connection to b1:\n%s", out)
		}
		b1.serve(t, 8083, nil)
		waitFor(t, 60*time.Second, "b1's weight back to 1", table(svc, []string{b1.addr + ":9000 Masq 1"}))
		ping(21)
	})
}

// spreadTLS is spread, accepting the backends' self-signed certificate.
func spreadTLS(t *testing.T, tp *topo, url string, n int) map[string]int {
	t.Helper()
	return spreadWith(t, tp.client, url, n, &tls.Config{InsecureSkipVerify: true})
}
