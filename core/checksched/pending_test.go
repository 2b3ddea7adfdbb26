package checksched

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// slowPlugins is a plugin host whose Configure of the checks in hold waits until release
// is closed (or the call's context ends, answered as a busy plugin is: NotConfigured);
// busy answers NotConfigured that many times first; refuse refuses a check.
type slowPlugins struct {
	mu      sync.Mutex
	hold    map[string]bool
	release chan struct{}
	busy    map[string]int
	refuse  map[string]string
	probers map[string]*counter // the prober of each configured check
	calls   map[string]int
}

func newSlowPlugins() *slowPlugins {
	return &slowPlugins{hold: map[string]bool{}, release: make(chan struct{}), busy: map[string]int{},
		refuse: map[string]string{}, probers: map[string]*counter{}, calls: map[string]int{}}
}

func (p *slowPlugins) HasCheck(string) bool { return true }

func (p *slowPlugins) CheckSpec(ctx context.Context, c *config.PluginCheck, _ bool) (Spec, error) {
	p.mu.Lock()
	p.calls[c.Name]++
	hold := p.hold[c.Name]
	p.mu.Unlock()
	if hold {
		select {
		case <-p.release:
		case <-ctx.Done():
			return Spec{}, NotConfigured(fmt.Errorf("%s: plugin tcp: %w", c.Pos, ctx.Err()))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[c.Name] > 0 {
		p.busy[c.Name]--
		return Spec{}, NotConfigured(fmt.Errorf("%s: waiting for check plugin tcp to start: %w", c.Pos, context.DeadlineExceeded))
	}
	if why := p.refuse[c.Name]; why != "" {
		return Spec{}, fmt.Errorf("%s: plugin tcp: %s", c.Pos, why)
	}
	pr := &counter{ok: true}
	p.probers[c.Name] = pr
	return Spec{Name: c.Name, Prober: pr, Interval: c.Interval, Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall, InitFail: c.InitFail}, nil
}

func (p *slowPlugins) prober(name string) *counter {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probers[name]
}

// rsConf is a virtual_server with real servers 192.0.2.11 ... 192.0.2.(10+n), each with a
// TCP_CHECK probed every 10 ms (keepalived's delay_loop is whole seconds: the checks here
// are given their interval after parsing).
func rsConf(t *testing.T, n int) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("virtual_server 192.0.2.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    real_server 192.0.2.%d 80 {\n        TCP_CHECK {\n            connect_timeout 1\n            retry 2\n        }\n    }\n", 10+i)
	}
	b.WriteString("}\n")
	cfg, ds := config.Parse("rs.conf", []byte(b.String()), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatalf("parse: %v", ds)
	}
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, ck := range rs.Checkers {
				ck.DelayLoop, ck.Warmup, ck.DelayBeforeRetry = 10*time.Millisecond, 0, 10*time.Millisecond
			}
		}
	}
	return cfg
}

func rsName(i int) string { return fmt.Sprintf("192.0.2.100:80/192.0.2.%d:80/TCP_CHECK", 10+i) }

// changesOf collects the changes of a scheduler.
type changesOf struct {
	mu  sync.Mutex
	all []Change
}

func collect(ctx context.Context, ch <-chan Change) *changesOf {
	c := &changesOf{}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case x := <-ch:
				c.mu.Lock()
				c.all = append(c.all, x)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *changesOf) of(name string) []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Change
	for _, x := range c.all {
		if x.Name == name {
			out = append(out, x)
		}
	}
	return out
}

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestReloadDoesNotWaitForConfigure: a reload that adds a real server whose plugin does not
// answer Configure returns without it, and so does a second reload meanwhile; the new
// checker starts up and stays up (its probes have no result, within its budget) until the
// plugin answers, then runs on the plugin.
func TestReloadDoesNotWaitForConfigure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newSlowPlugins()
	ch := make(chan Change, 16)
	got := collect(ctx, ch)
	s := NewScheduler(ctx, ch)
	defer s.Stop()
	specs, err := FromConfig(ctx, rsConf(t, 1), p)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(specs)
	p.mu.Lock()
	p.hold[rsName(2)], p.hold[rsName(3)] = true, true
	p.mu.Unlock()
	// Code that waits for Configure gives up at the reload's deadline and starts the new
	// checkers failing (down): what the test looks at is their state, not the time.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for n, want := range map[int]string{2: "kept [" + rsName(1) + "] added [" + rsName(2) + "] removed [] restarted []"} {
		specs, err = FromConfigReusing(rctx, rsConf(t, n), p, s.Running)
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Update(specs); diffString(d) != want {
			t.Fatalf("reload: %s; want %s", diffString(d), want)
		}
	}
	// A second reload while the first one's Configure still waits.
	specs, err = FromConfigReusing(rctx, rsConf(t, 3), p, s.Running)
	if err != nil {
		t.Fatal(err)
	}
	if d, want := diffString(s.Update(specs)), "kept ["+rsName(1)+" "+rsName(2)+"] added ["+rsName(3)+"] removed [] restarted []"; d != want {
		t.Fatalf("second reload: %s; want %s", d, want)
	}
	eventually(t, "the new checkers' initial states", func() bool { return len(got.of(rsName(2))) > 0 && len(got.of(rsName(3))) > 0 })
	time.Sleep(100 * time.Millisecond) // ten intervals without an answer from the plugin
	for _, name := range []string{rsName(2), rsName(3)} {
		if cs := got.of(name); len(cs) != 1 || !cs[0].Initial || !cs[0].Up {
			t.Fatalf("%s before its plugin answered: %+v; want only its initial state, up", name, cs)
		}
		if p.prober(name) != nil {
			t.Fatalf("%s configured before the plugin answered", name)
		}
	}
	close(p.release)
	for _, name := range []string{rsName(2), rsName(3)} {
		eventually(t, name+" probed on its plugin", func() bool { pr := p.prober(name); return pr != nil && pr.count() > 0 })
		if cs := got.of(name); len(cs) != 1 {
			t.Errorf("%s: %+v; want its initial state only", name, cs)
		}
	}
}

