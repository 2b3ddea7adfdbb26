package supervisor

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/notify"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// What core takes from its children. The check child runs plugins and scripts, as
// script_user when one is set: it is the least trusted part of vigil, and core is what stands
// between it and the vrrp process. A state it sends is taken only for a check of the
// configuration, in the epoch core gave that child, with a weight a priority can take; its
// message and metrics are cut to check's bounds. The vrrp child runs as root, but what it
// says reaches notify scripts and the notify FIFO as arguments and lines: a transition is
// taken only for an instance of the configuration, between states that exist. Whatever is
// refused is logged, never applied, and holds no memory.

// errRefused marks a message from a child that core refused.
var errRefused = errors.New("refused")

// checkNames is every name the check child may send a state for under cfg: the checks that
// instances and sync groups track, and the checkers of real servers.
func checkNames(cfg *config.Config) map[string]bool {
	names := map[string]bool{}
	for _, r := range checksched.Tracked(cfg) {
		names[r.Name] = true
	}
	for _, c := range checksched.RealServerChecks(cfg) {
		names[c.Name] = true
	}
	return names
}

// admitCheck returns the state core keeps and forwards for st, sent by the check child that
// core started with epoch, or why it is refused. The state returned is st itself when
// nothing in it had to be bounded, else a bounded copy.
func admitCheck(st *childpb.CheckState, epoch uint64, names map[string]bool) (*childpb.CheckState, error) {
	switch {
	case !names[st.GetName()]:
		return nil, fmt.Errorf("%w: a state for check %q, which the configuration does not have", errRefused, checksched.Message(st.GetName()))
	case st.GetEpoch() != epoch:
		// A later epoch would make the states of every later check child look stale.
		return nil, fmt.Errorf("%w: check %s: a state of epoch %d from the check child of epoch %d", errRefused, st.GetName(), st.GetEpoch(), epoch)
	case st.GetSeq() == 0:
		return nil, fmt.Errorf("%w: check %s: a state without a sequence number", errRefused, st.GetName())
	case st.Weight != nil && !checksched.ValidWeight(int64(st.GetWeight())):
		return nil, fmt.Errorf("%w: check %s: weight %d, beyond %d..%d", errRefused, st.GetName(), st.GetWeight(), -checksched.MaxWeight, checksched.MaxWeight)
	}
	msg, metrics := checksched.Message(st.GetMessage()), checksched.Metrics(st.GetMetrics())
	if msg == st.GetMessage() && len(metrics) == len(st.GetMetrics()) {
		return st, nil
	}
	bounded := proto.CloneOf(st)
	bounded.Message, bounded.Metrics = msg, metrics
	return bounded, nil
}

// transitionStates are the states a transition from the vrrp child may name: those of the
// state machine, and the event of a master hearing a lower priority (in To). STOP and
// DELETED are core's own (notify), never the child's.
var transitionStates = func() []string {
	var names []string
	for _, s := range fsm.States() {
		names = append(names, s.String())
	}
	return append(names, notify.MasterRxLowerPri)
}()

// vipsOf is how many addresses the vrrp child may name for an instance: its
// virtual_ipaddress and virtual_ipaddress_excluded, as the configuration lists them.
func vipsOf(in *config.VRRPInstance) int { return len(in.VIPs) + len(in.ExcludedVIPs) }

// admitTransition returns what core passes on for t (to notify actions), or why it is refused.
func admitTransition(t *childpb.Transition, cfg *config.Config) (Transition, error) {
	var in *config.VRRPInstance
	for _, i := range cfg.Instances {
		if i.Name == t.GetInstance() {
			in = i
			break
		}
	}
	switch {
	case in == nil:
		return Transition{}, fmt.Errorf("%w: a transition of instance %q, which the configuration does not have", errRefused, checksched.Message(t.GetInstance()))
	case !slices.Contains(transitionStates, t.GetFrom()) || !slices.Contains(transitionStates, t.GetTo()):
		return Transition{}, fmt.Errorf("%w: instance %s: a transition from %q to %q", errRefused, in.Name, checksched.Message(t.GetFrom()), checksched.Message(t.GetTo()))
	case t.GetPriority() < 0 || t.GetPriority() > 255:
		return Transition{}, fmt.Errorf("%w: instance %s: priority %d", errRefused, in.Name, t.GetPriority())
	case t.GetGroup() != "" && !inGroup(cfg, t.GetGroup(), in.Name):
		return Transition{}, fmt.Errorf("%w: instance %s: sync group %q, which it is not in", errRefused, in.Name, checksched.Message(t.GetGroup()))
	case len(t.GetVips()) > vipsOf(in):
		return Transition{}, fmt.Errorf("%w: instance %s: %d addresses, of %d configured", errRefused, in.Name, len(t.GetVips()), vipsOf(in))
	}
	for _, v := range t.GetVips() {
		if _, err := netip.ParsePrefix(v); err != nil {
			return Transition{}, fmt.Errorf("%w: instance %s: address %q", errRefused, in.Name, checksched.Message(v))
		}
	}
	return Transition{Instance: in.Name, Group: t.GetGroup(), From: t.GetFrom(), To: t.GetTo(), Reason: checksched.Message(t.GetReason()),
		Priority: int(t.GetPriority()), VIPs: t.GetVips(), Time: time.Unix(0, t.GetUnixNano())}, nil
}

func inGroup(cfg *config.Config, group, instance string) bool {
	for _, g := range cfg.SyncGroups {
		if g.Name == group {
			return slices.ContainsFunc(g.Members, func(m config.NameRef) bool { return m.Name == instance })
		}
	}
	return false
}

// maxDropReasons bounds the drop counters `vigil status` shows: the receive path has a
// handful of reasons.
const maxDropReasons = 64

// instancesOf is what `vigil status` shows of the vrrp child's answer: the instances of the
// configuration (each once), with their strings bounded, and at most maxDropReasons drop
// counters with clean names.
func instancesOf(vs *childpb.VRRPStatus, cfg *config.Config) ([]InstanceStatus, map[string]uint64) {
	want := map[string]*config.VRRPInstance{}
	for _, in := range cfg.Instances {
		want[in.Name] = in
	}
	var out []InstanceStatus
	for _, in := range vs.GetInstances() {
		c := want[in.GetName()]
		if c == nil {
			continue
		}
		want[in.GetName()] = nil // once
		vips := in.GetVips()
		if len(vips) > vipsOf(c) {
			vips = vips[:vipsOf(c)]
		}
		vips = slices.Clone(vips)
		for i, v := range vips {
			vips[i] = checksched.Message(v)
		}
		out = append(out, InstanceStatus{
			Name: in.GetName(), Group: checksched.Message(in.GetGroup()), Interface: checksched.Message(in.GetInterface()), VRID: in.GetVrid(),
			State: checksched.Message(in.GetState()), Priority: in.GetPriority(), EffectivePriority: in.GetEffectivePriority(),
			Master: checksched.Message(in.GetMaster()), VIPs: vips, Fault: checksched.Message(in.GetFault()),
		})
	}
	var drops map[string]uint64
	reasons := slices.Sorted(maps.Keys(vs.GetDrops()))
	for _, r := range reasons {
		if len(drops) == maxDropReasons {
			break
		}
		if r == "" || len(r) > checksched.MaxMetricName || checksched.Message(r) != r {
			continue
		}
		if drops == nil {
			drops = map[string]uint64{}
		}
		drops[r] = vs.GetDrops()[r]
	}
	return out, drops
}
