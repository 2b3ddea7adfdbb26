package check

import (
	"context"
	"errors"
	"strings"
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
	p := &seq{results: []Result{{OK: true}, {Msg: "refused"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	changes := make(chan Change, 4)
	// The interval is far longer than the test may take: only the retry delay can bring the
	// second and third failures in time. Warmup 1ms starts the first probe at once.
	go Run(ctx, []Spec{{Name: "rs", Prober: p, Interval: 4 * time.Second, Fall: 3, Rise: 1,
		RetryDelay: 10 * time.Millisecond, Warmup: time.Millisecond}}, changes)
	start := time.Now()
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
	// One interval (the ok probe, then the first failure), then two retries 10 ms apart;
	// without the retry delay it would be three intervals.
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("down after %v: the retries waited for the interval", d)
	}
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
