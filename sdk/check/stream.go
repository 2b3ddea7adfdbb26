package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
func (s *server) Probes(stream pb.Check_ProbesServer) error {
	out := newCombiner(func(rs []*pb.ProbeResult) error { return stream.Send(&pb.ResultBatch{Results: rs}) })
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
					r.ErrorCode, r.Error = uint32(st.Code()), validUTF8(st.Message())
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

// errNoStream: the plugin negotiated protocol 2 but does not serve Probes (a non-Go plugin
// that claims a version it does not fully speak); the probe goes as a Check call instead.
var errNoStream = errors.New("plugin does not serve the Probes stream")

// mux is the host's end of the Probes stream: it gives each probe an id, sends it, and hands
// the result to the caller waiting for that id. The caller's own goroutine waits, on its own
// context: no goroutine or timer per probe. A stream that breaks fails the probes in flight
// on it, and the next probe opens a new one.
type mux struct {
	c           pb.CheckClient
	mu          sync.Mutex
	cur         *probeStream
	unsupported bool
}

// probeStream is one Probes stream and the probes waiting for an answer on it.
type probeStream struct {
	m       *mux
	stream  pb.Check_ProbesClient
	close   context.CancelFunc
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
	// The stream lives as long as the connection, not as long as the probe that opened it.
	ctx, cancel := context.WithCancel(context.Background())
	st, err := m.c.Probes(ctx)
	if err != nil {
		cancel()
		return nil, wire.Error(err)
	}
	ps := &probeStream{m: m, stream: st, close: cancel, waiting: map[uint64]chan<- outcome{}}
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
	if dl, ok := ctx.Deadline(); ok {
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

// combiner sends from many goroutines on one stream, on the calling goroutine, which saves a
// goroutine hand-off per message: the caller that finds no send under way sends what is
// queued, and keeps sending what others queue meanwhile, all of it in one message; they
// return at once. A send blocks only when the peer has left a megabyte unread (the HTTP/2
// flow-control window): a plugin that stops reading is killed after the first probe that
// passes its deadline, and the host always reads.
type combiner[T any] struct {
	send func([]T) error
	mu   sync.Mutex
	idle sync.Cond // signalled when busy turns false
	next []T
	busy bool
	err  error // the first failed send, or errClosed: nothing more is sent
}

var errClosed = errors.New("stream closed")

func newCombiner[T any](send func([]T) error) *combiner[T] {
	c := &combiner[T]{send: send}
	c.idle.L = &c.mu
	return c
}

// add queues item and sends unless another goroutine is sending.
func (c *combiner[T]) add(item T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return // the stream is over: whoever reads it fails what still waits
	}
	c.next = append(c.next, item)
	if c.busy {
		return
	}
	c.busy = true
	for len(c.next) > 0 && c.err == nil {
		items := c.next
		c.next = nil
		c.mu.Unlock()
		err := c.send(items)
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
	}
	c.busy = false
	c.idle.Broadcast()
}

// close stops all sends and waits for one under way to end.
func (c *combiner[T]) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = errClosed
	}
	for c.busy {
		c.idle.Wait()
	}
}
