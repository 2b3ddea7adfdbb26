package control

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestGetLeavesNoConnection asks for the status many times from one process, as a
// monitoring agent or the fault suite's soak does: neither side may keep a connection (a
// goroutine and a descriptor each) per request. A leak shows as one or more goroutines per
// request; the bound leaves room for the runtime's own.
func TestGetLeavesNoConnection(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vigil.sock")
	s, err := Listen(sock, func(context.Context) any { return map[string]int{"ok": 1} }, func(context.Context) any { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := Get(ctx, sock, "/status"); err != nil {
		t.Fatal(err)
	}
	settle := func() int {
		// Closed connections end their goroutines a moment later: wait (a failure bound only).
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				break
			}
			n = m
		}
		return n
	}
	before := settle()
	const requests = 50
	for range requests {
		if _, err := Get(ctx, sock, "/status"); err != nil {
			t.Fatal(err)
		}
	}
	if after := settle(); after > before+5 {
		t.Errorf("goroutines: %d before %d requests, %d after", before, requests, after)
	}
}

// TestAction: an action answers POST only, gets the query, and a refusal reaches the
// client with its status code and message.
func TestAction(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vigil.sock")
	var got url.Values
	s, err := Listen(sock, func(context.Context) any { return nil }, func(context.Context) any { return nil },
		Action{Path: "/demote", Do: func(_ context.Context, q url.Values) (any, error) {
			got = q
			if q.Get("instance") == "nope" {
				return nil, Refuse(http.StatusNotFound, errors.New(`no such vrrp_instance "nope"`))
			}
			return map[string]string{"demoted": q.Get("instance")}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	body, err := Post(ctx, sock, "/demote?"+url.Values{"instance": {"VI_1"}, "for": {"2s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"demoted": "VI_1"`) || got.Get("for") != "2s" {
		t.Errorf("answer %s, query %v", body, got)
	}
	_, err = Post(ctx, sock, "/demote?instance=nope")
	var e *Error
	if !errors.As(err, &e) || e.Code != http.StatusNotFound || e.Msg != `no such vrrp_instance "nope"` {
		t.Errorf("refusal: %#v", err)
	}
	got = nil
	if _, err := Get(ctx, sock, "/demote?instance=VI_1"); !errors.As(err, &e) || e.Code != http.StatusMethodNotAllowed || got != nil {
		t.Errorf("GET /demote: %v, called with %v", err, got)
	}
}
