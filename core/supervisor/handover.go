package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// The operator's handover (vigil demote, vigil promote) is runtime state that core holds:
// the vrrp child applies it (fsm.Demote) but may be restarted, and a reload makes new state
// machines. Core sends the whole set to a vrrp child before its Start, again once it runs,
// after each reload and after each change, and clears what a --for put in it when that time
// is up. A restart of vigil itself forgets it (see docs/maintenance.md).

// demotion is one demoted instance, as core holds it.
type demotion struct {
	since time.Time
	until time.Time // zero: until vigil promote
	group string    // demoted as a member of this sync group
}

// ErrUnknownInstance is a demote or promote naming an instance that the configuration
// does not have; the error names it and lists those it has.
var ErrUnknownInstance = errors.New("no such vrrp_instance")

// ErrNoInstance is a demote or promote that names nothing: --all with no vrrp_instance.
var ErrNoInstance = errors.New("the configuration has no vrrp_instance")

// HandoverResult is what a demote or promote did, for the control socket's answer.
type HandoverResult struct {
	// Demoted and Promoted are the instances the command changed, sync group members
	// included (a member demotes its group).
	Demoted  []string `json:"demoted,omitempty"`
	Promoted []string `json:"promoted,omitempty"`
	// Until is when a demote --for ends; nil: at vigil promote.
	Until *time.Time `json:"until,omitempty"`
	// Pending says the vrrp process has not taken it yet (it is (re)starting, or did not
	// answer): it gets it when it runs, before any instance starts.
	Pending string `json:"pending,omitempty"`
}

// DemotionStatus is what `vigil status` shows of a demoted instance.
type DemotionStatus struct {
	Since time.Time  `json:"since"`
	Until *time.Time `json:"until,omitempty"` // nil: until vigil promote
	// Group is the sync group the instance was demoted with.
	Group string `json:"with_sync_group,omitempty"`
	// Applied: the vrrp process holds the instance demoted.
	Applied bool `json:"applied"`
	// NoMasterSince: no router has been master of the instance since then, and it does not
	// take over while demoted; nil while a master is heard.
	NoMasterSince *time.Time `json:"no_master_since,omitempty"`
}

// expand resolves names (all: every instance) against cfg into the instances to change:
// a sync group member brings every member of its group, as the vrrp child moves a group as
// one. The value is the group an instance comes with ("" for itself).
func expand(cfg *config.Config, names []string, all bool) (map[string]string, error) {
	known := make([]string, 0, len(cfg.Instances))
	for _, in := range cfg.Instances {
		known = append(known, in.Name)
	}
	if all {
		names = known
		if len(names) == 0 {
			return nil, ErrNoInstance
		}
	}
	groupOf := map[string]*config.SyncGroup{}
	for _, g := range cfg.SyncGroups {
		for _, m := range g.Members {
			groupOf[m.Name] = g
		}
	}
	out := map[string]string{}
	for _, n := range names {
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("%w %q: the configuration has %s", ErrUnknownInstance, n, listNames(known))
		}
		out[n] = ""
	}
	for _, n := range names {
		if g := groupOf[n]; g != nil {
			for _, m := range g.Members {
				if _, named := out[m.Name]; !named && slices.Contains(known, m.Name) {
					out[m.Name] = g.Name
				}
			}
		}
	}
	return out, nil
}

func listNames(names []string) string {
	if len(names) == 0 {
		return "no vrrp_instance"
	}
	return strings.Join(slices.Sorted(slices.Values(names)), ", ")
}

// Demote demotes the named instances (all: every instance), with their sync groups, until
// Promote or, when d is positive, for d. Demoting an instance that is demoted already sets
// its end anew. It returns once the vrrp process applied it (the masters resigned), or says
// that it is pending.
func (s *Supervisor) Demote(ctx context.Context, names []string, all bool, d time.Duration) (HandoverResult, error) {
	now := time.Now()
	s.mu.Lock()
	which, err := expand(s.cfg, names, all)
	if err != nil {
		s.mu.Unlock()
		return HandoverResult{}, err
	}
	var res HandoverResult
	var until time.Time
	if d > 0 {
		until = now.Add(d)
		u := until.Round(0) // the wall clock reading, for people
		res.Until = &u
	}
	if s.demoted == nil {
		s.demoted = map[string]demotion{}
	}
	for _, name := range slices.Sorted(maps.Keys(which)) {
		old, was := s.demoted[name]
		dm := demotion{since: now, until: until, group: which[name]}
		if was {
			dm.since = old.since
		}
		s.demoted[name] = dm
		res.Demoted = append(res.Demoted, name)
	}
	s.demotionsChanged()
	s.mu.Unlock()
	s.opts.Log.Info("demoted by the operator", "instances", res.Demoted, "until", untilText(until))
	res.Pending = s.pushDemoted(ctx)
	return res, nil
}

// Promote lifts the demotion of the named instances (all: every demoted one), with their
// sync groups. An instance that is not demoted is left as it is.
func (s *Supervisor) Promote(ctx context.Context, names []string, all bool) (HandoverResult, error) {
	s.mu.Lock()
	var which map[string]string
	if all {
		which = map[string]string{}
		for name := range s.demoted {
			which[name] = ""
		}
	} else {
		var err error
		if which, err = expand(s.cfg, names, false); err != nil {
			s.mu.Unlock()
			return HandoverResult{}, err
		}
	}
	var res HandoverResult
	for _, name := range slices.Sorted(maps.Keys(which)) {
		if _, ok := s.demoted[name]; ok {
			delete(s.demoted, name)
			res.Promoted = append(res.Promoted, name)
		}
	}
	s.demotionsChanged()
	s.mu.Unlock()
	if len(res.Promoted) > 0 {
		s.opts.Log.Info("promoted by the operator", "instances", res.Promoted)
	}
	res.Pending = s.pushDemoted(ctx)
	return res, nil
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "vigil promote"
	}
	return t.Round(0).Format(time.RFC3339)
}

