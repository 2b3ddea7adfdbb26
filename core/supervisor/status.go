package supervisor

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// Status is what `vigil status` reports.
type Status struct {
	Processes []ProcessStatus  `json:"processes"`
	Instances []InstanceStatus `json:"instances"`
	Checks    []CheckStatus    `json:"checks"`
	// LVS is the load balancer (virtual_server, lvs_sync_daemon); nil when the
	// configuration has none, or the check process did not answer.
	LVS *LVSStatus `json:"lvs,omitempty"`
	// BGP is the BGP speaker; nil when the configuration has no bgp block, or the vrrp
	// process did not answer.
	BGP   *BGPStatus        `json:"bgp,omitempty"`
	Drops map[string]uint64 `json:"advert_drops,omitempty"`
	// LastReload is the last reload's result; nil before the first.
	LastReload *ReloadStatus `json:"last_reload,omitempty"`
	// Goroutines is core's count; each child reports its own in Processes. A count that
	// keeps growing in a steady state is a leak (the soak in bench/faults samples them).
	Goroutines int `json:"goroutines"`
}

// ReloadStatus is the result of one reload, for `vigil status` and `vigil reload`.
type ReloadStatus struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // SIGHUP, vigil reload, file change
	OK      bool      `json:"ok"`
	// Errors are the configuration's errors (FILE:LINE:COL: error: ...) when it was refused,
	// or what a child could not apply.
	Errors []string      `json:"errors,omitempty"`
	Report *ReloadReport `json:"applied,omitempty"`
}

// ProcessStatus describes one child process.
type ProcessStatus struct {
	Role      string  `json:"role"`
	PID       int     `json:"pid"`
	State     string  `json:"state"`
	UptimeSec float64 `json:"uptime_seconds"`
	Restarts  int     `json:"restarts"`
	LastError string  `json:"last_error,omitempty"`
	// Goroutines is the child's count, from its Status answer; 0 when it did not answer.
	Goroutines int `json:"goroutines,omitempty"`
	// Unanswered says why a running child's part of the status is missing (it did not answer
	// within childStatusWait): for the vrrp child, the instances are then unknown, not absent.
	Unanswered string `json:"unanswered,omitempty"`
}

// childStatusWait is how long a status waits for each child's part: status never hangs on a
// stopped or overloaded child.
const childStatusWait = 2 * time.Second

// InstanceStatus describes one VRRP instance.
type InstanceStatus struct {
	Name              string   `json:"name"`
	Group             string   `json:"sync_group,omitempty"`
	Interface         string   `json:"interface"`
	VRID              uint32   `json:"vrid"`
	State             string   `json:"state"`
	Priority          int32    `json:"priority"`
	EffectivePriority int32    `json:"effective_priority"`
	Master            string   `json:"master,omitempty"`
	VIPs              []string `json:"vips"`
	// Demoted is the operator's demotion (vigil demote); nil when not demoted.
	Demoted *DemotionStatus `json:"demoted,omitempty"`
	// Fault says why a FAULT instance waits: "interface eth9 does not exist", "no IPv4
	// address on eth0".
	Fault string `json:"fault,omitempty"`
}

// CheckStatus describes one check.
type CheckStatus struct {
	Name    string    `json:"name"`
	Up      bool      `json:"up"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since"`
	// Weight is the check's dynamic weight, when its plugin reports one.
	Weight *int32 `json:"weight,omitempty"`
	// Metrics are those of the probe that last changed the check's state or weight.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// Status collects the state of every child and asks the running ones for theirs.
func (s *Supervisor) Status(ctx context.Context) Status {
	st := Status{Goroutines: runtime.NumGoroutine()}
	for _, p := range s.procs() {
		p.mu.Lock()
		ps := ProcessStatus{Role: string(p.role), PID: p.pid, State: p.state, Restarts: p.restarts, LastError: p.lastError}
		if p.state == "running" {
			ps.UptimeSec = time.Since(p.started).Round(time.Millisecond).Seconds()
		}
		v, c := p.vrrp, p.check
		p.mu.Unlock()
		if c != nil {
			// For the goroutine count and the load balancer: the check states core holds are
			// those it forwards.
			cctx, cancel := context.WithTimeout(ctx, childStatusWait)
			cs, err := c.Status(cctx, &childpb.Empty{}, statusCall())
			cancel()
			if err == nil {
				ps.Goroutines = int(cs.Goroutines)
				st.LVS = lvsStatusOf(cs.GetLvs())
			} else {
				ps.Unanswered = unanswered(err)
			}
		}
		if v != nil {
			cctx, cancel := context.WithTimeout(ctx, childStatusWait)
			vs, err := v.Status(cctx, &childpb.Empty{}, statusCall())
			cancel()
			if err != nil {
				ps.Unanswered = unanswered(err)
			} else {
				ps.Goroutines = int(vs.Goroutines)
				s.mu.Lock()
				cfg := s.cfg
				s.mu.Unlock()
				st.Instances, st.Drops = instancesOf(vs, cfg)
				st.BGP = bgpStatusOf(vs.GetBgp())
				byName := map[string]*childpb.InstanceStatus{}
				for _, in := range vs.GetInstances() {
					byName[in.GetName()] = in
				}
				for i := range st.Instances {
					st.Instances[i].Demoted = s.demotionStatus(st.Instances[i].Name, byName[st.Instances[i].Name])
				}
			}
		}
		st.Processes = append(st.Processes, ps)
	}
	s.mu.Lock()
	for _, c := range s.checks {
		st.Checks = append(st.Checks, CheckStatus{Name: c.Name, Up: c.Up, Message: c.Message, Since: time.Unix(0, c.UnixNano), Weight: c.Weight, Metrics: c.Metrics})
	}
	s.mu.Unlock()
	sort.Slice(st.Checks, func(i, j int) bool { return st.Checks[i].Name < st.Checks[j].Name })
	return st
}

// unanswered words a child's failure to answer its part of a status.
func unanswered(err error) string {
	if status.Code(err) == codes.DeadlineExceeded {
		return fmt.Sprintf("no answer within %s (stopped or overloaded?)", childStatusWait)
	}
	// The child's own words: cleaned as anything else a child sends.
	return checksched.Message(status.Convert(err).Message())
}
