package checksched

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// gate is a prober that the test answers one probe at a time: each probe announces itself on
// calls with its number and returns the result the test sends on answers.
type gate struct {
	calls   chan int
	answers chan bool
	mu      sync.Mutex
	n       int
}

func newGate() *gate { return &gate{calls: make(chan int), answers: make(chan bool)} }

func (g *gate) Probe(ctx context.Context) Result {
	g.mu.Lock()
	g.n++
	n := g.n
	g.mu.Unlock()
	select {
	case g.calls <- n:
	case <-ctx.Done():
		return Result{Msg: "cancelled"}
	}
	select {
	case ok := <-g.answers:
		return Result{OK: ok, Msg: fmt.Sprintf("probe %d", n)}
	case <-ctx.Done():
		return Result{Msg: "cancelled"}
	}
}

// answer waits for probe n and answers it.
func (g *gate) answer(t *testing.T, n int, ok bool) {
	t.Helper()
	select {
	case got := <-g.calls:
		if got != n {
			t.Fatalf("probe %d came, want probe %d", got, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("probe %d never came", n)
	}
	select {
	case g.answers <- ok:
	case <-time.After(10 * time.Second):
		t.Fatalf("probe %d took no answer", n)
	}
}

// counter is a prober that records when it was called and always answers ok.
type counter struct {
	mu    sync.Mutex
	ok    bool
	times []time.Time
}

func (c *counter) Probe(context.Context) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	return Result{OK: c.ok, Msg: fmt.Sprintf("probe %d", len(c.times))}
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

func (c *counter) probeTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.times)
}

// next returns the next change, failing the test if none comes within d.
func next(t *testing.T, changes <-chan Change, d time.Duration) Change {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(d):
		t.Fatalf("no change within %s", d)
	}
	return Change{}
}

// quiet fails the test if any change comes within d.
func quiet(t *testing.T, changes <-chan Change, d time.Duration) {
	t.Helper()
	select {
	case c := <-changes:
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(d):
	}
}

func diffString(d Diff) string {
	return fmt.Sprintf("kept %v added %v removed %v restarted %v", d.Kept, d.Added, d.Removed, d.Restarted)
}

// TestUpdateKeepsThresholdState: an Update with an unchanged check (same Name and Key, even
// with another Prober value) keeps its goroutine and its threshold: a check that went down
// and is two successes into its rise of 3 goes up at the very next success after the
// Update, and nothing is sent for it in between (no new initial state).
func TestUpdateKeepsThresholdState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan Change, 16)
	s := NewScheduler(ctx, changes)
	defer s.Stop()
	g := newGate()
	// A timeout far beyond the test, so that only the test's answers end the probes; the
	// short interval makes each next probe come at once.
	spec := Spec{Name: "db", Key: "kind plugin\nparams a\n", Prober: g, Interval: 10 * time.Millisecond,
		Timeout: time.Minute, Rise: 3, Fall: 2, Warmup: time.Millisecond}
	if d := s.Update([]Spec{spec}); diffString(d) != "kept [] added [db] removed [] restarted []" {
		t.Fatalf("first update: %s", diffString(d))
	}
	if c := next(t, changes, 5*time.Second); c.Name != "db" || !c.Up || c.Msg != "initial state" {
		t.Fatalf("initial: %+v", c)
	}
	g.answer(t, 1, false)
	g.answer(t, 2, false)
	if c := next(t, changes, 5*time.Second); c.Name != "db" || c.Up || c.Msg != "probe 2" {
		t.Fatalf("after fall 2: %+v", c)
	}
	g.answer(t, 3, true)
	g.answer(t, 4, true) // two of rise 3

	// The same definition in a new Spec value, whose prober must never run.
	other := newGate()
	same := spec
	same.Prober = other
	if d := s.Update([]Spec{same}); diffString(d) != "kept [db] added [] removed [] restarted []" {
		t.Fatalf("update with the same spec: %s", diffString(d))
	}
	if sp, ok := s.Running("db", spec.Key); !ok || sp.Prober != g {
		t.Fatalf("Running(db): %v, prober %p; want the first spec, prober %p", ok, sp.Prober, g)
	}
	quiet(t, changes, 100*time.Millisecond)
	g.answer(t, 5, true) // the third success: up, counted across the Update
	if c := next(t, changes, 5*time.Second); c.Name != "db" || !c.Up || c.Msg != "probe 5" {
		t.Fatalf("after rise 3: %+v", c)
	}
	g.answer(t, 6, true)
	select {
	case n := <-other.calls:
		t.Fatalf("the new Spec's prober ran (probe %d): the check was restarted", n)
	default:
	}
	quiet(t, changes, 50*time.Millisecond)
}