// demotionsChanged wakes expireDemotions. Callers hold s.mu.
func (s *Supervisor) demotionsChanged() {
	if s.demChanged != nil {
		close(s.demChanged)
	}
	s.demChanged = make(chan struct{})
}

// demotedNames is the set to send the vrrp child. Callers hold s.mu.
func (s *Supervisor) demotedNames() []string {
	return slices.Sorted(maps.Keys(s.demoted))
}

// pushWait bounds how long core waits for the vrrp child to apply a demotion.
const pushWait = 10 * time.Second

// demotePushRetry is how soon core sends the set again when the running vrrp child did not
// take it after a demotion ran out.
const demotePushRetry = time.Second

// pushDemoted sends the set of demoted instances to the running vrrp child, one send at a
// time so that the last set read is the last one sent. It returns why the child does not
// have it yet, or "" once it applied it. A child that is not running gets the set before
// its Start (runOnce).
func (s *Supervisor) pushDemoted(ctx context.Context) string {
	s.demSend.Lock()
	defer s.demSend.Unlock()
	v := s.vrrpClient()
	if v == nil {
		return "the vrrp process is not running; it takes this when it starts"
	}
	return s.sendDemoted(ctx, v)
}

// sendDemoted sends the current set to v. Callers hold demSend.
func (s *Supervisor) sendDemoted(ctx context.Context, v childpb.VRRPClient) string {
	s.mu.Lock()
	names := s.demotedNames()
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, pushWait)
	defer cancel()
	if _, err := v.SetDemoted(cctx, &childpb.DemoteRequest{Instances: names}); err != nil {
		s.opts.Log.Warn("could not pass the demoted instances to vrrp; it gets them when it restarts", "error", err)
		return "the vrrp process did not take it: " + status.Convert(err).Message()
	}
	return ""
}

// expireDemotions ends each demote --for when its time is up, until ctx ends. It reads the
// monotonic clock (time.Until): a step of the wall clock neither ends a demotion early nor
// makes it last.
func (s *Supervisor) expireDemotions(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// retry: the running vrrp child did not take the set after an expiry. Left alone, core
	// would say the instance is promoted while the child keeps it demoted, never taking over.
	retry := false
	for {
		s.mu.Lock()
		if s.demChanged == nil {
			s.demChanged = make(chan struct{})
		}
		wake := s.demChanged
		var next time.Time
		var expired []string
		for name, d := range s.demoted {
			switch {
			case d.until.IsZero():
			case time.Until(d.until) <= 0:
				expired = append(expired, name)
				delete(s.demoted, name)
			case next.IsZero() || d.until.Before(next):
				next = d.until
			}
		}
		s.mu.Unlock()
		if len(expired) > 0 {
			slices.Sort(expired)
			s.opts.Log.Info("demotion over (vigil demote --for); promoted", "instances", expired)
			retry = true
		}
		if retry {
			// A child that is not running gets the set before its Start: nothing to retry.
			retry = s.pushDemoted(ctx) != "" && s.vrrpClient() != nil
		}
		var fire <-chan time.Time
		if !next.IsZero() || retry {
			wait := time.Until(next)
			if retry && (next.IsZero() || wait > demotePushRetry) {
				wait = demotePushRetry
			}
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-fire:
		}
	}
}

// demotionsAfterReload keeps the demotions through a reload to cfg: those of instances cfg
// no longer has end (the log says so), and an instance that cfg puts in the sync group of a
// demoted one is demoted with it. Callers hold s.mu.
func (s *Supervisor) demotionsAfterReload(cfg *config.Config) {
	if len(s.demoted) == 0 {
		return
	}
	has := map[string]bool{}
	for _, in := range cfg.Instances {
		has[in.Name] = true
	}
	var gone []string
	for name := range s.demoted {
		if !has[name] {
			gone = append(gone, name)
			delete(s.demoted, name)
		}
	}
	for _, g := range cfg.SyncGroups {
		var with *demotion
		for _, m := range g.Members {
			if d, ok := s.demoted[m.Name]; ok {
				with = &d
				break
			}
		}
		if with == nil {
			continue
		}
		for _, m := range g.Members {
			if _, ok := s.demoted[m.Name]; !ok && has[m.Name] {
				s.demoted[m.Name] = demotion{since: with.since, until: with.until, group: g.Name}
			}
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		s.opts.Log.Info("the reload removed demoted instances; their demotion ends", "instances", gone)
	}
	s.demotionsChanged()
}

// demotionStatus is what status shows of name's demotion, with what the vrrp child says
// of it (in); nil when core holds no demotion of it.
func (s *Supervisor) demotionStatus(name string, in *childpb.InstanceStatus) *DemotionStatus {
	s.mu.Lock()
	d, ok := s.demoted[name]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	st := &DemotionStatus{Since: d.since.Round(0), Group: d.group, Applied: in.GetDemoted()}
	if !d.until.IsZero() {
		u := d.until.Round(0)
		st.Until = &u
	}
	if ns := in.GetNoMasterSinceUnixNano(); ns != 0 {
		t := time.Unix(0, ns)
		st.NoMasterSince = &t
	}
	return st
}
