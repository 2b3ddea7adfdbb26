package main

import (
	"context"
	"fmt"
	"time"
)

// Scenario is one fault, run once for each implementation it names.
type Scenario struct {
	Name string // row name in RELIABILITY.md and what -run matches
	Doc  string // one or two sentences for RELIABILITY.md: the fault, and what must hold
	// Method, when set, is a paragraph for the Method section: how the scenario's own figures
	// are measured. Scenarios sharing one paragraph give the same text; it is printed once.
	Method string
	Short  bool // takes seconds: part of `make test` (go run ./bench/faults -short)
	// Impls are the implementations to run it on ("vigil", "keepalived"); nil means both.
	Impls []string
	// Nodes is the number of VRRP nodes of the lab (n1..nN, the client is one more); 0 means 3.
	Nodes int
	// KeepalivedBreaks, when set, says why keepalived 2.2.7 is known to break this scenario's
	// invariants. Its rows still show the figures and BROKEN, but do not fail the run: the
	// suite guards vigil, and keepalived is the reference it is compared with. A keepalived
	// row that fails to run still fails it.
	KeepalivedBreaks string
	// Timeout bounds the whole run (lab, daemons, fault, measurement); 0 means 3 minutes.
	Timeout time.Duration
	// Together runs the scenario's implementations at the same time, each on its own lab, so
	// that they face the same load from the rest of the machine: a long run (the soak) is
	// compared fairly only so, and takes half the time.
	Together bool
	// Run injects the fault into a lab that Env has built, and measures. It returns the result
	// (normally Env.Finish's, with notes and checks added), or an error when the scenario could
	// not be run at all (a daemon that does not start, a command that fails).
	Run func(ctx context.Context, e *Env) (*Result, error)
}

// Result is one row of the table: the standard figures, the scenario's own notes and the
// must-hold checks it found broken.
type Result struct {
	// Masters is the number of nodes holding the VIP after convergence (nodes cut off the
	// bridge by Env.Cut or Env.Isolate not counted); it must be 1. -1: not measured.
	Masters int
	// Converge is the time from the fault until one node alone answers the client (and it is
	// the one that holds the VIP at the end); -1: never, within the scenario's bound;
	// NotMeasured: a scenario without a client.
	Converge time.Duration
	// Outage is the longest run of requests the client saw fail or go unanswered;
	// NotMeasured: a scenario without a client.
	Outage time.Duration
	// Lost is the number of acknowledged writes missing on the final master; -1: no writer.
	Lost int
	// Moved counts notify transitions after the fault on the nodes that should not have moved;
	// it must be 0. -1: not measured.
	Moved int
	// Notes are the scenario's own figures and remarks ("after the thaw: outage 20 ms").
	Notes []string
	// Failures are must-hold checks of the scenario itself that were broken; each makes the
	// row, and the run, fail.
	Failures []string
	// Err is set by the runner when Run returned an error: the row failed to run.
	Err error
}

// NotMeasured is a Converge or Outage that the scenario does not measure (it runs no
// client): the table shows "–".
const NotMeasured time.Duration = -1 << 63

// Note adds a note.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Fail adds a broken must-hold check.
func (r *Result) Fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Check adds a broken must-hold check when ok is false.
func (r *Result) Check(ok bool, format string, args ...any) {
	if !ok {
		r.Fail(format, args...)
	}
}

// Broken lists the invariants the row breaks: the standard ones (exactly one master, no
// acknowledged write lost, nothing moved that should not have), the scenario's own, and a
// run that failed.
func (r *Result) Broken() []string {
	var out []string
	if r.Err != nil {
		return []string{"run failed: " + r.Err.Error()}
	}
	if r.Masters >= 0 && r.Masters != 1 {
		out = append(out, fmt.Sprintf("%d masters after convergence (want 1)", r.Masters))
	}
	if r.Lost > 0 {
		out = append(out, fmt.Sprintf("%d acknowledged writes lost", r.Lost))
	}
	if r.Moved > 0 {
		out = append(out, fmt.Sprintf("%d transitions on nodes that should not have moved", r.Moved))
	}
	return append(out, r.Failures...)
}

// registry holds the scenarios in the order the scen_*.go files register them.
type registry struct{ list []*Scenario }

// scenarios is filled by the scen_*.go files' init functions, before main runs; main only
// reads it.
var scenarios registry

func (r *registry) add(s ...*Scenario) {
	for _, sc := range s {
		for _, o := range r.list {
			if o.Name == sc.Name {
				panic("faults: scenario " + sc.Name + " registered twice")
			}
		}
		r.list = append(r.list, sc)
	}
}

func (s *Scenario) impls() []string {
	if len(s.Impls) == 0 {
		return []string{"vigil", "keepalived"}
	}
	return s.Impls
}