// TestUpdateKeepsProbeCadence: an unchanged check keeps its timer: after an Update right
// after one of its probes, the next probe still comes one interval after that probe (a
// restart would probe within its 1 ms warmup), and the probes go on one interval apart.
func TestUpdateKeepsProbeCadence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan Change, 16)
	s := NewScheduler(ctx, changes)
	defer s.Stop()
	const interval = 100 * time.Millisecond
	c := &counter{ok: true}
	spec := Spec{Name: "web", Key: "k", Prober: c, Interval: interval, Rise: 1, Fall: 1, Warmup: time.Millisecond}
	s.Update([]Spec{spec})
	if ch := next(t, changes, 5*time.Second); ch.Msg != "initial state" {
		t.Fatalf("initial: %+v", ch)
	}
	for c.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	d := s.Update([]Spec{{Name: "web", Key: "k", Prober: &counter{}, Interval: interval, Rise: 1, Fall: 1, Warmup: time.Millisecond}})
	if diffString(d) != "kept [web] added [] removed [] restarted []" {
		t.Fatalf("update: %s", diffString(d))
	}
	updated := time.Now()
	for c.count() < 6 {
		if time.Since(updated) > 10*time.Second {
			t.Fatalf("%d probes", c.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	times := c.probeTimes()
	for i := 1; i < len(times); i++ {
		// A probe starts one interval after the one before started, never earlier. How
		// much later depends on the machine's load; a lost timer shows as probes that
		// never reach six (above).
		if gap := times[i].Sub(times[i-1]); gap < interval-time.Millisecond {
			t.Errorf("probe %d came %s after probe %d; want about %s", i+1, gap, i, interval)
		}
	}
	quiet(t, changes, 10*time.Millisecond)
}

// TestUpdateAddsRemovesRestarts: one Update adds a check (its initial state is sent), stops a
// removed one (its prober is not called any more and nothing is sent for it), restarts one
// whose Key changed (a fresh start with the new definition) and one without a Key, and
// keeps the unchanged one; a check given again after its removal starts afresh.
func TestUpdateAddsRemovesRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changes := make(chan Change, 64)
	s := NewScheduler(ctx, changes)
	defer s.Stop()
	const iv = 10 * time.Millisecond
	keep, gone, change, nokey := &counter{ok: true}, &counter{ok: true}, &counter{ok: true}, &counter{ok: true}
	d := s.Update([]Spec{
		{Name: "keep", Key: "k1", Prober: keep, Interval: iv, Warmup: time.Millisecond},
		{Name: "gone", Key: "g1", Prober: gone, Interval: iv, Warmup: time.Millisecond},
		{Name: "change", Key: "c1", Prober: change, Interval: iv, Warmup: time.Millisecond},
		{Name: "nokey", Prober: nokey, Interval: iv, Warmup: time.Millisecond},
	})
	if diffString(d) != "kept [] added [keep gone change nokey] removed [] restarted []" {
		t.Fatalf("first update: %s", diffString(d))
	}
	initial := map[string]bool{}
	for range 4 {
		c := next(t, changes, 5*time.Second)
		if c.Msg != "initial state" || !c.Up {
			t.Fatalf("initial: %+v", c)
		}
		initial[c.Name] = true
	}
	if len(initial) != 4 {
		t.Fatalf("initial states of %v", initial)
	}
	for gone.count() < 3 || change.count() < 3 || keep.count() < 3 {
		time.Sleep(time.Millisecond)
	}

	added, changed := &counter{ok: true}, &counter{ok: false}
	d = s.Update([]Spec{
		{Name: "keep", Key: "k1", Prober: &counter{}, Interval: iv},
		// The new definition (init_fail, and failing) starts in the state the old one was
		// in, up, and goes down when its own probes fail.
		{Name: "change", Key: "c2", Prober: changed, Interval: iv, InitFail: true, Warmup: time.Millisecond},
		{Name: "nokey", Prober: nokey, Interval: iv, Warmup: time.Millisecond},
		{Name: "added", Key: "a1", Prober: added, Interval: iv, Warmup: time.Millisecond},
	})
	if diffString(d) != "kept [keep] added [added] removed [gone] restarted [change nokey]" {
		t.Fatalf("second update: %s", diffString(d))
	}
	goneProbes, oldChangeProbes := gone.count(), change.count()
	// Per check, in order: the initial states of added and nokey, and the initial state of
	// change followed by its own probe taking it down. Between checks there is no order:
	// on a loaded machine, change's first probe may come before another check's initial
	// state.
	got := map[string][]Change{}
	for range 4 {
		c := next(t, changes, 5*time.Second)
		got[c.Name] = append(got[c.Name], c)
	}
	for _, name := range []string{"added", "nokey", "change"} {
		cs := got[name]
		if len(cs) == 0 || !cs[0].Initial || cs[0].Msg != "initial state" || !cs[0].Up {
			// For change: the old definition's state, up.
			t.Errorf("%s: sent %+v, want its initial state first, up", name, cs)
		}
	}
	if cs := got["change"]; len(cs) != 2 || cs[1].Up || cs[1].Initial {
		t.Errorf("change sent %+v after the restart, want its initial state, then down on its own probes", cs)
	}
	if len(got) != 3 {
		t.Errorf("changes after the second update: %+v; want only added, nokey and change", got)
	}
	// Ten intervals later: nothing from gone or keep, and the stopped probers were not called.
	quiet(t, changes, 10*iv)
	if n := gone.count(); n != goneProbes {
		t.Errorf("the removed check probed %d times after the Update", n-goneProbes)
	}
	if n := change.count(); n != oldChangeProbes {
		t.Errorf("the old definition of the restarted check probed %d times after the Update", n-oldChangeProbes)
	}
	if changed.count() == 0 || added.count() == 0 {
		t.Errorf("new probers: changed %d probes, added %d", changed.count(), added.count())
	}
	if _, ok := s.Running("gone", "g1"); ok {
		t.Error("Running finds the removed check")
	}
	if _, ok := s.Running("change", "c1"); ok {
		t.Error("Running finds the old definition of the restarted check")
	}
	if _, ok := s.Running("nokey", ""); ok {
		t.Error("Running matches an empty Key")
	}

	// gone comes back with its old definition: a new check, with its initial state.
	back := &counter{ok: true}
	d = s.Update([]Spec{
		{Name: "keep", Key: "k1", Prober: keep, Interval: iv},
		{Name: "gone", Key: "g1", Prober: back, Interval: iv, Warmup: time.Millisecond},
	})
	if diffString(d) != "kept [keep] added [gone] removed [added change nokey] restarted []" {
		t.Fatalf("third update: %s", diffString(d))
	}
	if c := next(t, changes, 5*time.Second); c.Name != "gone" || c.Msg != "initial state" || !c.Up {
		t.Fatalf("re-added: %+v", c)
	}
	for back.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	if gone.count() != goneProbes {
		t.Error("the re-added check runs the old prober")
	}
}

// TestSchedulerStop: Stop ends every check; an Update after it starts nothing.
func TestSchedulerStop(t *testing.T) {
	changes := make(chan Change, 16)
	s := NewScheduler(context.Background(), changes)
	c := &counter{ok: true}
	s.Update([]Spec{{Name: "a", Key: "a", Prober: c, Interval: 5 * time.Millisecond, Warmup: time.Millisecond}})
	for c.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	s.Stop()
	n := c.count()
	if d := s.Update([]Spec{{Name: "b", Key: "b", Prober: c, Interval: 5 * time.Millisecond}}); diffString(d) != "kept [] added [] removed [] restarted []" {
		t.Errorf("update after stop: %s", diffString(d))
	}
	time.Sleep(50 * time.Millisecond)
	if c.count() != n {
		t.Errorf("%d probes after Stop", c.count()-n)
	}
}

// recPlugins is a plugin host that records every CheckSpec call, validate-only or not, and
// rejects the checks named in reject.
type recPlugins struct {
	reject map[string]string
	calls  []string // "name" or "name validate"
}

func (r *recPlugins) HasCheck(name string) bool { return name != "missing" }

func (r *recPlugins) CheckSpec(_ context.Context, c *config.PluginCheck, validateOnly bool) (Spec, error) {
	call := c.Name
	if validateOnly {
		call += " validate"
	}
	r.calls = append(r.calls, call)
	if why, ok := r.reject[c.Name]; ok {
		return Spec{}, errors.New(why)
	}
	return Spec{Name: c.Name, Prober: &counter{ok: true}, Interval: c.Interval, Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall, InitFail: c.InitFail}, nil
}

const reloadConf = `
vrrp_script chk_script {
    script "/bin/true"
    interval 2
    weight %d
}
vrrp_check chk_db {
    plugin mysql
    interval 1
    fall 3
    params {
        address 127.0.0.1:3306
        user %s
    }
}
vrrp_check chk_web {
    plugin http
    params {
        address 127.0.0.1:80
        url {
            path %s
        }
    }
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/32
    }
    track_script {
        chk_script
        chk_db
        chk_web
    }
}
virtual_server 192.0.2.100 80 {
    delay_loop 6
    real_server 192.0.2.11 80 {
        TCP_CHECK {
            connect_timeout %d
        }
        PLUGIN_CHECK {
            plugin missing
        }
    }
}
`

func parseConf(t *testing.T, weight int, user, path string, timeout int) *config.Config {
	t.Helper()
	cfg, ds := config.Parse("reload.conf", fmt.Appendf(nil, reloadConf, weight, user, path, timeout), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatalf("config: %v", ds.Errors())
	}
	return cfg
}

// specMap is a Reuse over specs, as Scheduler.Running is over running checks.
func specMap(specs []Spec) Reuse {
	m := map[string]Spec{}
	for _, sp := range specs {
		m[sp.Name] = sp
	}
	return func(name, key string) (Spec, bool) {
		sp, ok := m[name]
		return sp, ok && key != "" && sp.Key == key
	}
}

// TestFromConfigReusing: a reload configures on their plugins only the checks whose
// definition changed, validating the vrrp_checks first, and returns the running spec of
// every other one; a weight is not part of a definition; a vrrp_check that its plugin
// rejects fails the reload before any check was configured for real.
func TestFromConfigReusing(t *testing.T) {
	ctx := context.Background()
	p := &recPlugins{}
	first, err := FromConfig(ctx, parseConf(t, -10, "monitor", "/health", 3), p)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(first))
	for i, sp := range first {
		names[i] = sp.Name
		wantKey := sp.Name != "192.0.2.100:80/192.0.2.11:80/PLUGIN_CHECK" // its plugin is missing
		if (sp.Key != "") != wantKey {
			t.Errorf("%s: Key %q", sp.Name, sp.Key)
		}
	}
	wantNames := "chk_script chk_db chk_web 192.0.2.100:80/192.0.2.11:80/TCP_CHECK 192.0.2.100:80/192.0.2.11:80/PLUGIN_CHECK"
	if strings.Join(names, " ") != wantNames {
		t.Fatalf("specs %v, want %s", names, wantNames)
	}
	if got := strings.Join(p.calls, ","); got != "chk_script,chk_db,chk_web,192.0.2.100:80/192.0.2.11:80/TCP_CHECK" {
		t.Fatalf("first build configured %s", got)
	}

	// Only the weight of the script changed: nothing is configured, every spec is the
	// running one (the same prober), the failing checker is built again.
	p.calls = nil
	again, err := FromConfigReusing(ctx, parseConf(t, -50, "monitor", "/health", 3), p, specMap(first))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != 0 {
		t.Errorf("a reload with a new weight configured %v", p.calls)
	}
	for i := range again {
		reused := again[i].Prober == first[i].Prober
		if again[i].Name == "192.0.2.100:80/192.0.2.11:80/PLUGIN_CHECK" {
			// Built again (its refused prober compares equal to the old one): without a
			// Key, the scheduler restarts it, which retries its plugin.
			if again[i].Key != "" {
				t.Errorf("the failing checker has a Key: %+v", again[i])
			}
		} else if !reused || again[i].Key != first[i].Key {
			t.Errorf("%s was not reused", again[i].Name)
		}
	}

	// A param of chk_db, a nested param of chk_web and the checker's timeout change: those
	// three are configured, the vrrp_checks validated first.
	p.calls = nil
	changed, err := FromConfigReusing(ctx, parseConf(t, -50, "admin", "/ready", 4), p, specMap(first))
	if err != nil {
		t.Fatal(err)
	}
	// The changed checker is configured by its own task once it runs (pending), not by
	// the reload.
	if got := strings.Join(p.calls, ","); got != "chk_db validate,chk_web validate,chk_db,chk_web" {
		t.Errorf("reload configured %s", got)
	}
	for _, sp := range changed {
		if _, pend := sp.Prober.(*pending); pend != (sp.Name == "192.0.2.100:80/192.0.2.11:80/TCP_CHECK") {
			t.Errorf("%s: pending %v", sp.Name, pend)
		}
	}
	for i := range changed {
		if changed[i].Key != "" && changed[i].Key == first[i].Key && changed[i].Name != "chk_script" {
			t.Errorf("%s: Key unchanged:\n%s", changed[i].Name, changed[i].Key)
		}
	}
	if changed[0].Prober != first[0].Prober {
		t.Error("chk_script was not reused")
	}

	// The plugin rejects the changed chk_web: the reload fails, after validations only.
	p.calls, p.reject = nil, map[string]string{"chk_web": "url path: bad"}
	if _, err := FromConfigReusing(ctx, parseConf(t, -50, "admin", "/bad", 4), p, specMap(first)); err == nil || !strings.Contains(err.Error(), "url path: bad") {
		t.Fatalf("reload with a rejected check: %v", err)
	}
	if got := strings.Join(p.calls, ","); got != "chk_db validate,chk_web validate" {
		t.Errorf("a failed reload called %s; want validations only", got)
	}
}