// TestPendingCheckerBusyThenRefused: a checker whose plugin was busy is tried again and runs
// once configured, never counted down meanwhile; one that the plugin refuses goes down with
// the plugin's objection, which names the file and line, and the next reload configures it
// again rather than keeping it.
func TestPendingCheckerBusyThenRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := newSlowPlugins()
	p.busy[rsName(1)] = 1 // at start: the first answer is busy
	p.refuse[rsName(2)] = "address: no such host"
	ch := make(chan Change, 16)
	got := collect(ctx, ch)
	s := NewScheduler(ctx, ch)
	defer s.Stop()
	specs, err := FromConfig(ctx, rsConf(t, 1), p)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(specs)
	eventually(t, rsName(1)+" configured after a busy answer", func() bool { pr := p.prober(rsName(1)); return pr != nil && pr.count() > 0 })
	if cs := got.of(rsName(1)); len(cs) != 1 || !cs[0].Up {
		t.Fatalf("%s: %+v; want its initial state only, up", rsName(1), cs)
	}
	specs, err = FromConfigReusing(ctx, rsConf(t, 2), p, s.Running)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(specs)
	eventually(t, rsName(2)+" down", func() bool { cs := got.of(rsName(2)); return len(cs) > 0 && !cs[len(cs)-1].Up })
	cs := got.of(rsName(2))
	if msg := cs[len(cs)-1].Msg; !strings.Contains(msg, "rs.conf:") || !strings.Contains(msg, "no such host") {
		t.Errorf("refused checker's message %q; want the file:line and the plugin's objection", msg)
	}
	specs, err = FromConfigReusing(ctx, rsConf(t, 2), p, s.Running)
	if err != nil {
		t.Fatal(err)
	}
	if d, want := diffString(s.Update(specs)), "kept ["+rsName(1)+"] added [] removed [] restarted ["+rsName(2)+"]"; d != want {
		t.Errorf("reload of a refused checker: %s; want %s", d, want)
	}
	if err := NotConfigured(errors.New("x")); !IsNotConfigured(fmt.Errorf("wrapped: %w", err)) {
		t.Error("NotConfigured lost in a wrap")
	}
}

// countingPlugins counts the looks at each plugin's file.
type countingPlugins struct {
	*slowPlugins
	has, verify map[string]int
}

func (c *countingPlugins) HasCheck(name string) bool { c.has[name]++; return true }
func (c *countingPlugins) VerifyCheck(name string) error {
	c.verify[name]++
	return nil
}

// TestReloadLooksAtAPluginOnce: a reload of many real servers looks at their plugin's file
// once, not once per checker (with plugin_sha256 pinned, a thousand checksums of the
// plugin took 16.6 s on the development host).
func TestReloadLooksAtAPluginOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &countingPlugins{slowPlugins: newSlowPlugins(), has: map[string]int{}, verify: map[string]int{}}
	first, err := FromConfig(ctx, rsConf(t, 50), p)
	if err != nil {
		t.Fatal(err)
	}
	p.has, p.verify = map[string]int{}, map[string]int{}
	if _, err := FromConfigReusing(ctx, rsConf(t, 51), p, specMap(first)); err != nil {
		t.Fatal(err)
	}
	if p.has["tcp"] != 1 || p.verify["tcp"] != 1 {
		t.Errorf("a reload of 51 checkers asked HasCheck %d and VerifyCheck %d times; want 1 and 1", p.has["tcp"], p.verify["tcp"])
	}
}
