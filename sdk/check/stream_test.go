package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/internal/pb"
)

// probeImpl answers by name: "echo-N" with its name, "wait" when its context ends (and says
// so on ended, with how long its deadline was), "panic" by panicking, "fail" with an error.
type probeImpl struct {
	ended chan time.Duration
}

func (p *probeImpl) Describe(context.Context) (Info, error) { return Info{Name: "probe"}, nil }

func (p *probeImpl) Configure(context.Context, ConfigureRequest) (ConfigureResponse, error) {
	return ConfigureResponse{}, nil
}

func (p *probeImpl) Check(ctx context.Context, req CheckRequest) (CheckResponse, error) {
	switch req.Name {
	case "wait":
		<-ctx.Done()
		var left time.Duration
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		p.ended <- left
		return CheckResponse{}, ctx.Err()
	case "deadline":
		dl, ok := ctx.Deadline()
		if !ok {
			return CheckResponse{Status: Critical, Message: "no deadline"}, nil
		}
		return CheckResponse{Status: OK, Message: time.Until(dl).Round(time.Second).String()}, nil
	case "late":
		// A plugin that ran late: its answer comes after its deadline.
		if dl, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(dl) + 200*time.Millisecond)
		}
		return CheckResponse{Status: OK, Message: "late"}, nil
	case "binary":
		return CheckResponse{Status: OK, Message: "\xff ok", Metrics: map[string]float64{"\xfe": 1}}, nil
	case "panic":
		panic("boom")
	case "fail":
		return CheckResponse{}, errors.New("no route to database")
	case "huge":
		// A buggy plugin: far more than the host takes in one message.
		m := make(map[string]float64, 100000)
		for i := range 100000 {
			m[fmt.Sprintf("metric_%06d", i)] = float64(i)
		}
		return CheckResponse{Status: OK, Message: "huge " + strings.Repeat("é", 4<<20), Metrics: m}, nil
	}
	if strings.HasPrefix(req.Name, "big-") {
		// Each answer well within bounds, but many of them at once are more than one message takes.
		return CheckResponse{Status: OK, Message: req.Name + strings.Repeat("x", 60<<10)}, nil
	}
	w := len(req.Name)
	return CheckResponse{Status: Warning, Message: req.Name, Weight: &w, Metrics: map[string]float64{"len": float64(w)}}, nil
}

// unaryOnly serves Check calls but not the Probes stream, like a plugin of another language
// that claims protocol 2 without implementing it.
type unaryOnly struct {
	pb.UnimplementedCheckServer
	s *server
}

func (u unaryOnly) Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	return u.s.Check(ctx, req)
}

// serveLoopback runs srv on loopback and returns a client for it: on the probe lane if srv
// offers one, else on the Probes stream; with noLane on the stream; with unary, on Check calls.
func serveLoopback(t *testing.T, srv pb.CheckServer, unary, noLane bool) *client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterCheckServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, _ := (&Plugin{unary: unary}).GRPCClient(context.Background(), nil, conn)
	c := raw.(*client)
	if c.mux != nil {
		c.mux.noLane = noLane
	}
	return c
}

// serveProbeImpl serves a probeImpl on loopback as a plugin that serves Probes and
// ProbeLane (stream), or Check calls alone, and returns it with the host's client.
func serveProbeImpl(t *testing.T, stream, unary, noLane bool) (*probeImpl, *client) {
	t.Helper()
	impl := &probeImpl{ended: make(chan time.Duration, 1)}
	var srv pb.CheckServer = &server{impl: impl}
	if !stream {
		srv = unaryOnly{s: &server{impl: impl}}
	}
	return impl, serveLoopback(t, srv, unary, noLane)
}