// TestKeys: what a Key holds and what it leaves out.
func TestKeys(t *testing.T) {
	pc := func() *config.PluginCheck {
		return &config.PluginCheck{Name: "c", Plugin: "http", Interval: time.Second, Rise: 1, Fall: 2, Weight: -10,
			Params: []config.Param{{Key: "url", Block: []config.Param{{Key: "path", Values: []string{"/a b"}}}}},
			Pos:    config.Pos{File: "a.conf", Line: 3}}
	}
	base := pluginKey(pc(), "h").String()
	moved := pc()
	moved.Pos.Line, moved.Weight, moved.Params[0].Pos.Line = 30, 50, 31
	moved.Reverse = true // the vrrp process applies it, as the weight
	if k := pluginKey(moved, "h").String(); k != base {
		t.Errorf("position, weight or reverse changed the Key:\n%s\n%s", base, k)
	}
	for name, change := range map[string]func(*config.PluginCheck){
		"nested param": func(c *config.PluginCheck) { c.Params[0].Block[0].Values = []string{"/a", "b"} },
		"another param": func(c *config.PluginCheck) {
			c.Params = append(c.Params, config.Param{Key: "path", Values: []string{"/a b"}})
		},
		"fall":      func(c *config.PluginCheck) { c.Fall = 3 },
		"init_fail": func(c *config.PluginCheck) { c.InitFail = true },
		"timeout":   func(c *config.PluginCheck) { c.Timeout = 2 * time.Second },
		"plugin":    func(c *config.PluginCheck) { c.Plugin = "tcp" },
	} {
		c := pc()
		change(c)
		if pluginKey(c, "h").String() == base {
			t.Errorf("%s: Key unchanged", name)
		}
	}
	if pluginKey(pc(), "other host").String() == base {
		t.Error("the plugin host is not in the Key")
	}
	g := config.Global{PluginDir: "/p", PluginSHA256: map[string]string{"vigil-check-mysql": "aa", "vigil-notify-email": "bb"}}
	h := PluginHostKey(g)
	g.PluginSHA256 = map[string]string{"vigil-check-mysql": "aa", "vigil-notify-email": "cc"}
	if PluginHostKey(g) != h {
		t.Error("a notify plugin's pin changed the check plugin host")
	}
	g.PluginSHA256 = map[string]string{"vigil-check-mysql": "ab"}
	if PluginHostKey(g) == h {
		t.Error("a check plugin's pin did not change the host")
	}
	g.PluginSHA256, g.PluginDir = map[string]string{"vigil-check-mysql": "aa"}, "/q"
	if PluginHostKey(g) == h {
		t.Error("plugin_dir did not change the host")
	}
}

