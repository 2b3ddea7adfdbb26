package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/notify"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

var ev = notify.Event{Node: "lb1", Instance: "VI_1", Group: "G1", OldState: "BACKUP", NewState: "MASTER", Priority: 150,
	Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), VIPs: []string{"192.0.2.10/24"}}

func params(kv ...any) []notify.Param {
	var ps []notify.Param
	for i := 0; i < len(kv); i += 2 {
		var vals []string
		switch v := kv[i+1].(type) {
		case string:
			vals = []string{v}
		case []string:
			vals = v
		}
		ps = append(ps, notify.Param{Key: kv[i].(string), Values: vals})
	}
	return ps
}

// receiver is an HTTP server on 127.0.0.1:0 that verifies signatures with secret and answers
// with the statuses in answers, one per request (200 once they run out).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	answers  []int
	bodies   []Payload
	verified []bool
	headers  []http.Header
	hits     atomic.Int32
}

func newReceiver(t *testing.T, secret string, answers ...int) *receiver {
	r := &receiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		body, _ := io.ReadAll(req.Body)
		// Verify as a receiver would: recompute the HMAC of the raw body, compare in
		// constant time.
		ok := hmac.Equal([]byte(req.Header.Get("X-Vigil-Signature")), []byte(Sign([]byte(secret), body)))
		var p Payload
		json.Unmarshal(body, &p)
		r.mu.Lock()
		code := 200
		if len(r.answers) > 0 {
			code, r.answers = r.answers[0], r.answers[1:]
		}
		if code == 200 {
			r.bodies = append(r.bodies, p)
			r.verified = append(r.verified, ok)
			r.headers = append(r.headers, req.Header.Clone())
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(r.Close)
	return r
}

func secretFile(t *testing.T, secret string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func configure(t *testing.T, n notify.Notifier, ps []notify.Param) {
	t.Helper()
	if _, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "hook", Params: ps}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
}

func TestPostSignedJSON(t *testing.T) {
	r := newReceiver(t, "s3cret")
	n := sdktest.ServeNotifier(t, newWebhook())
	configure(t, n, params("url", r.URL+"/hook", "secret_file", secretFile(t, "s3cret"), "header", []string{"Authorization", "Bearer", "abc"}))
	for _, st := range []string{"MASTER", "BACKUP"} {
		e := ev
		e.NewState = st
		if _, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "hook", Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := Payload{Node: "lb1", Type: "INSTANCE", Instance: "VI_1", Group: "G1", OldState: "BACKUP", NewState: "MASTER", Priority: 150, Time: ev.Time, VIPs: ev.VIPs}
	if len(r.bodies) != 2 || r.bodies[0].NewState != "MASTER" || r.bodies[1].NewState != "BACKUP" {
		t.Fatalf("received %+v", r.bodies)
	}
	if got := r.bodies[0]; got.Node != want.Node || got.Type != want.Type || got.Instance != want.Instance || got.Group != want.Group ||
		got.Priority != want.Priority || !got.Time.Equal(want.Time) || strings.Join(got.VIPs, ",") != "192.0.2.10/24" || got.OldState != "BACKUP" {
		t.Errorf("payload %+v, want %+v", got, want)
	}
	for i, ok := range r.verified {
		if !ok {
			t.Errorf("request %d: signature does not verify", i)
		}
	}
	if h := r.headers[0]; h.Get("Authorization") != "Bearer abc" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}
}

// TestWrongSecretDoesNotVerify: the receiver's check is real: a plugin keyed with another
// secret fails it.
func TestWrongSecretDoesNotVerify(t *testing.T) {
	r := newReceiver(t, "s3cret")
	n := sdktest.ServeNotifier(t, newWebhook())
	configure(t, n, params("url", r.URL, "secret_file", secretFile(t, "other")))
	if _, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "hook", Event: ev}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.verified) != 1 || r.verified[0] {
		t.Errorf("verified %v, want one failed verification", r.verified)
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []int
		retries string
		hits    int32
		fail    string
	}{
		{"5xx then success", []int{503, 500}, "3", 3, ""},
		{"429 retried", []int{429}, "3", 2, ""},
		{"4xx is final", []int{404}, "3", 1, "404"},
		{"retries run out", []int{500, 502, 503}, "2", 3, "attempt 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, "", tc.answers...)
			n := sdktest.ServeNotifier(t, newWebhook())
			configure(t, n, params("url", r.URL, "retries", tc.retries, "backoff", "0.01"))
			_, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "hook", Event: ev})
			if tc.fail == "" && err != nil {
				t.Errorf("Notify: %v", err)
			}
			if tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)) {
				t.Errorf("Notify = %v, want an error with %q", err, tc.fail)
			}
			if got := r.hits.Load(); got != tc.hits {
				t.Errorf("%d requests, want %d", got, tc.hits)
			}
		})
	}
}

