// Command vigil-notify-webhook is vigil's notify plugin that POSTs each event as JSON to a
// URL, with retries and an optional HMAC-SHA256 signature. See README.md.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/notify"
)

func main() { notify.Serve(newWebhook()) }

// webhook keeps the configured endpoints by notifier name; vigil calls it concurrently.
type webhook struct {
	hooks notify.Configured[*endpoint]
}

var _ notify.Notifier = (*webhook)(nil)

func newWebhook() *webhook { return &webhook{} }

// endpoint is one configured webhook.
type endpoint struct {
	url            string
	headers        http.Header
	secret         []byte // nil: no signature
	sigHeader      string
	retries        int
	backoff        time.Duration
	attemptTimeout time.Duration
	client         *http.Client
}

const defaultSigHeader = "X-Vigil-Signature"

func (w *webhook) Describe(context.Context) (notify.Info, error) {
	return notify.Info{
		Name:        "webhook",
		Version:     "0.1.0",
		Description: "POSTs each state change as JSON to a URL, with retries and an optional HMAC-SHA256 signature",
		Params: []notify.ParamSpec{
			{Name: "url", Type: notify.TypeString, Required: true, Description: "http:// or https:// URL to POST to"},
			{Name: "retries", Type: notify.TypeInt, Default: "3", Description: "attempts after the first, on a network error, 429 or 5xx, within the call's deadline"},
			{Name: "backoff", Type: notify.TypeDuration, Default: "0.5", Description: "wait before the first retry; doubled before each next one"},
			{Name: "attempt_timeout", Type: notify.TypeDuration, Default: "5", Description: "limit of one attempt (the call's deadline bounds them all)"},
			{Name: "secret_file", Type: notify.TypeSecretFile, Description: "file whose first line keys an HMAC-SHA256 of the body, sent as sha256=HEX in signature_header"},
			{Name: "signature_header", Type: notify.TypeString, Default: defaultSigHeader, Description: "header that carries the signature"},
			{Name: "header", Type: notify.TypeList, Description: "NAME VALUE: an extra request header; repeat the line for more"},
			{Name: "ca_file", Type: notify.TypeString, Description: "PEM CA certificates to verify an https server with, instead of the system's"},
		},
	}, nil
}

func (w *webhook) Configure(_ context.Context, req notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	e, warnings, err := parse(req.Params)
	if err != nil {
		return notify.ConfigureResponse{}, err
	}
	w.hooks.Keep(req, e)
	return notify.ConfigureResponse{Warnings: warnings}, nil
}

// Payload is the JSON body of a POST.
type Payload struct {
	Node     string    `json:"node"`
	Type     string    `json:"type"` // INSTANCE or GROUP
	Instance string    `json:"instance,omitempty"`
	Group    string    `json:"group,omitempty"`
	OldState string    `json:"old_state"`
	NewState string    `json:"new_state"`
	Priority int       `json:"priority"`
	Time     time.Time `json:"time"`
	VIPs     []string  `json:"vips"`
}

func payload(ev notify.Event) Payload {
	p := Payload{Node: ev.Node, Type: "INSTANCE", Instance: ev.Instance, Group: ev.Group, OldState: ev.OldState,
		NewState: ev.NewState, Priority: ev.Priority, Time: ev.Time.UTC(), VIPs: ev.VIPs}
	if ev.Instance == "" {
		p.Type = "GROUP"
	}
	if p.VIPs == nil {
		p.VIPs = []string{}
	}
	return p
}

// Sign is the signature header's value for body: sha256= and the hex HMAC-SHA256 keyed with
// secret, as GitHub's webhooks do, so that receivers can reuse their verification.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *webhook) Notify(ctx context.Context, req notify.NotifyRequest) (notify.NotifyResponse, error) {
	e, err := w.hooks.Lookup(req.Name)
	if err != nil {
		return notify.NotifyResponse{}, err
	}
	body, err := json.Marshal(payload(req.Event))
	if err != nil {
		return notify.NotifyResponse{}, fmt.Errorf("encode event: %w", err)
	}
	return notify.NotifyResponse{}, e.post(ctx, body)
}

