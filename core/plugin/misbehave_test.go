package plugin

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// buildBad builds testdata/vigil-check-bad into a directory of its own under each of its
// names (it picks its start-up misbehaviour by name), and returns the directory.
func buildBad(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "vigil-check-bad"), "./testdata/vigil-check-bad")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building vigil-check-bad: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "vigil-check-bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"badnoise", "badhs", "badflood", "baddesc"} {
		if err := os.WriteFile(filepath.Join(dir, "vigil-check-"+name), bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMisbehavingPlugin: whatever a buggy check plugin answers, the host survives it, keeps
// only a bounded message and bounded metrics, names the plugin when the answer is bad, and
// the check comes out failed, never with a wild weight; the plugin's good checks keep working
// after it. Each case runs its own plugin process (a flood lasts as long as its process).
func TestMisbehavingPlugin(t *testing.T) {
	dir := buildBad(t)
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		wantUp  bool
		msgHas  string // in the check's message
	}{
		{mode: "status", msgHas: "plugin bad answered status 99"},
		{mode: "negstatus", msgHas: "plugin bad answered status -7"},
		{mode: "weight", msgHas: "plugin bad answered weight 1000000000"},
		{mode: "negweight", msgHas: "plugin bad answered weight -1000000000"},
		{mode: "huge", msgHas: "plugin bad: grpc: received message larger than max"},
		{mode: "long", wantUp: true, msgHas: "ok: line  [2J [31mred line"},
		{mode: "metrics", wantUp: true, msgHas: "ok: many"},
		{mode: "flood", wantUp: true, msgHas: "ok: chk_flood"},
		{mode: "late", timeout: 500 * time.Millisecond, msgHas: "plugin bad: timed out"},
		{mode: "empty", msgHas: "plugin bad: answered a probe with neither a result nor an error"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := newHost(t, Options{Dir: dir})
			ctx := ctxFor(t, 2*time.Minute)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 30 * time.Second // generous: 8 MiB cross a loaded machine
			}
			pc := &config.PluginCheck{Name: "chk_" + tc.mode, Plugin: "bad", Interval: 100 * time.Millisecond, Timeout: timeout,
				Rise: 1, Fall: 1, Params: []config.Param{{Key: "mode", Values: []string{tc.mode}}}}
			spec, err := h.CheckSpec(ctx, pc, false)
			if err != nil {
				t.Fatal(err)
			}
			// The check starts in the state it must leave: down when it must come up.
			spec.InitFail = tc.wantUp
			changes := make(chan checksched.Change, 16)
			runCtx, stopRun := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				checksched.Run(runCtx, []checksched.Spec{spec}, changes)
			}()
			var c checksched.Change
			for c = range changes {
				if !c.Initial {
					break
				}
				if c.Up == tc.wantUp {
					t.Fatalf("initial state %+v; the test wants the other one", c)
				}
			}
			if c.Up != tc.wantUp || !strings.Contains(c.Msg, tc.msgHas) {
				t.Errorf("change %+v; want up %v with a message holding %q", c, tc.wantUp, tc.msgHas)
			}
			if len(c.Msg) > checksched.MaxMessage || strings.IndexFunc(c.Msg, unicode.IsControl) >= 0 {
				t.Errorf("message of %d bytes kept, or with control characters: %q", len(c.Msg), c.Msg[:min(len(c.Msg), 200)])
			}
			if c.Weight != nil && (*c.Weight < -checksched.MaxWeight || *c.Weight > checksched.MaxWeight) {
				t.Errorf("weight %d taken from the plugin", *c.Weight)
			}
			if len(c.Metrics) > checksched.MaxMetrics {
				t.Errorf("%d metrics kept", len(c.Metrics))
			}
			for k, v := range c.Metrics {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("metric %s = %v kept", k, v)
				}
			}
			// The host, and the plugin where it still runs, serve the plugin's good checks.
			// The bad check stops first; an answer of it still on its way (the plugin answers
			// a probe the host gave up on, 8 MiB for huge) can still end the stream once, and
			// so fail one probe of the good check on the same stream: the host opens the
			// stream again, and a later probe must pass.
			stopRun()
			<-ran
			configure(t, h, "bad", "good", "mode", "ok")
			var r checksched.Result
			for attempt := 1; attempt <= 3; attempt++ {
				if r = (Prober{Host: h, Plugin: "bad", Check: "good"}).Probe(ctxFor(t, 30*time.Second)); r.OK {
					break
				}
				t.Logf("a good check after %s, attempt %d: %+v", tc.mode, attempt, r)
			}
			if !r.OK || r.Msg != "ok: good" {
				t.Errorf("a good check after %s: %+v", tc.mode, r)
			}
		})
	}
}

