package supervisor

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// fuzzConf has two checks (one tracked by an instance, one by a sync group), two instances
// (one in a sync group) and no script_user: what core's side of the child protocol checks
// messages against.
const fuzzConf = `vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_script chk_group {
    script "/bin/true"
}
vrrp_sync_group G {
    group {
        VI_1
    }
    track_script {
        chk_group
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.100/32
    }
    track_script {
        chk
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.101/32
    }
}
`

func fuzzSupervisor(t testing.TB) *Supervisor {
	cfg, ds := config.Parse("fuzz.conf", []byte(fuzzConf), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	s, err := New(cfg, Options{Exe: "/nonexistent", Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fuzzEpoch is the epoch of the check child whose stream the fuzz inputs come on.
const fuzzEpoch = 3

// FuzzFromCheckChild feeds what a check child sends on its stream of states, as arbitrary
// bytes unmarshalled into CheckStates (two of them, so that their order counts), to core's
// handling of it. Core must refuse a state of a check it does not have, of another epoch,
// without a sequence number, or with a weight out of range; keep at most one state per check
// of the configuration, the newest; bound what it keeps; and `vigil status` must still
// encode.
func FuzzFromCheckChild(f *testing.F) {
	good := func(st *childpb.CheckState) []byte {
		b, err := proto.Marshal(st)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	w := int32(-10)
	big := int32(1_000_000_000)
	f.Add(good(&childpb.CheckState{Name: "chk", Up: true, Message: "ok", Epoch: fuzzEpoch, Seq: 1}),
		good(&childpb.CheckState{Name: "chk", Message: "exit status 1", Epoch: fuzzEpoch, Seq: 2, Weight: &w}))
	f.Add(good(&childpb.CheckState{Name: "chk_group", Up: true, Epoch: fuzzEpoch, Seq: math.MaxUint64, Metrics: map[string]float64{"nan": math.NaN(), "lag": 3}}),
		good(&childpb.CheckState{Name: "chk_group", Epoch: math.MaxUint64, Seq: 1}))
	f.Add(good(&childpb.CheckState{Name: "nope", Up: true, Epoch: fuzzEpoch, Seq: 5}),
		good(&childpb.CheckState{Name: "chk", Up: true, Epoch: fuzzEpoch, Seq: 6, Weight: &big, Message: strings.Repeat("\x1b[2J", 3000)}))
	f.Add([]byte{0x0a, 0x03, 'c', 'h', 'k', 0x40, 0xff}, []byte{})
	s := fuzzSupervisor(f)
	names := checkNames(s.cfg)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s.checks = map[string]*childpb.CheckState{}
		var taken []*childpb.CheckState
		for _, in := range [][]byte{a, b} {
			var st childpb.CheckState
			if proto.Unmarshal(in, &st) != nil {
				continue
			}
			before := s.checks[st.Name]
			got, ok := s.takeCheck(&st, fuzzEpoch, &logLimit{})
			if !ok {
				if s.checks[st.Name] != before {
					t.Fatalf("a state that was not taken changed what core keeps: %v", &st)
				}
				continue
			}
			taken = append(taken, got)
			switch {
			case !names[got.Name] || got.Epoch != fuzzEpoch || got.Seq == 0:
				t.Fatalf("taken: %v", got)
			case got.Weight != nil && !checksched.ValidWeight(int64(*got.Weight)):
				t.Fatalf("weight %d taken", *got.Weight)
			case len(got.Message) > checksched.MaxMessage || strings.IndexFunc(got.Message, unicode.IsControl) >= 0 || !utf8.ValidString(got.Message):
				t.Fatalf("message kept: %q", got.Message)
			case len(got.Metrics) > checksched.MaxMetrics:
				t.Fatalf("%d metrics kept", len(got.Metrics))
			}
			for k, v := range got.Metrics {
				if math.IsNaN(v) || math.IsInf(v, 0) || len(k) > checksched.MaxMetricName {
					t.Fatalf("metric %q = %v kept", k, v)
				}
			}
		}
		if len(s.checks) > len(names) {
			t.Fatalf("%d states kept for %d checks", len(s.checks), len(names))
		}
		// What is kept of each check is the newest taken.
		for name, st := range s.checks {
			for _, o := range taken {
				if o.Name == name && st.Order().Before(o.Order()) {
					t.Fatalf("kept %v, older than %v", st, o)
				}
			}
		}
		if _, err := json.Marshal(s.Status(context.Background())); err != nil {
			t.Fatalf("vigil status does not encode: %v", err)
		}
	})
}

// FuzzFromVRRPChild feeds what a vrrp child sends to core, as arbitrary bytes unmarshalled
// into a Transition (passed on to notify actions) and a VRRPStatus answer (shown by `vigil
// status`). A transition is passed on only for an instance of the configuration, between
// states that exist, with a priority a VRRP priority can be, in its own sync group, with
// addresses; its reason is bounded. The status shows only instances of the configuration,
// each once, and always encodes.
func FuzzFromVRRPChild(f *testing.F) {
	enc := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc(&childpb.Transition{Instance: "VI_1", Group: "G", From: "BACKUP", To: "MASTER", Reason: "timer", Priority: 100, Vips: []string{"192.0.2.100/32"}}),
		enc(&childpb.VRRPStatus{Instances: []*childpb.InstanceStatus{{Name: "VI_1", State: "MASTER", Priority: 100, Vips: []string{"192.0.2.100/32"}}}, Drops: map[string]uint64{"ttl": 3}}))
	f.Add(enc(&childpb.Transition{Instance: "VI_9", From: "BACKUP", To: "MASTER", Priority: 100}),
		enc(&childpb.VRRPStatus{Instances: []*childpb.InstanceStatus{{Name: "VI_1"}, {Name: "VI_1"}, {Name: "VI_3"}}, Drops: map[string]uint64{"": 1, "a\nb": 2}}))
	f.Add(enc(&childpb.Transition{Instance: "VI_2", Group: "G", From: "BACKUP", To: "MASTER", Priority: 100}), []byte{})
	f.Add(enc(&childpb.Transition{Instance: "VI_2", From: "BACKUP", To: "MASTER", Priority: -1, Reason: strings.Repeat("x\n", 5000)}), []byte{0x0a, 0x00})
	f.Add(enc(&childpb.Transition{Instance: "VI_1", From: "MASTER", To: "MASTER_RX_LOWER_PRI", Priority: 255, Vips: []string{"not an address"}}), []byte{0x12, 0xff})
	s := fuzzSupervisor(f)
	f.Fuzz(func(t *testing.T, tb, sb []byte) {
		var tr childpb.Transition
		if proto.Unmarshal(tb, &tr) == nil {
			got, err := admitTransition(&tr, s.cfg)
			if err == nil {
				switch {
				case !slices.ContainsFunc(s.cfg.Instances, func(in *config.VRRPInstance) bool { return in.Name == got.Instance }):
					t.Fatalf("transition of an unknown instance passed on: %+v", got)
				case !slices.Contains(transitionStates, got.From) || !slices.Contains(transitionStates, got.To):
					t.Fatalf("transition between unknown states passed on: %+v", got)
				case got.Priority < 0 || got.Priority > 255:
					t.Fatalf("priority %d passed on", got.Priority)
				case got.Group != "" && !inGroup(s.cfg, got.Group, got.Instance):
					t.Fatalf("group %q passed on for %s", got.Group, got.Instance)
				case len(got.Reason) > checksched.MaxMessage || strings.IndexFunc(got.Reason, unicode.IsControl) >= 0:
					t.Fatalf("reason passed on: %q", got.Reason)
				}
				for _, in := range s.cfg.Instances {
					if in.Name == got.Instance && len(got.VIPs) > len(in.VIPs)+len(in.ExcludedVIPs) {
						t.Fatalf("%d addresses passed on for %s, which has %d", len(got.VIPs), in.Name, len(in.VIPs)+len(in.ExcludedVIPs))
					}
				}
			}
		}
		var vs childpb.VRRPStatus
		if proto.Unmarshal(sb, &vs) == nil {
			ins, drops := instancesOf(&vs, s.cfg)
			if len(ins) > len(s.cfg.Instances) || len(drops) > maxDropReasons {
				t.Fatalf("%d instances and %d drop reasons shown", len(ins), len(drops))
			}
			seen := map[string]bool{}
			for _, in := range ins {
				if seen[in.Name] {
					t.Fatalf("instance %s shown twice", in.Name)
				}
				seen[in.Name] = true
			}
			if _, err := json.Marshal(Status{Instances: ins, Drops: drops}); err != nil {
				t.Fatalf("vigil status does not encode: %v", err)
			}
		}
	})
}