// errPermanent marks an answer that a retry would not change (a 4xx other than 429).
var errPermanent = errors.New("refused")

// post sends body, retrying with doubling waits while the deadline leaves room for them.
func (e *endpoint) post(ctx context.Context, body []byte) error {
	wait := e.backoff
	var errs []error
	for attempt := 0; ; attempt++ {
		err := e.attempt(ctx, body)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt+1, err))
		if errors.Is(err, errPermanent) || attempt >= e.retries || ctx.Err() != nil {
			return errors.Join(errs...)
		}
		// A wait that would end past the deadline cannot lead to an attempt in time.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return errors.Join(append(errs, fmt.Errorf("no time left for attempt %d before the deadline: %w", attempt+2, context.DeadlineExceeded))...)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(append(errs, ctx.Err())...)
		case <-t.C:
		}
		wait *= 2
	}
}

func (e *endpoint) attempt(ctx context.Context, body []byte) error {
	actx, cancel := context.WithTimeout(ctx, e.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	for k, vs := range e.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-notify-webhook/0.1.0")
	if e.secret != nil {
		req.Header.Set(e.sigHeader, Sign(e.secret, body))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("%s answered %s: %s", e.url, resp.Status, strings.TrimSpace(string(snippet)))
	}
	return fmt.Errorf("%w: %s answered %s: %s", errPermanent, e.url, resp.Status, strings.TrimSpace(string(snippet)))
}

func parse(params []notify.Param) (*endpoint, []string, error) {
	e := &endpoint{headers: http.Header{}, sigHeader: defaultSigHeader, retries: 3, backoff: 500 * time.Millisecond, attemptTimeout: 5 * time.Second}
	var warnings []string
	var caFile string
	for _, p := range params {
		var err error
		switch p.Key {
		case "url":
			u, perr := url.Parse(p.Value())
			if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, nil, fmt.Errorf("url %q: want http://HOST/PATH or https://HOST/PATH", p.Value())
			}
			e.url = u.String()
		case "retries":
			e.retries, err = strconv.Atoi(p.Value())
			if err == nil && e.retries < 0 {
				err = fmt.Errorf("%d is negative", e.retries)
			}
		case "backoff":
			e.backoff, err = sdk.ParseDuration(p.Value())
		case "attempt_timeout":
			e.attemptTimeout, err = sdk.ParseDuration(p.Value())
			if err == nil && e.attemptTimeout == 0 {
				err = errors.New("must be more than 0")
			}
		case "secret_file":
			var w []string
			e.secret, w, err = readSecret(p.Value())
			warnings = append(warnings, w...)
		case "signature_header":
			if p.Value() == "" {
				err = errors.New("empty header name")
			}
			e.sigHeader = p.Value()
		case "header":
			if len(p.Values) < 2 {
				err = errors.New("want NAME VALUE")
			} else {
				e.headers.Add(p.Values[0], strings.Join(p.Values[1:], " "))
			}
		case "ca_file":
			caFile = p.Value()
		default:
			return nil, nil, fmt.Errorf("unknown param %q (known: url, retries, backoff, attempt_timeout, secret_file, signature_header, header, ca_file)", p.Key)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.Key, err)
		}
	}
	if e.url == "" {
		return nil, nil, errors.New("url is required: where to POST the events")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := opfile.Read(caFile, opfile.PEMLimit)
		if err != nil {
			return nil, nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if e.secret != nil && strings.HasPrefix(e.url, "http://") {
		warnings = append(warnings, "url is plain http: the signature proves who sent an event, but anyone on the path can read it")
	}
	e.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// A redirected POST would reach a URL the operator did not configure.
		return http.ErrUseLastResponse
	}}
	return e, warnings, nil
}

// readSecret reads the first line of path; a file that everyone can read is refused, as it
// would be no secret on that host.
func readSecret(path string) ([]byte, []string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		return nil, nil, fmt.Errorf("%s is readable by everyone (mode %04o): chmod o-rwx %s", path, perm, path)
	}
	b, err := opfile.Read(path, opfile.LineLimit)
	if err != nil {
		return nil, nil, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil, nil, fmt.Errorf("%s: the first line is empty", path)
	}
	return []byte(line), nil, nil
}
