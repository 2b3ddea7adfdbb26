package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/internal/lane"
	"github.com/vigil-ha/vigil/sdk/internal/pb"
	"github.com/vigil-ha/vigil/sdk/internal/wire"
)

// The Probes stream (protocol 2). A unary gRPC call costs an HTTP/2 stream, two header
// frames, a trailer and a handful of goroutine hand-offs in each process; on this stream a
// probe is one small message each way, and probes that are waiting at the same time travel
// together in one message. That is what makes a probe through a plugin far cheaper than
// keepalived's fork and exec of a script.

// Probes serves the stream in the plugin: each probe runs in its own goroutine (a check may
// block on the network) under its own deadline, and results go back as they are ready.
func (s *server) Probes(stream pb.Check_ProbesServer) error { return s.serveProbes(stream) }

// probesServer is the plugin's end of a Probes stream or of a probe lane.
type probesServer interface {
	Context() context.Context
	Recv() (*pb.ProbeBatch, error)
	Send(*pb.ResultBatch) error
}

func (s *server) serveProbes(stream probesServer) error {
	out := newCombiner(func(rs []*pb.ProbeResult) error { return sendResults(stream, rs) })
	// Send must not be called once the handler has returned.
	defer out.close()
	ctx, cancelAll := context.WithCancel(stream.Context())
	defer cancelAll()
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{}
	for {
		batch, err := stream.Recv()
		if err != nil {
			// The host closed the stream or the connection: what still runs is for nobody.
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		for _, p := range batch.GetProbes() {
			var pctx context.Context
			var cancel context.CancelFunc
			if t := p.GetTimeoutNanos(); t > 0 {
				pctx, cancel = context.WithTimeout(ctx, time.Duration(t))
			} else {
				pctx, cancel = context.WithCancel(ctx)
			}
			id := p.GetId()
			mu.Lock()
			running[id] = cancel
			mu.Unlock()
			go func() {
				// The unary handler, so that both protocols convert, recover and report
				// errors the same way.
				resp, err := s.Check(pctx, &pb.CheckRequest{Name: p.GetName()})
				mu.Lock()
				delete(running, id)
				mu.Unlock()
				cancel()
				r := &pb.ProbeResult{Id: id, Response: resp}
				if err != nil {
					st := status.Convert(err)
					r.ErrorCode, r.Error = uint32(st.Code()), cutUTF8(validUTF8(st.Message()), maxResultMessage)
				}
				out.add(r)
			}()
		}
		// After the probes: a probe and its cancel may come in one batch.
		mu.Lock()
		for _, id := range batch.GetCancel() {
			if cancel := running[id]; cancel != nil {
				cancel()
			}
		}
		mu.Unlock()
	}
}

// maxResultBatch bounds one ResultBatch: half of what the host takes in one message
// (lane.MaxAnswer), so that a batch of answers of up to maxResultSize each never reaches it.
const maxResultBatch = lane.MaxAnswer / 2

// sendResults sends rs in as few batches as fit under maxResultBatch.
func sendResults(stream probesServer, rs []*pb.ProbeResult) error {
	for len(rs) > 0 {
		n, size := 0, 0
		for n < len(rs) {
			// Each entry of the repeated field adds its tag and length (at most 4 bytes
			// for an answer of up to maxResultSize).
			s := proto.Size(rs[n]) + 4
			if n > 0 && size+s > maxResultBatch {
				break
			}
			size += s
			n++
		}
		if err := stream.Send(&pb.ResultBatch{Results: rs[:n]}); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// errNoStream: the plugin negotiated protocol 2 or 3 but does not serve Probes (a non-Go plugin
// that claims a version it does not fully speak); the probe goes as a Check call instead.
var errNoStream = errors.New("plugin does not serve the Probes stream")

// mux is the host's end of the Probes stream: it gives each probe an id, sends it, and hands
// the result to the caller waiting for that id. The caller's own goroutine waits, on its own
// context: no goroutine or timer per probe. A stream that breaks fails the probes in flight
// on it, and the next probe opens a new one.
type mux struct {
	c           pb.CheckClient
	conn        *grpc.ClientConn
	mu          sync.Mutex
	cur         *probeStream
	unsupported bool
	noLane      bool // the plugin offers no probe lane, or its lane could not be reached
}

// probesClient is the host's end of a Probes stream or of a probe lane.
type probesClient interface {
	Send(*pb.ProbeBatch) error
	Recv() (*pb.ResultBatch, error)
}

// probeStream is one Probes stream and the probes waiting for an answer on it.
type probeStream struct {
	m       *mux
	stream  probesClient
	lane    bool // stream is a probe lane
	close   func()
	out     *combiner[sendItem]
	mu      sync.Mutex
	nextID  uint64
	waiting map[uint64]chan<- outcome
	err     error // why the stream broke; nil while it works
}

// sendItem is a probe to send or the id of one to cancel.
type sendItem struct {
	probe  *pb.Probe
	cancel uint64
}

// outcome is what a waiting probe gets: the plugin's result, or why the stream broke.
type outcome struct {
	res *pb.ProbeResult
	err error
}

func (m *mux) stream() (*probeStream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unsupported {
		return nil, errNoStream
	}
	if m.cur != nil {
		return m.cur, nil
	}
	st, cancel, err := m.open()
	if err != nil {
		return nil, err
	}
	_, isLane := st.(laneClient)
	ps := &probeStream{m: m, stream: st, lane: isLane, close: cancel, waiting: map[uint64]chan<- outcome{}}
	ps.out = newCombiner(func(items []sendItem) error {
		b := &pb.ProbeBatch{}
		for _, it := range items {
			if it.probe != nil {
				b.Probes = append(b.Probes, it.probe)
			} else {
				b.Cancel = append(b.Cancel, it.cancel)
			}
		}
		err := st.Send(b)
		if err != nil {
			// Whatever the reason, this stream is done: end it, so that the receiver fails
			// the probes waiting on it and the next probe opens a new one.
			cancel()
		}
		return err
	})
	m.cur = ps
	go ps.receive()
	return ps, nil
}

// open opens the probe lane if the plugin speaks protocol 3, else a Probes stream. Either lives as
// long as the plugin's connection, not as long as the probe that opened it. A lane that was
// offered but could not be reached (a plugin whose /tmp the host cannot see, say) is not
// tried again: the stream does the same work, only at a higher cost.
func (m *mux) open() (probesClient, func(), error) {
	if !m.noLane {
		c, err := m.dialLane()
		if err == nil {
			// The lane ends with the gRPC connection: a host that closes its plugin client
			// (the plugin may live on, in a test's process) must not leave it behind.
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				defer c.Close()
				for s := m.conn.GetState(); s != connectivity.Shutdown; s = m.conn.GetState() {
					if !m.conn.WaitForStateChange(ctx, s) {
						return
					}
				}
			}()
			return laneClient{c}, cancel, nil
		}
		m.noLane = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := m.c.Probes(ctx)
	if err != nil {
		cancel()
		return nil, nil, wire.Error(err)
	}
	return st, cancel, nil
}

// laneTimeout bounds asking for and connecting to a probe lane.
const laneTimeout = 5 * time.Second

func (m *mux) dialLane() (*lane.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), laneTimeout)
	defer cancel()
	o, err := m.c.ProbeLane(ctx, &pb.ProbeLaneRequest{})
	if err != nil {
		return nil, wire.Error(err)
	}
	return lane.Dial(ctx, lane.Offer{Network: o.GetNetwork(), Address: o.GetAddress(), Certificate: o.GetCertificate(), Token: o.GetToken()})
}

// laneClient and laneServer give a lane the shape of the two ends of a Probes stream.
type laneClient struct{ c *lane.Conn }

func (l laneClient) Send(b *pb.ProbeBatch) error { return l.c.Send(b) }

func (l laneClient) Recv() (*pb.ResultBatch, error) {
	rb := &pb.ResultBatch{}
	return rb, l.c.Recv(rb)
}

type laneServer struct {
	ctx context.Context
	c   *lane.Conn
}

func (l laneServer) Context() context.Context      { return l.ctx }
func (l laneServer) Send(rb *pb.ResultBatch) error { return l.c.Send(rb) }

func (l laneServer) Recv() (*pb.ProbeBatch, error) {
	b := &pb.ProbeBatch{}
	err := l.c.Recv(b)
	if err != nil {
		// The lane is unusable from here (a broken frame leaves no way to resync): close
		// it, so that a send blocked on a peer that stopped reading returns.
		l.c.Close()
	}
	return b, err
}

// ProbeLane offers a lane and serves it, in the background, once the host connects. The
// lane's probes live until the lane ends; the plugin process ends with its host.
func (s *server) ProbeLane(ctx context.Context, _ *pb.ProbeLaneRequest) (*pb.ProbeLaneResponse, error) {
	ln, o, err := lane.Listen(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"))
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	go func() {
		c, err := ln.Accept(context.Background())
		if err != nil {
			slog.Warn("probe lane not used", "err", err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer c.Close()
		if err := s.serveProbes(laneServer{ctx: ctx, c: c}); err != nil && !errors.Is(err, net.ErrClosed) {
			slog.Debug("probe lane ended", "err", err)
		}
	}()
	return &pb.ProbeLaneResponse{Network: o.Network, Address: o.Address, Certificate: o.Certificate, Token: o.Token}, nil
}

// check runs one probe on the stream.
func (m *mux) check(ctx context.Context, req CheckRequest) (CheckResponse, error) {
	if err := ctx.Err(); err != nil {
		return CheckResponse{}, err
	}
	if !utf8.ValidString(req.Name) {
		// It could not be encoded, and would take the probes sent with it down too.
		return CheckResponse{}, fmt.Errorf("check name %q is not UTF-8", req.Name)
	}
	ps, err := m.stream()
	if err != nil {
		return CheckResponse{}, err
	}
	var timeout time.Duration
	if dl, ok := probeDeadline(ctx); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return CheckResponse{}, context.DeadlineExceeded
		}
	}
	ch := make(chan outcome, 1)
	ps.mu.Lock()
	if ps.err != nil {
		err := ps.err
		ps.mu.Unlock()
		return CheckResponse{}, err
	}
	ps.nextID++
	id := ps.nextID
	ps.waiting[id] = ch
	ps.mu.Unlock()
	ps.out.add(sendItem{probe: &pb.Probe{Id: id, Name: req.Name, TimeoutNanos: int64(timeout)}})
	select {
	case o := <-ch:
		if o.err != nil {
			return CheckResponse{}, o.err
		}
		r := o.res
		if r.GetError() != "" || r.GetErrorCode() != 0 {
			return CheckResponse{}, wire.Error(status.Error(codes.Code(r.GetErrorCode()), r.GetError()))
		}
		if r.GetResponse() == nil {
			// A plugin written without this SDK may send that; it once took the host down
			// with a nil pointer.
			return CheckResponse{}, &sdk.PluginError{Msg: "answered a probe with neither a result nor an error (a bug in the plugin)"}
		}
		return fromResponse(r.GetResponse()), nil
	case <-ctx.Done():
		ps.mu.Lock()
		_, pending := ps.waiting[id]
		delete(ps.waiting, id)
		ps.mu.Unlock()
		if pending {
			// Tell the plugin to stop the probe, so that a check that honours its context
			// frees what it holds now rather than at its own deadline.
			ps.out.add(sendItem{cancel: id})
		}
		return CheckResponse{}, ctx.Err()
	}
}

// receive hands each result to its caller until the stream breaks, then fails every probe
// still waiting: a plugin that died takes its in-flight probes with it at once.
func (ps *probeStream) receive() {
	for {
		rb, err := ps.stream.Recv()
		if err != nil {
			ps.broke(err)
			return
		}
		ps.mu.Lock()
		for _, r := range rb.GetResults() {
			if ch := ps.waiting[r.GetId()]; ch != nil {
				delete(ps.waiting, r.GetId())
				ch <- outcome{res: r}
			}
		}
		ps.mu.Unlock()
	}
}

func (ps *probeStream) broke(err error) {
	m := ps.m
	m.mu.Lock()
	if m.cur == ps {
		m.cur = nil
	}
	if status.Code(err) == codes.Unimplemented {
		m.unsupported = true
	}
	m.mu.Unlock()
	ps.close()
	ps.out.close()
	var reason error
	switch {
	case ps.lane:
		// A lane has no orderly end but the plugin's exit.
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		reason = fmt.Errorf("%w: probe lane: %v", sdk.ErrUnavailable, err)
	case errors.Is(err, io.EOF):
		reason = fmt.Errorf("plugin ended the probe stream: %w", io.ErrUnexpectedEOF)
	case status.Code(err) == codes.Unimplemented:
		reason = errNoStream
	default:
		reason = wire.Error(err)
	}
	ps.mu.Lock()
	ps.err = reason
	waiting := ps.waiting
	ps.waiting = nil
	ps.mu.Unlock()
	for _, ch := range waiting {
		ch <- outcome{err: reason}
	}
}

// combiner sends from many goroutines on one stream through one sender goroutine. add only
// queues the item and wakes the sender; the sender first yields (runtime.Gosched), so that
// every goroutine that is ready to run queues its item before the send: the other checks of
// an aligned tick, the other results of a batch. They then travel in one message, which
// costs one write here and one wake-up of the peer instead of one of each per probe. With
// GOMAXPROCS=1 (vigil's check process and plugins unless set otherwise) waking the sender
// is a switch on the same thread; alone, a probe pays only that switch. A send blocks when
// the peer stops reading (a full socket or HTTP/2 window); adds keep queueing meanwhile,
// and the probes behind them fail at their deadlines.
type combiner[T any] struct {
	send func([]T) error
	wake chan struct{} // holds a token while items wait for the sender
	quit chan struct{} // closed by close
	done chan struct{} // closed when the sender has returned
	once sync.Once
	mu   sync.Mutex
	next []T
	err  error // the first failed send, or errClosed: nothing more is sent
}

var errClosed = errors.New("stream closed")

func newCombiner[T any](send func([]T) error) *combiner[T] {
	c := &combiner[T]{send: send, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// add queues item for the sender.
func (c *combiner[T]) add(item T) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return // the stream is over: whoever reads it fails what still waits
	}
	c.next = append(c.next, item)
	first := len(c.next) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (c *combiner[T]) run() {
	defer close(c.done)
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
		runtime.Gosched()
		c.mu.Lock()
		items, err := c.next, c.err
		c.next = nil
		c.mu.Unlock()
		if err != nil {
			return
		}
		if len(items) == 0 {
			continue
		}
		if err := c.send(items); err != nil {
			c.mu.Lock()
			if c.err == nil {
				c.err = err
			}
			c.mu.Unlock()
			return
		}
	}
}

// close stops all sends and waits for one under way to end.
func (c *combiner[T]) close() {
	c.mu.Lock()
	if c.err == nil {
		c.err = errClosed
	}
	c.mu.Unlock()
	c.once.Do(func() { close(c.quit) })
	<-c.done
}
