package supervisor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/child"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// TestCatchUpIsBounded: the reload that catchUp sends a child that started while the
// configuration changed has a deadline (a check child waiting for a saturated plugin once
// held it until the shutdown), and catchUp says what it does and what a failure leaves.
func TestCatchUpIsBounded(t *testing.T) {
	var logs bytes.Buffer
	s := &Supervisor{opts: Options{Log: hclog.New(&hclog.LoggerOptions{Output: &logs})}, req: &childpb.StartRequest{ConfigText: "new"}}
	var deadline time.Time
	var has bool
	s.catchUp(context.Background(), newProc(child.RoleCheck), "old", func(ctx context.Context, r *childpb.StartRequest) error {
		deadline, has = ctx.Deadline()
		if r.GetConfigText() != "new" {
			t.Errorf("caught up with %q; want the reloaded text", r.GetConfigText())
		}
		return context.DeadlineExceeded
	})
	if !has || time.Until(deadline) > catchUpWait {
		t.Errorf("catchUp's reload: deadline %v (set %v); want one within %s", deadline, has, catchUpWait)
	}
	for _, want := range []string{"applying the configuration reloaded while the child started", "it runs with the one it started with until the next reload"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	called := false
	s.catchUp(context.Background(), newProc(child.RoleCheck), "new", func(context.Context, *childpb.StartRequest) error { called = true; return nil })
	if called {
		t.Error("catchUp reloaded a child that started with the current text")
	}
}
