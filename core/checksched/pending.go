package checksched

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// PluginAlign is the alignment group of every plugin check (Spec.Align): core/plugin's
// specs carry it, and so does a pending check before its plugin answered.
const PluginAlign = "plugins"

// PluginLate is Spec.Late for a plugin check of this timeout: five seconds, or as long as
// the timeout when that is longer (at most a minute). A plugin is a process of its own, and on a machine busy for a
// moment (a reload parsing a large file, a plugin starting; bench/lvsbench's VM: 1,501
// healthy real servers went down around three reloads) it, or the check process, runs
// late: an answer that the plugin had in time, or a connect that was over in time, then
// reached the scheduler after the timeout and counted as a failure. keepalived, whose
// checkers run in its own event loop, looks at the socket when it runs again and counts a
// connect that succeeded meanwhile. The plugin keeps the timeout for the service: a
// server that does not answer in time still fails at the timeout, by the plugin's verdict,
// so the wait costs nothing unless the plugin is late. A second was not enough: in the VM
// a reload of 1,000 real servers kept the plugin from answering for several seconds.
func PluginLate(timeout time.Duration) time.Duration {
	return min(max(timeout, 5*time.Second), time.Minute)
}

// notConfigured marks a Configure that did not complete: the plugin was starting,
// restarting, under a hang verdict, or too busy to answer in time. Nothing was refused.
type notConfigured struct{ err error }

func (e notConfigured) Error() string { return e.err.Error() }
func (e notConfigured) Unwrap() error { return e.err }

// NotConfigured marks err, a Configure's error, as one that did not come from the plugin
// looking at the params (see notConfigured): the check is tried again later, and is no
// failure meanwhile. core/plugin's CheckSpec marks its errors so.
func NotConfigured(err error) error {
	if err == nil {
		return nil
	}
	return notConfigured{err}
}

// IsNotConfigured reports whether err is marked by NotConfigured.
func IsNotConfigured(err error) bool {
	var n notConfigured
	return errors.As(err, &n)
}

// Bounds of a pending check's attempts (see pending.run). An attempt may take
// configureWait: a saturated plugin under qemu TCG took 3 to 15 s to answer anything.
const (
	configureWait     = 30 * time.Second
	configureRetryMin = time.Second
	configureRetryMax = 30 * time.Second
)

// pending is the prober of a plugin check that is configured on its plugin by the check's
// own task, not by the reload (or start) that made it: a reload's effect on the load
// balancer and on the unchanged checks never waits for a busy plugin. Until the plugin
// has answered, its probes have no result (Result.NoResult), which the scheduler counts
// within the check's failure budget, as it counts a probe while the plugin restarts. A
// Configure that did not complete (IsNotConfigured) is tried again, at most
// configureRetryMax apart; one that the plugin refuses makes the check fail at every
// probe with the plugin's objection (which names the file and line), and the next reload
// configures it again (Scheduler.Running does not offer it for reuse).
type pending struct {
	configure func(ctx context.Context) (Prober, error)

	mu      sync.Mutex
	ready   Prober // the configured check's prober
	refusal string // the plugin's objection, once it refused
	last    string // why the last attempt did not complete
}

func newPending(configure func(ctx context.Context) (Prober, error)) *pending {
	return &pending{configure: configure}
}

// Probe probes the configured check, or says why there is nothing to probe yet.
func (p *pending) Probe(ctx context.Context) Result {
	p.mu.Lock()
	ready, refusal, last := p.ready, p.refusal, p.last
	p.mu.Unlock()
	switch {
	case ready != nil:
		return ready.Probe(ctx)
	case refusal != "":
		return Result{Msg: Message(refusal)}
	case last != "":
		return Result{NoResult: true, Msg: Message("not configured on its plugin yet: " + last)}
	}
	return Result{NoResult: true, Msg: "not configured on its plugin yet"}
}

// refused reports whether the plugin refused the check.
func (p *pending) refused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusal != ""
}

// run configures the check until the plugin answered or ctx (the check's task) ends.
func (p *pending) run(ctx context.Context) {
	wait := configureRetryMin
	for {
		actx, cancel := context.WithTimeout(ctx, configureWait)
		pr, err := p.configure(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		switch {
		case err == nil:
			p.ready, p.last = pr, ""
		case IsNotConfigured(err):
			p.last = err.Error()
		default:
			p.refusal = err.Error()
		}
		done := p.ready != nil || p.refusal != ""
		p.mu.Unlock()
		if done {
			return
		}
		// Jittered, so that the checks that one busy spell left pending do not all come
		// back to the plugin at the same moment.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, configureRetryMax)
	}
}

// startPending starts configuring s's check when its prober is pending; the returned
// function waits for that to end, after ctx (the task's) ended: a restarted check's
// old Configure never lands on the plugin after the new one's.
func startPending(ctx context.Context, s Spec) (wait func()) {
	p, ok := s.Prober.(*pending)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	return func() { <-done }
}

// reusable reports whether a running spec may be kept by a reload with the same Key: not
// a pending check that its plugin refused, which the reload configures again (as a
// refused check built at once has no Key).
func reusable(sp Spec) bool {
	p, ok := sp.Prober.(*pending)
	return !ok || !p.refused()
}

// memo answers HasCheck and VerifyCheck once per plugin for one build of the checks (see
// FromConfigReusing): a thousand real servers' checkers use one or two plugins, and each
// answer looks at the plugin's file (its path up to /, and its SHA-256 when plugin_sha256
// pins it) again, a thousand times on every reload.
type memo struct {
	PluginSpecs
	mu       sync.Mutex
	has      map[string]bool
	verified map[string]error
}

func newMemo(p PluginSpecs) *memo {
	return &memo{PluginSpecs: p, has: map[string]bool{}, verified: map[string]error{}}
}

func (m *memo) HasCheck(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	has, ok := m.has[name]
	if !ok {
		has = m.PluginSpecs.HasCheck(name)
		m.has[name] = has
	}
	return has
}

// VerifyCheck is the plugins' objection (verifyPlugin), asked once.
func (m *memo) VerifyCheck(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err, ok := m.verified[name]
	if !ok {
		err = verifyPlugin(m.PluginSpecs, name)
		m.verified[name] = err
	}
	return err
}
