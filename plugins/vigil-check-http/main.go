// Command vigil-check-http is vigil's HTTP check plugin: keepalived's HTTP_GET and SSL_GET run
// through it. A probe GETs each configured url on a fresh connection and checks the status
// code, and optionally the MD5 digest of the body (as keepalived's genhash computes it) or a
// regular expression. See README.md.
package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/plugins/internal/target"
	"github.com/vigil-ha/vigil/sdk/check"
)

func main() { check.Serve(newHTTP()) }

// httpChecker keeps the configured probes by check name; vigil calls it concurrently.
type httpChecker struct {
	checks check.Configured[*probe]
}

var _ check.Checker = (*httpChecker)(nil)

func newHTTP() *httpChecker { return &httpChecker{} }

func (c *httpChecker) Describe(context.Context) (check.Info, error) {
	return check.Info{
		Name:        "http",
		Version:     "0.1.0",
		Description: "GETs urls over HTTP or HTTPS and checks status code, MD5 digest or a regex (keepalived's HTTP_GET and SSL_GET)",
		Params: append(target.Specs(),
			check.ParamSpec{Name: "tls", Type: check.TypeBool, Default: "no", Description: "HTTPS (keepalived's SSL_GET)"},
			check.ParamSpec{Name: "url", Type: check.TypeBlock, Required: true, Description: "a url to GET, several allowed: { path /x  digest HEX  status_code 200 300-399  virtualhost NAME  regex RE  regex_no_match }"},
			check.ParamSpec{Name: "virtualhost", Type: check.TypeString, Description: "Host header (and SNI name with enable_sni) for urls without their own; default: the address"},
			check.ParamSpec{Name: "http_protocol", Type: check.TypeString, Default: "1.0", Description: "1.0, 1.0C (1.0 with Connection: close) or 1.1"},
			check.ParamSpec{Name: "enable_sni", Type: check.TypeBool, Default: "no", Description: "send SNI: sni_name, else the virtualhost"},
			check.ParamSpec{Name: "sni_name", Type: check.TypeString, Description: "the SNI name to send (implies enable_sni)"},
			check.ParamSpec{Name: "tls_verify", Type: check.TypeBool, Default: "no", Description: "verify the server's certificate chain and name (keepalived does not)"},
			check.ParamSpec{Name: "ca_file", Type: check.TypeString, Description: "PEM CA certificates to verify against (default: the system's); keepalived's SSL block: ca"},
			check.ParamSpec{Name: "cert_file", Type: check.TypeString, Description: "PEM client certificate (with key_file); keepalived's SSL block: certificate"},
			check.ParamSpec{Name: "key_file", Type: check.TypeSecretFile, Description: "PEM private key of cert_file, unencrypted; keepalived's SSL block: key"},
			check.ParamSpec{Name: "connect_timeout", Type: check.TypeDuration, Description: "each step of a GET (connect with TLS handshake, sending, every read) gets this long from its own start, as keepalived's connect_timeout; the probe's timeout bounds the whole. Default: the probe's timeout alone"},
			check.ParamSpec{Name: "max_body", Type: check.TypeString, Default: "1MiB", Description: "most of a body read; a longer body fails a digest or regex check"},
		),
	}, nil
}

func (c *httpChecker) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	p, err := parse(req.Params)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	c.checks.Keep(req, p)
	return check.ConfigureResponse{}, nil
}

func (c *httpChecker) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	p, err := c.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	ctx, cancel := target.Early(ctx)
	defer cancel()
	return p.run(ctx), nil
}

// run checks every url, each on its own connection and all at once, so that each has the
// whole probe timeout and its steps their connect_timeout, as each url has in keepalived.
// The first failure in the configured order is the probe's message.
func (p *probe) run(ctx context.Context) check.CheckResponse {
	start := time.Now()
	results := make([]result, len(p.urls))
	if p.target.BindPort != 0 || len(p.urls) == 1 {
		// One source port carries one connection to the server at a time; and one url
		// needs no goroutine of its own (a thousand real servers' probes a second each
		// paid for one).
		for i := range p.urls {
			results[i] = p.get(ctx, &p.urls[i])
		}
	} else {
		var wg sync.WaitGroup
		for i := range p.urls {
			wg.Go(func() { results[i] = p.get(ctx, &p.urls[i]) })
		}
		wg.Wait()
	}
	metrics := map[string]float64{"response_seconds": time.Since(start).Seconds()}
	for _, r := range results {
		if !r.ok {
			return check.CheckResponse{Status: check.Critical, Message: r.msg, Metrics: metrics}
		}
	}
	msg := results[0].msg + " in " + round(time.Since(start)).String()
	if len(results) > 1 {
		var parts []string
		for _, r := range results {
			parts = append(parts, r.msg)
		}
		msg = fmt.Sprintf("%d urls ok in %s: %s", len(results), round(time.Since(start)), strings.Join(parts, ", "))
	}
	return check.CheckResponse{Status: check.OK, Message: msg, Metrics: metrics}
}

func round(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