// TestProbeProtocols: a probe behaves the same on the probe lane, on the Probes stream, as a
// Check call, and on the stream of a plugin that does not serve it (fallback to Check calls).
func TestProbeProtocols(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unary  bool
		stream bool // the server serves Probes and ProbeLane
		noLane bool // the host does not ask for a lane
	}{{"lane", false, true, false}, {"stream", false, true, true}, {"unary", true, true, false}, {"fallback", false, false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			impl, c := serveProbeImpl(t, tc.stream, tc.unary, tc.noLane)
			ctx := context.Background()

			// Many probes at once each get their own answer back.
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for i := range 200 {
				wg.Go(func() {
					name := fmt.Sprintf("echo-%d", i)
					resp, err := c.Check(ctx, CheckRequest{Name: name})
					if err != nil || resp.Status != Warning || resp.Message != name || *resp.Weight != len(name) || resp.Metrics["len"] != float64(len(name)) {
						errs <- fmt.Errorf("%s: %+v, %v", name, resp, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			// Answers that together exceed what the host takes in one message reach it in
			// several (the plugin's combiner joins whatever is ready at once); the stream
			// survives them.
			bigErrs := make(chan error, 200)
			for i := range 200 {
				wg.Go(func() {
					name := fmt.Sprintf("big-%d", i)
					resp, err := c.Check(ctx, CheckRequest{Name: name})
					if err != nil || resp.Status != OK || resp.Message != name+strings.Repeat("x", 60<<10) {
						bigErrs <- fmt.Errorf("%s: %d bytes, %v", name, len(resp.Message), err)
					}
				})
			}
			wg.Wait()
			close(bigErrs)
			for err := range bigErrs {
				t.Error(err)
			}

			// An answer far beyond it is cut, not lost: the status comes through with the start
			// of the message and as many metrics, in name order, as fit.
			resp, err := c.Check(ctx, CheckRequest{Name: "huge"})
			if err != nil || resp.Status != OK || !strings.HasPrefix(resp.Message, "huge éé") || len(resp.Message) > maxResultMessage ||
				len(resp.Metrics) == 0 || resp.Metrics["metric_000000"] != 0 || len(resp.Metrics) >= 100000 {
				t.Errorf("huge answer: %v, %d bytes of message, %d metrics", err, len(resp.Message), len(resp.Metrics))
			}
			if !utf8.ValidString(resp.Message) {
				t.Error("huge answer: message cut inside a character")
			}

			// Bytes that are not UTF-8 (protobuf cannot carry them) neither fail the probe
			// nor the stream.
			bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err = c.Check(bctx, CheckRequest{Name: "binary"})
			cancel()
			if err != nil || resp.Message != "\uFFFD ok" || resp.Metrics["\uFFFD"] != 1 {
				t.Errorf("binary answer: %+v, %v", resp, err)
			}
			if _, err := c.Check(ctx, CheckRequest{Name: "\xff"}); err == nil {
				t.Error("a name that is not UTF-8 was accepted")
			}

			_, err = c.Check(ctx, CheckRequest{Name: "panic"})
			if err == nil || !strings.Contains(err.Error(), "plugin panicked: boom") {
				t.Errorf("panic: %v", err)
			}
			_, err = c.Check(ctx, CheckRequest{Name: "fail"})
			var pe *sdk.PluginError
			if !errors.As(err, &pe) || pe.Msg != "no route to database" {
				t.Errorf("plugin error: %v", err)
			}

			// The plugin gets the caller's deadline.
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err = c.Check(dctx, CheckRequest{Name: "deadline"})
			cancel()
			if err != nil || resp.Message != "5s" {
				t.Errorf("deadline seen by the plugin: %+v, %v; want 5s", resp, err)
			}

			// A caller that gives up cancels the probe in the plugin, long before the probe's
			// own deadline.
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			go func() {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}()
			start := time.Now()
			if _, err := c.Check(cctx, CheckRequest{Name: "wait"}); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled probe: %v", err)
			}
			select {
			case left := <-impl.ended:
				if left < 50*time.Second {
					t.Errorf("the probe ended with %s of its deadline left: by its deadline, not by the cancel", left)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the plugin's probe still runs %s after the caller gave up", time.Since(start))
			}
			if c.mux != nil {
				c.mux.mu.Lock()
				unsupported := c.mux.unsupported
				onLane := c.mux.cur != nil && c.mux.cur.lane
				c.mux.mu.Unlock()
				if want := tc.stream && !tc.noLane; onLane != want {
					t.Errorf("probes on the lane: %v, want %v", onLane, want)
				}
				if unsupported == tc.stream {
					t.Errorf("mux.unsupported = %v on a server that serves Probes: %v", unsupported, tc.stream)
				}
			}
		})
	}
}

// TestStreamBreakFailsInFlight: when the connection goes, a probe waiting on the Probes
// stream fails at once as unavailable instead of waiting for its deadline. (A lane in this
// process would outlive the stopped server; core/plugin's TestCrashRestart kills a plugin
// process with a probe in flight on its lane.)
func TestStreamBreakFailsInFlight(t *testing.T) {
	impl := &probeImpl{ended: make(chan time.Duration, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterCheckServer(gs, &server{impl: impl})
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, _ := (&Plugin{}).GRPCClient(context.Background(), nil, conn)
	c := raw.(*client)
	c.mux.noLane = true

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Check(ctx, CheckRequest{Name: "wait"})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	gs.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("in-flight probe: %v; want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight probe still waiting after the connection broke")
	}
}

// fakeStream is the plugin's end of a Probes stream, fed from a channel.
type fakeStream struct {
	grpc.ServerStream // not called
	ctx               context.Context
	in                chan *pb.ProbeBatch
	out               chan *pb.ResultBatch
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*pb.ProbeBatch, error) {
	select {
	case b := <-f.in:
		return b, nil
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
}

func (f *fakeStream) Send(b *pb.ResultBatch) error {
	select {
	case f.out <- b:
		return nil
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
}

// TestProbeAndCancelInOneBatch: a probe cancelled in the same batch that starts it (the host
// gave up while the batch waited to be sent) is cancelled, not left to run to its timeout.
func TestProbeAndCancelInOneBatch(t *testing.T) {
	impl := &probeImpl{ended: make(chan time.Duration, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeStream{ctx: ctx, in: make(chan *pb.ProbeBatch, 1), out: make(chan *pb.ResultBatch, 1)}
	done := make(chan error, 1)
	go func() { done <- (&server{impl: impl}).Probes(f) }()
	f.in <- &pb.ProbeBatch{Probes: []*pb.Probe{{Id: 7, Name: "wait", TimeoutNanos: int64(time.Minute)}}, Cancel: []uint64{7}}
	select {
	case b := <-f.out:
		if r := b.GetResults(); len(r) != 1 || r[0].GetId() != 7 || r[0].GetError() == "" {
			t.Errorf("results: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the probe cancelled in its own batch still runs")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Probes returned %v after its stream ended", err)
	}
}

// batchRecorder is a probesServer that records the batches sent on it.
type batchRecorder struct {
	probesServer
	sent []*pb.ResultBatch
}

func (b *batchRecorder) Send(rb *pb.ResultBatch) error {
	b.sent = append(b.sent, rb)
	return nil
}

// TestSendResultsSplits: answers that together exceed a batch go in several batches, each
// within maxResultBatch, all of them in order; a lone answer goes alone.
func TestSendResultsSplits(t *testing.T) {
	var rs []*pb.ProbeResult
	for i := range 200 {
		rs = append(rs, &pb.ProbeResult{Id: uint64(i), Response: &pb.CheckResponse{Message: strings.Repeat("x", 60<<10)}})
	}
	rec := &batchRecorder{}
	if err := sendResults(rec, rs); err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) < 2 {
		t.Fatalf("200 answers of 60 KiB in %d batch", len(rec.sent))
	}
	next := uint64(0)
	for _, b := range rec.sent {
		if n := proto.Size(b); n > maxResultBatch {
			t.Errorf("a batch of %d bytes, over %d", n, maxResultBatch)
		}
		for _, r := range b.GetResults() {
			if r.GetId() != next {
				t.Fatalf("answer %d sent where %d was due", r.GetId(), next)
			}
			next++
		}
	}
	if next != 200 {
		t.Errorf("%d answers sent of 200", next)
	}
	rec.sent = nil
	if err := sendResults(rec, rs[:1]); err != nil || len(rec.sent) != 1 {
		t.Errorf("one answer: %d batches, %v", len(rec.sent), err)
	}
}

// TestProbeDeadline: a host that set a probe deadline (WithProbeDeadline) gives the plugin
// that deadline, not its own longer one, and on the lane and the stream takes an answer that
// came after it (the plugin's verdict, late because a process ran late); on Check calls,
// which carry one deadline, it stops waiting at the probe deadline.
func TestProbeDeadline(t *testing.T) {
	for _, tc := range []struct {
		name          string
		unary, stream bool
		noLane        bool
		lateTaken     bool
	}{{"lane", false, true, false, true}, {"stream", false, true, true, true}, {"unary", true, true, false, false}, {"fallback", false, false, false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := serveProbeImpl(t, tc.stream, tc.unary, tc.noLane)
			probe := func(name string) (CheckResponse, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return c.Check(WithProbeDeadline(ctx, time.Now().Add(2*time.Second)), CheckRequest{Name: name})
			}
			resp, err := probe("deadline")
			if err != nil || resp.Message != "2s" {
				t.Fatalf("the plugin's deadline: %+v, %v; want 2s, the probe's", resp, err)
			}
			resp, err = probe("late")
			switch {
			case tc.lateTaken && (err != nil || resp.Status != OK):
				t.Fatalf("a late answer: %+v, %v; want it taken", resp, err)
			case !tc.lateTaken && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(fmt.Sprint(err), "deadline"):
				t.Fatalf("a late answer on Check calls: %+v, %v; want the probe deadline's error", resp, err)
			}
		})
	}
}