// TestMisbehavingPluginStart: a plugin that writes garbage to stdout before its handshake
// starts as long as the garbage ends in a newline; one whose garbage runs into the handshake
// line, or that never shakes hands, fails to start with a message that names it, and the
// host lives on.
func TestMisbehavingPluginStart(t *testing.T) {
	dir := buildBad(t)
	for _, tc := range []struct {
		name   string
		errHas string // "" when it must start
	}{
		{name: "badnoise"},
		{name: "badhs", errHas: `its handshake came on one line after other output printed without a newline: "garbage without a newline1|`},
		{name: "badflood", errHas: "vigil-check-badflood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A plugin that never shakes hands fails at the start timeout: a short one.
			h := newHost(t, Options{Dir: dir, StartTimeout: 5 * time.Second})
			_, err := h.ConfigureCheck(ctxFor(t, time.Minute), tc.name, check.ConfigureRequest{Name: "good", Params: []check.Param{{Key: "mode", Values: []string{"ok"}}}})
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r := (Prober{Host: h, Plugin: tc.name, Check: "good"}).Probe(ctxFor(t, 30*time.Second)); !r.OK || r.Msg != "ok: good" {
					t.Errorf("probe: %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "vigil-check-"+tc.name) {
				t.Fatalf("start: %v; want an error naming vigil-check-%s and holding %s", err, tc.name, tc.errHas)
			}
			// A probe says so too, as the check's message, without waiting for a start.
			r := (Prober{Host: h, Plugin: tc.name, Check: "good"}).Probe(ctxFor(t, 30*time.Second))
			if r.OK || !strings.Contains(r.Msg, tc.name) {
				t.Errorf("probe: %+v; want a failure naming the plugin", r)
			}
		})
	}
}

// TestMisbehavingConfigure: what a plugin answers to Configure reaches the log and the
// operator's terminal (vigil -t): a refusal of 1 MiB and 300 warnings of 10 KiB, all
// full of newlines and terminal escapes, come out cut and clean, and the plugin is named.
func TestMisbehavingConfigure(t *testing.T) {
	dir := buildBad(t)
	var log syncBuffer
	h := newHost(t, Options{Dir: dir, Logger: hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Warn})})
	ctx := ctxFor(t, time.Minute)
	pc := &config.PluginCheck{Name: "chk", Plugin: "bad", Pos: config.Pos{File: "vigil.conf", Line: 3, Col: 1},
		Params: []config.Param{{Key: "mode", Values: []string{"ok"}}, {Key: "reject", Values: []string{"1"}}}}
	_, err := h.CheckSpec(ctx, pc, false)
	if err == nil || len(err.Error()) > checksched.MaxMessage+100 || strings.IndexFunc(err.Error(), unicode.IsControl) >= 0 || !strings.Contains(err.Error(), "plugin bad") {
		t.Errorf("refusal of %d bytes: %.200q", len(fmt.Sprint(err)), fmt.Sprint(err))
	}
	pc.Params[1] = config.Param{Key: "warnings", Values: []string{"1"}}
	if _, err := h.CheckSpec(ctx, pc, false); err != nil {
		t.Fatal(err)
	}
	var warnings int
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "check configuration") {
			warnings++
			if len(line) > 2*checksched.MaxMessage+200 || strings.ContainsRune(line, 0x1b) {
				t.Errorf("warning logged as %d bytes: %.200q", len(line), line)
			}
		}
	}
	if warnings != maxWarnings+1 {
		t.Errorf("%d warnings logged; want %d and a line saying how many more", warnings, maxWarnings)
	}
}

// TestMisbehavingDescribe: a plugin's description reaches `vigil plugins` and the log. One
// with strings of 64 KiB full of newlines and terminal escapes, and 10000 params, comes out
// cut and clean, and the plugin's checks still work. (One over 4 MiB fails as any answer
// that large does, naming the plugin.)
func TestMisbehavingDescribe(t *testing.T) {
	dir := buildBad(t)
	h := newHost(t, Options{Dir: dir})
	info, err := h.Describe(ctxFor(t, time.Minute), sdk.KindCheck, "baddesc")
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"name": info.Name, "version": info.Version, "description": info.Description} {
		if len(s) > checksched.MaxMessage || strings.IndexFunc(s, unicode.IsControl) >= 0 || !strings.HasPrefix(s, "doc ") {
			t.Errorf("%s kept as %d bytes: %.100q", what, len(s), s)
		}
	}
	if len(info.Params) != maxParams {
		t.Errorf("%d params kept, want %d", len(info.Params), maxParams)
	}
	for _, p := range info.Params {
		if strings.IndexFunc(p.Name+p.Default+p.Description, unicode.IsControl) >= 0 {
			t.Fatalf("param kept with control characters: %+v", p)
		}
	}
	configure(t, h, "baddesc", "good", "mode", "ok")
	if r := (Prober{Host: h, Plugin: "baddesc", Check: "good"}).Probe(ctxFor(t, 30*time.Second)); !r.OK {
		t.Errorf("probe after the description: %+v", r)
	}
}
