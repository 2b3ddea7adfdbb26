package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/plugins/internal/target"
	"github.com/vigil-ha/vigil/plugins/vigil-check-http/httpget"
)

// result is the outcome of one url.
type result struct {
	ok  bool
	msg string
}

// get checks one url on a fresh connection: keepalived opens one per url and probe, so that
// what is checked is the server's ability to accept, not a connection kept from before. With
// connect_timeout (p.step) each step has that long from its own start, within ctx.
func (p *probe) get(ctx context.Context, u *urlCheck) result {
	fail := func(format string, args ...any) result {
		return result{msg: "GET " + u.path + ": " + fmt.Sprintf(format, args...)}
	}
	var by time.Time // the connect's deadline, with its TLS handshake
	if p.step > 0 {
		by = time.Now().Add(p.step)
	}
	conn, err := p.target.DialBy(ctx, by)
	if err != nil {
		return fail("connect %s: %s", p.target.Address, target.Reason(err))
	}
	req := httpget.Request{
		Path:     u.path,
		Host:     p.host(u),
		Protocol: p.protocol,
		MaxBody:  p.maxBody,
		KeepBody: u.re != nil,
		Step:     p.step,
	}
	if p.tls {
		req.TLS = p.tlsConfig(u)
	}
	resp, err := httpget.Get(ctx, conn, p.target.Address, req)
	if err != nil {
		var ge *httpget.Error
		if errors.As(err, &ge) {
			return fail("%s: %s", ge.Stage, reason(ge.Err))
		}
		return fail("%s", reason(err))
	}
	if !inRanges(resp.StatusCode, u.codes) {
		if resp.StatusCode == 0 {
			return fail("no status code in %q", clip(resp.StatusLine))
		}
		return fail("status %d not in %s", resp.StatusCode, rangesText(u.codes))
	}
	if resp.Truncated && (u.digest != "" || u.re != nil) {
		return fail("body longer than max_body (%d bytes)", p.maxBody)
	}
	if u.digest != "" && resp.Digest != u.digest {
		return fail("digest mismatch: got %s want %s", resp.Digest, u.digest)
	}
	if u.re != nil {
		matched := u.re.Match(resp.Body)
		switch {
		case !matched && !u.noMatch:
			return fail("body does not match regex %q", u.reText)
		case matched && u.noMatch:
			return fail("body matches regex %q (regex_no_match)", u.reText)
		}
	}
	return result{ok: true, msg: fmt.Sprintf("GET %s: %d", u.path, resp.StatusCode)}
}

// reason words a failure; a certificate problem keeps its detail, which says what to fix.
func reason(err error) string {
	var ve *verifyError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	return target.Reason(err)
}

// host is the Host header: the url's virtualhost, the check's, or (empty) the address, in
// keepalived's order.
func (p *probe) host(u *urlCheck) string {
	if u.vhost != "" {
		return u.vhost
	}
	return p.vhost
}

// tlsConfig is the TLS client of one url. The SNI name and the verified name are chosen
// apart (keepalived sends SNI only with enable_sni, and Go ties SNI to verification), so
// verification is done here rather than by crypto/tls.
func (p *probe) tlsConfig(u *urlCheck) *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified in VerifyConnection when tls_verify is set
		Certificates:       p.certs,
	}
	name := p.sniName
	if name == "" {
		name = p.host(u)
	}
	if p.sni {
		cfg.ServerName = name // Go sends no SNI for an IP address, as RFC 6066 says
	}
	if !p.verify {
		return cfg
	}
	if name == "" {
		name = hostOf(p.target.Address)
	}
	roots := p.roots
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &verifyError{errors.New("the server sent no certificate")}
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
		if err != nil {
			return &verifyError{err}
		}
		return nil
	}
	return cfg
}

// verifyError is a certificate that tls_verify refused.
type verifyError struct{ err error }

func (e *verifyError) Error() string { return "certificate verification failed: " + e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

func inRanges(code int, rs []codeRange) bool {
	for _, r := range rs {
		if code >= r.from && code <= r.to {
			return true
		}
	}
	return false
}

func rangesText(rs []codeRange) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, " ")
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