// TestReconfigured: Reconfigured names exactly the plugin checks that a reload configures on
// their plugins again (FromConfigReusing with the running checks), whatever changed: what
// `vigil reload` validates is what the check process configures.
func TestReconfigured(t *testing.T) {
	ctx := context.Background()
	running := parseConf(t, -10, "monitor", "/health", 3)
	for name, change := range map[string]func(*config.Config){
		"nothing":  func(*config.Config) {},
		"weight":   func(c *config.Config) { c.Checks[0].Weight = 50 },
		"params":   func(c *config.Config) { c.Checks[0].Params[1].Values = []string{"admin"} },
		"interval": func(c *config.Config) { c.Checks[1].Interval = 7 * time.Second },
		"connect_timeout": func(c *config.Config) {
			c.VirtualServers[0].RealServers[0].Checkers[0].ConnectTimeout = 9 * time.Second
		},
		"retry delay": func(c *config.Config) {
			c.VirtualServers[0].RealServers[0].Checkers[0].DelayBeforeRetry = 5 * time.Second
		},
		"plugin_dir": func(c *config.Config) { c.Global.PluginDir = "/elsewhere" },
		"new check": func(c *config.Config) {
			rs := *c.VirtualServers[0].RealServers[0]
			rs.Port = 8080
			c.VirtualServers[0].RealServers = append(c.VirtualServers[0].RealServers, &rs)
		},
	} {
		t.Run(name, func(t *testing.T) {
			next := parseConf(t, -10, "monitor", "/health", 3)
			change(next)
			p := &recPlugins{}
			first, err := FromConfig(ctx, running, p)
			if err != nil {
				t.Fatal(err)
			}
			p.calls = nil
			specs, err := FromConfigReusing(ctx, next, p, specMap(first))
			if err != nil {
				t.Fatal(err)
			}
			configured := map[string]bool{}
			for _, sp := range specs {
				if _, pend := sp.Prober.(*pending); pend {
					configured[sp.Name] = true // by its task, once it runs
					p.calls = append(p.calls, sp.Name+" pending")
				}
			}
			for _, c := range p.calls {
				if !strings.HasSuffix(c, " validate") && !strings.HasSuffix(c, " pending") {
					configured[c] = true
				}
			}
			var names []string
			for _, c := range next.Checks {
				names = append(names, c.Name)
			}
			for _, rc := range RealServerChecks(next) {
				if p.HasCheck(rc.Plugin) {
					names = append(names, rc.Name)
				}
			}
			if none := name == "nothing" || name == "weight"; none != (len(configured) == 0) {
				t.Fatalf("the reload configured %q", p.calls)
			}
			asked := Reconfigured(running, next)
			for _, n := range names {
				if asked(n) != configured[n] {
					t.Errorf("%s: Reconfigured %v, but the reload configured it: %v (calls %q)", n, asked(n), configured[n], p.calls)
				}
			}
		})
	}
	if !Reconfigured(nil, running)("chk_db") {
		t.Error("without a running configuration, a check is not reconfigured")
	}
}
