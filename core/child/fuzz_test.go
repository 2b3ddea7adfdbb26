package child

import (
	"math"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// fuzzConf tracks chk from an instance and chk_group from a sync group.
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
`

// FuzzFromCore feeds what a child receives from core, as arbitrary bytes unmarshalled into
// the messages: a StartRequest (the configuration's text and the places of its lines, as
// Start and Reload of both children read it) and two CheckStates (SetCheck of the vrrp child,
// two so that their order counts). A request that does not read as a configuration fails
// with InvalidArgument, never a panic; places that do not agree with each other are dropped.
// A state of a check that no instance tracks, without its number, or with a weight out of
// range is refused and leaves nothing behind; of the others, only one newer than the last
// one applied is applied.
func FuzzFromCore(f *testing.F) {
	cfg, ds := config.Parse("fuzz.conf", []byte(fuzzConf), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		f.Fatal(ds.Errors())
	}
	enc := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	w, big := int32(-10), int32(math.MaxInt32)
	start := enc(StartRequest(cfg))
	f.Add(start, enc(&childpb.CheckState{Name: "chk", Up: true, Epoch: 1, Seq: 1}), enc(&childpb.CheckState{Name: "chk", Epoch: 1, Seq: 2, Weight: &w}))
	f.Add(enc(&childpb.StartRequest{ConfigText: fuzzConf, Files: []string{"a"}, PlaceFile: []uint32{0, 7}, PlaceLine: []uint32{1, 2}, PlaceCol: []uint32{1, 1}}),
		enc(&childpb.CheckState{Name: "chk_group", Epoch: 2, Seq: 1}), enc(&childpb.CheckState{Name: "chk_group", Epoch: 1, Seq: math.MaxUint64}))
	f.Add(enc(&childpb.StartRequest{ConfigText: "vrrp_instance {", Files: []string{""}, PlaceFile: []uint32{0}, PlaceLine: []uint32{math.MaxUint32}, PlaceCol: []uint32{math.MaxUint32}}),
		enc(&childpb.CheckState{Name: "nope", Epoch: 1, Seq: 1}), enc(&childpb.CheckState{Name: "chk", Epoch: 1, Seq: 3, Weight: &big}))
	f.Add([]byte{0x0a, 0x01, '{'}, []byte{0x0a, 0x03, 'c', 'h', 'k'}, []byte{})
	checks := trackedChecks(cfg)
	f.Fuzz(func(t *testing.T, startReq, a, b []byte) {
		var req childpb.StartRequest
		if proto.Unmarshal(startReq, &req) == nil {
			if places := placesOf(&req); places != nil && len(places) != len(req.PlaceFile) {
				t.Fatalf("%d places of %d lines", len(places), len(req.PlaceFile))
			}
			if _, err := parseChildConfig(&req); err != nil && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("a configuration that does not read: %v; want InvalidArgument", err)
			}
		}
		s := newVRRPServer(hclog.NewNullLogger(), Options{})
		var last *childpb.Order
		for _, in := range [][]byte{a, b} {
			var st childpb.CheckState
			if proto.Unmarshal(in, &st) != nil {
				continue
			}
			before := len(s.checkOrder)
			apply, dynamic, err := s.admitCheck(&st, checks)
			bad := !checks[st.Name] || st.Epoch == 0 || st.Seq == 0 || st.Weight != nil && (*st.Weight < -253 || *st.Weight > 253)
			switch {
			case bad != (err != nil):
				t.Fatalf("state %v: error %v", &st, err)
			case err != nil && (apply || len(s.checkOrder) != before):
				t.Fatalf("refused state %v applied or kept", &st)
			case err != nil:
				continue
			case apply && last != nil && st.Order().Before(*last):
				t.Fatalf("state %v applied after %v", &st, *last)
			case apply && (st.Weight == nil) != (dynamic == nil) || dynamic != nil && *dynamic != int(*st.Weight):
				t.Fatalf("state %v applied with weight %v", &st, dynamic)
			}
			if apply && (last == nil || last.Before(st.Order())) {
				o := st.Order()
				last = &o
			}
		}
		if len(s.checkOrder) > len(checks) {
			t.Fatalf("%d check orders kept for %d checks", len(s.checkOrder), len(checks))
		}
	})
}
