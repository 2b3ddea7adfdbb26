package plugin

import (
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
)

// backoffProc is a plugin that never ran, on a host with the given MaxBackoff (0: the
// default), with deaths deaths in a row behind it.
func backoffProc(maxBackoff time.Duration, deaths int) *proc {
	log := hclog.NewNullLogger()
	h := New(Options{Dir: "/nonexistent", Logger: log, MaxBackoff: maxBackoff})
	return &proc{h: h, kind: sdk.KindCheck, name: "test", log: log, deaths: deaths, configs: map[string]sdk.ConfigureRequest{}}
}

// waitAfter returns how long after the call to f the plugin may restart, to the millisecond
// (f and the clock reading around it take far less).
func waitAfter(p *proc, f func()) time.Duration {
	before := time.Now()
	f()
	return p.notBefore.Sub(before).Round(100 * time.Millisecond)
}

// TestBackoffSequence: a plugin that keeps failing to start (start calls backoffLocked with
// no run to judge) is retried at once, then after 1, 2, 4 ... seconds, up to MaxBackoff.
func TestBackoffSequence(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		max  time.Duration
		want []time.Duration
	}{
		{"default cap 30s", 0, []time.Duration{0, s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s}},
		{"cap 5s", 5 * s, []time.Duration{0, s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"cap 3s, between two doublings", 3 * s, []time.Duration{0, s, 2 * s, 3 * s, 3 * s}},
		{"cap below the first wait", 500 * time.Millisecond, []time.Duration{0, 500 * time.Millisecond, 500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := backoffProc(tc.max, 0)
			for i, want := range tc.want {
				p.mu.Lock()
				got := waitAfter(p, p.backoffLocked)
				p.mu.Unlock()
				if got != want || p.deaths != i+1 {
					t.Fatalf("failure %d: wait %s, deaths %d; want %s, %d", i+1, got, p.deaths, want, i+1)
				}
			}
		})
	}
}

// TestBackoffAfterDeath: a death after a short run waits as the deaths before it say; one
// after a stable run (a minute or more) restarts the plugin at once and starts the count
// again; the wait never exceeds MaxBackoff, however many deaths came before.
func TestBackoffAfterDeath(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name       string
		max        time.Duration
		deaths     int           // in a row before this one
		ran        time.Duration // how long the process that died ran
		wait       time.Duration
		deathsThen int
	}{
		{"first death", 0, 0, s, 0, 1},
		{"second death in a row", 0, 1, s, s, 2},
		{"fourth death in a row", 0, 3, s, 4 * s, 4},
		{"sixth death in a row", 0, 5, 10 * s, 16 * s, 6},
		{"seventh death in a row: capped", 0, 6, s, 30 * s, 7},
		{"100th death in a row: still capped", 0, 99, s, 30 * s, 100},
		{"10,000th death, huge cap: 2^16 s at most", 1000 * time.Hour, 9999, s, 65536 * s, 10000},
		{"custom cap", 10 * s, 8, s, 10 * s, 9},
		{"after a run just short of stable", 0, 5, stableRun - 2*s, 16 * s, 6},
		{"after a stable run", 0, 5, stableRun + s, 0, 1},
		{"after a long stable run, many deaths before", 0, 99, time.Hour, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := backoffProc(tc.max, tc.deaths)
			// A client never started: killing it is a no-op, and pid 0 kills no group.
			client := goplugin.NewClient(&goplugin.ClientConfig{HandshakeConfig: sdk.Handshake(), Cmd: exec.Command("/nonexistent"), Logger: hclog.NewNullLogger()})
			r := &run{client: client, started: time.Now().Add(-tc.ran)}
			p.cur = r
			p.mu.Lock()
			got := waitAfter(p, func() { p.diedLocked(r, "test") })
			p.mu.Unlock()
			p.h.kills.Wait()
			if got != tc.wait || p.deaths != tc.deathsThen || p.cur != nil {
				t.Fatalf("wait %s, deaths %d, cur %v; want %s, %d, nil", got, p.deaths, p.cur, tc.wait, tc.deathsThen)
			}
			// A second report of the same death (the call that saw it fail and the ping, say)
			// changes nothing.
			p.mu.Lock()
			nb := p.notBefore
			p.diedLocked(r, "again")
			p.mu.Unlock()
			if p.deaths != tc.deathsThen || !p.notBefore.Equal(nb) {
				t.Fatalf("a second report of the death: deaths %d, notBefore moved %s", p.deaths, p.notBefore.Sub(nb))
			}
		})
	}
}