// TestDeadlineBoundsRetries: with a backoff longer than the call's deadline leaves, no
// retry is attempted past it, and the error says so.
func TestDeadlineBoundsRetries(t *testing.T) {
	r := newReceiver(t, "", 500, 500, 500)
	n := sdktest.ServeNotifier(t, newWebhook())
	configure(t, n, params("url", r.URL, "retries", "5", "backoff", "60"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := n.Notify(ctx, notify.NotifyRequest{Name: "hook", Event: ev})
	if err == nil || !strings.Contains(err.Error(), "no time left") {
		t.Errorf("Notify = %v, want the deadline to stop the retries", err)
	}
	if got := r.hits.Load(); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

// TestHungServerCancelled: a server that never answers fails the call at its deadline.
func TestHungServerCancelled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	n := sdktest.ServeNotifier(t, newWebhook())
	configure(t, n, params("url", srv.URL, "retries", "0"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := n.Notify(ctx, notify.NotifyRequest{Name: "hook", Event: ev})
	if err == nil {
		t.Fatal("a hung server did not fail the call")
	}
	// gRPC's own timer for the deadline may fire a moment before the context's: allow a little.
	if dl, _ := ctx.Deadline(); time.Until(dl) > 50*time.Millisecond {
		t.Errorf("Notify returned %v %v before the deadline", err, time.Until(dl))
	}
}

func TestConfigureErrors(t *testing.T) {
	worldReadable := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(worldReadable, []byte("x\n"), 0o644)
	n := sdktest.ServeNotifier(t, newWebhook())
	for _, tc := range []struct {
		ps   []notify.Param
		want string
	}{
		{nil, "url is required"},
		{params("url", "ftp://example.com/"), "want http://"},
		{params("url", "http://127.0.0.1/", "retries", "-1"), "negative"},
		{params("url", "http://127.0.0.1/", "backoff", "soon"), "want seconds"},
		{params("url", "http://127.0.0.1/", "secret_file", worldReadable), "readable by everyone"},
		{params("url", "http://127.0.0.1/", "secret_file", "/nonexistent/secret"), "no such file"},
		{params("url", "http://127.0.0.1/", "header", "X-Only-Name"), "NAME VALUE"},
		{params("url", "http://127.0.0.1/", "colour", "red"), `unknown param "colour"`},
	} {
		_, err := n.Configure(context.Background(), notify.ConfigureRequest{Name: "hook", Params: tc.ps, ValidateOnly: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v, want %q", tc.ps, err, tc.want)
		}
	}
	if _, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "nope", Event: ev}); err == nil {
		t.Error("Notify of an unconfigured name succeeded")
	}
}

// TestBinary runs the built plugin the way vigil starts it, signature included.
func TestBinary(t *testing.T) {
	r := newReceiver(t, "s3cret")
	n := sdktest.LaunchNotifier(t, sdktest.Build(t, "."))
	configure(t, n, params("url", r.URL, "secret_file", secretFile(t, "s3cret")))
	group := ev
	group.Instance = ""
	if _, err := n.Notify(context.Background(), notify.NotifyRequest{Name: "hook", Event: group}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != 1 || !r.verified[0] || r.bodies[0].Type != "GROUP" || r.bodies[0].Group != "G1" {
		t.Errorf("received %+v verified %v", r.bodies, r.verified)
	}
}
