package checksched

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// fakePlugins records what FromConfig asks the plugin host for.
type fakePlugins struct {
	installed bool
	refuse    error
	got       []*config.PluginCheck
}

func (f *fakePlugins) HasCheck(name string) bool { return f.installed && name == ExecPlugin }

func (f *fakePlugins) CheckSpec(_ context.Context, c *config.PluginCheck, _ bool) (Spec, error) {
	f.got = append(f.got, c)
	if f.refuse != nil {
		return Spec{}, f.refuse
	}
	return Spec{Name: c.Name, Interval: c.Interval, Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall, InitFail: c.InitFail}, nil
}

func scriptConfig(security bool) *config.Config {
	s := &config.VRRPScript{Name: "chk", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Weight: -20,
		Script: &config.Script{Cmd: "/usr/local/bin/chk --fast", Argv: []string{"/usr/local/bin/chk", "--fast"}}}
	return &config.Config{
		Global:    config.Global{EnableScriptSecurity: security},
		Scripts:   []*config.VRRPScript{s},
		Instances: []*config.VRRPInstance{{Name: "VI_1", TrackScripts: []config.TrackRef{{Name: "chk"}}}},
	}
}

func TestScriptsGoThroughExecPlugin(t *testing.T) {
	p := &fakePlugins{installed: true}
	specs, err := FromConfig(context.Background(), scriptConfig(true), p)
	if err != nil || len(specs) != 1 {
		t.Fatalf("FromConfig: %v, %d specs", err, len(specs))
	}
	if len(p.got) != 1 {
		t.Fatalf("plugin host asked %d times, want once", len(p.got))
	}
	c := p.got[0]
	params := map[string]string{}
	for _, pr := range c.Params {
		params[pr.Key] = strings.Join(pr.Values, " ")
	}
	if c.Plugin != ExecPlugin || c.Name != "chk" || c.Interval != 2*time.Second || c.Rise != 2 || c.Fall != 3 ||
		params["command"] != "/usr/local/bin/chk --fast" || params["mode"] != "vrrp_script" || params["secure"] != "yes" {
		t.Errorf("exec check %+v, params %v", c, params)
	}
	if _, ok := params["user"]; ok {
		t.Errorf("a user param without script_user: %v", params)
	}
}

func TestScriptFallbackAndRefusal(t *testing.T) {
	// No exec plugin installed: the check process runs the script, and says so.
	specs, err := FromConfig(context.Background(), scriptConfig(false), &fakePlugins{})
	if err != nil || len(specs) != 1 {
		t.Fatalf("FromConfig: %v, %d specs", err, len(specs))
	}
	if _, ok := specs[0].Prober.(Script); !ok || !strings.Contains(specs[0].Note, "not installed") {
		t.Errorf("fallback spec: prober %T, note %q", specs[0].Prober, specs[0].Note)
	}

	// The plugin refuses the script: it stays, failing, with the plugin's reason.
	specs, err = FromConfig(context.Background(), scriptConfig(true), &fakePlugins{installed: true, refuse: errors.New("chk is writable by group or others")})
	if err != nil || len(specs) != 1 {
		t.Fatalf("FromConfig with a refused script: %v, %d specs; want the script kept, disabled", err, len(specs))
	}
	sp := specs[0]
	r := sp.Prober.Probe(context.Background())
	if r.OK || !strings.Contains(r.Msg, "writable") || !sp.InitFail || !strings.Contains(sp.Note, "disabled") {
		t.Errorf("refused script: probe %+v, init_fail %v, note %q", r, sp.InitFail, sp.Note)
	}
}

// TestRetryDelay: keepalived's retry and delay_before_retry. After a failed probe of a check
// that is up, the retries come after delay_before_retry, not after the (long) interval, and
// the check goes down after the last one.
func TestRetryDelay(t *testing.T) {
	const interval = 10 * time.Second
	p := &stampedSeq{seq: seq{results: []Result{{OK: true}, {Msg: "refused"}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	changes := make(chan Change, 4)
	// Warmup 1ms starts the first probe at once.
	go Run(ctx, []Spec{{Name: "rs", Prober: p, Interval: interval, Fall: 3, Rise: 1,
		RetryDelay: 10 * time.Millisecond, Warmup: time.Millisecond}}, changes)
	for _, want := range []bool{true, false} {
		select {
		case c := <-changes:
			if c.Up != want {
				t.Fatalf("change %+v, want up=%v", c, want)
			}
		case <-ctx.Done():
			t.Fatalf("no change to up=%v", want)
		}
	}
	// The probes: ok, then three failures (fall 3), the last two retries. A timer never fires
	// early, so a retry that waited for the interval comes at least an interval after the
	// failure before it; one that waited for delay_before_retry (10ms) comes a scheduling
	// delay after it, which even a loaded machine keeps far below 10 s.
	at := p.times()
	if len(at) < 4 {
		t.Fatalf("down after %d probes, want 4 (ok, then fall 3 failures)", len(at))
	}
	for i := 2; i < 4; i++ {
		if gap := at[i].Sub(at[i-1]); gap >= interval {
			t.Errorf("retry %d came %v after the failure before it: it waited for the interval", i-1, gap)
		}
	}
}

// stampedSeq is a seq that notes when each probe ran.
type stampedSeq struct {
	seq
	mu sync.Mutex
	at []time.Time
}

func (s *stampedSeq) Probe(ctx context.Context) Result {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.seq.Probe(ctx)
}

func (s *stampedSeq) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.at...)
}

// TestTrackedChecksFirstDecide: vrrp_scripts (through the exec plugin or run by the check
// process) and vrrp_checks start unknown, as keepalived's tracked scripts do; one refused by
// its plugin starts down (init_fail), with no first result to wait for.
func TestTrackedChecksFirstDecide(t *testing.T) {
	cfg := scriptConfig(false)
	cfg.Checks = []*config.PluginCheck{{Name: "db", Plugin: "mysql", Interval: time.Second, Rise: 2, Fall: 3}}
	cfg.Instances[0].TrackScripts = append(cfg.Instances[0].TrackScripts, config.TrackRef{Name: "db"})
	for _, p := range []*fakePlugins{{installed: true}, {}} {
		specs, err := FromConfig(context.Background(), cfg, p)
		if err != nil || len(specs) != 2 {
			t.Fatalf("FromConfig: %v, %d specs", err, len(specs))
		}
		for _, sp := range specs {
			if !sp.FirstDecides || sp.InitFail {
				t.Errorf("exec plugin installed %v: %s starts known (first decides %v, init_fail %v)", p.installed, sp.Name, sp.FirstDecides, sp.InitFail)
			}
		}
	}
	specs, err := FromConfig(context.Background(), scriptConfig(true), &fakePlugins{installed: true, refuse: errors.New("unsafe")})
	if err != nil || len(specs) != 1 || !specs[0].InitFail {
		t.Fatalf("refused script: %v, %+v", err, specs)
	}
}
