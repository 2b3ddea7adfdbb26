package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
)

// TestReverseCountsRawResults: a vrrp_check tracked with reverse runs in the check process as
// any other, so rise counts the plugin's own successes. (The Prober once turned them into
// failures for reverse, and the vrrp process turned the weight around again.) What reverse
// does is fsm.Effective's alone.
func TestReverseCountsRawResults(t *testing.T) {
	h := newHost(t, Options{})
	ctx := ctxFor(t, 60*time.Second)
	pc := &config.PluginCheck{Name: "rev", Plugin: "test", Weight: 20, Reverse: true,
		Interval: 20 * time.Millisecond, Timeout: 10 * time.Second, Rise: 2, Fall: 2, InitFail: true,
		Params: []config.Param{{Key: "mode", Values: []string{"ok"}}}}
	spec, err := h.CheckSpec(ctx, pc, false)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan checksched.Change, 4)
	go checksched.Run(ctx, []checksched.Spec{spec}, changes)
	next := func() checksched.Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-ctx.Done():
			t.Fatal("no change from the check: its successes were not counted as such")
		}
		return checksched.Change{}
	}
	if c := next(); c.Up || c.Msg != "initial state" {
		t.Fatalf("initial: %+v; want down (init_fail)", c)
	}
	// The first success reports the plugin's dynamic weight (a change of its own); the
	// second makes rise.
	c := next()
	for !c.Up {
		c = next()
	}
	if c.Weight == nil || *c.Weight != 7 {
		t.Fatalf("after the plugin's successes: %+v; want up, with the plugin's dynamic weight 7", c)
	}
}

// TestCheckSpecErrors: a Configure that the plugin refuses is a plain error naming the check
// as the configuration does (a real_server checker is no vrrp_check); one that never reached
// the plugin in time is marked NotConfigured, so that a real_server checker is tried again.
func TestCheckSpecErrors(t *testing.T) {
	h := newHost(t, Options{})
	ctx := ctxFor(t, 60*time.Second)
	const name = "192.0.2.100:80/192.0.2.11:80/PLUGIN_CHECK#2"
	pc := &config.PluginCheck{Name: name, Plugin: "test", Pos: config.Pos{File: "lvs.conf", Line: 7, Col: 9},
		Params: []config.Param{{Key: "mode", Values: []string{"bogus"}}}}
	_, err := h.CheckSpec(ctx, pc, false)
	if err == nil || checksched.IsNotConfigured(err) || !strings.Contains(err.Error(), "lvs.conf:7:9: real_server PLUGIN_CHECK "+name+": plugin test: ") {
		t.Fatalf("refused: %v (not configured: %v); want the place and the checker named", err, checksched.IsNotConfigured(err))
	}
	if got := checkKind("chk_db"); got != "vrrp_check chk_db" {
		t.Errorf("checkKind(chk_db) = %q", got)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	pc.Params = []config.Param{{Key: "mode", Values: []string{"ok"}}}
	if _, err := h.CheckSpec(done, pc, false); !checksched.IsNotConfigured(err) {
		t.Fatalf("Configure with its context ended: %v; want it marked NotConfigured", err)
	}
}
