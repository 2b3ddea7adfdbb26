package check

import (
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/sdk/internal/pb"
)

// batches is a plugin's end of a probe stream that sends the given result batches, each
// twice (a plugin that repeats itself), then ends.
type batches struct{ rbs []*pb.ResultBatch }

func (b *batches) Send(*pb.ProbeBatch) error { return nil }

func (b *batches) Recv() (*pb.ResultBatch, error) {
	if len(b.rbs) == 0 {
		return nil, io.EOF
	}
	rb := b.rbs[0]
	b.rbs = b.rbs[1:]
	return rb, nil
}

// FuzzProbeResults feeds a host's probe stream arbitrary bytes as the plugin's result batches
// (each sent twice): results for probes nobody waits for, the same result again, results with
// any status, weight, message, metrics and error. Each waiting probe gets exactly one outcome,
// the stream keeps nothing once it ends, and what a probe returns carries the plugin's
// status number and weight as they came (what the host makes of them is core/plugin's
// FuzzAnswer).
func FuzzProbeResults(f *testing.F) {
	enc := func(rb *pb.ResultBatch) []byte {
		b, err := proto.Marshal(rb)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	w := int32(1_000_000_000)
	f.Add(enc(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: 1, Response: &pb.CheckResponse{Status: pb.Status_STATUS_OK, Message: "ok"}}}}), []byte{})
	f.Add(enc(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: 2, Response: &pb.CheckResponse{Status: 99, Weight: &w, Metrics: map[string]float64{"a": 1}}}, {Id: 1 << 62}}}),
		enc(&pb.ResultBatch{Results: []*pb.ProbeResult{{Id: 3, ErrorCode: 4, Error: "deadline"}, {Id: 3, Response: &pb.CheckResponse{Status: -7}}}}))
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		src := &batches{}
		for _, in := range [][]byte{a, b} {
			var rb pb.ResultBatch
			if proto.Unmarshal(in, &rb) == nil {
				src.rbs = append(src.rbs, &rb, &rb)
			}
		}
		ps := &probeStream{m: &mux{}, stream: src, close: func() {}, waiting: map[uint64]chan<- outcome{},
			out: newCombiner(func([]sendItem) error { return nil })}
		chans := map[uint64]chan outcome{}
		for id := uint64(1); id <= 3; id++ {
			ch := make(chan outcome, 1) // a second outcome would block receive: the test hangs
			chans[id] = ch
			ps.waiting[id] = ch
		}
		ps.receive() // until the batches end
		if ps.waiting != nil || ps.err == nil {
			t.Fatalf("after the stream ended: waiting %v, err %v", ps.waiting, ps.err)
		}
		for id, ch := range chans {
			var o outcome
			select {
			case o = <-ch:
			default:
				t.Fatalf("probe %d got no outcome", id)
			}
			if o.err != nil {
				if !errors.Is(o.err, io.ErrUnexpectedEOF) {
					t.Fatalf("probe %d: %v; want the stream's end", id, o.err)
				}
				continue
			}
			if o.res.GetId() != id {
				t.Fatalf("probe %d got the result of %d", id, o.res.GetId())
			}
			if o.res.GetError() != "" || o.res.GetErrorCode() != 0 {
				continue
			}
			if o.res.GetResponse() == nil {
				// Neither a result nor an error: check refuses it. fromResponse must not
				// panic on it either (it once did, and took the host down).
				if got := fromResponse(nil); got.Status != Unknown || got.Weight != nil {
					t.Fatalf("no response came out as %+v", got)
				}
				continue
			}
			got, want := fromResponse(o.res.GetResponse()), o.res.GetResponse()
			switch {
			case int(got.Status) != int(want.GetStatus()):
				t.Fatalf("status %d came out as %d", want.GetStatus(), got.Status)
			case (got.Weight == nil) != (want.Weight == nil) || got.Weight != nil && *got.Weight != int(want.GetWeight()):
				t.Fatalf("weight %v came out as %v", want.Weight, got.Weight)
			case got.Message != want.GetMessage() || len(got.Metrics) != len(want.GetMetrics()):
				t.Fatalf("message or metrics changed: %+v from %v", got, want)
			}
		}
	})
}
