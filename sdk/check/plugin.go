package check

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/internal/pb"
	"github.com/vigil-ha/vigil/sdk/internal/wire"
)

// Plugin is the go-plugin glue of a check plugin, for hosts and test harnesses: in the plugin
// process it serves Impl; in the host it dispenses a Checker that calls the plugin.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Checker
	// unary makes the host's Checker send each probe as its own Check call (protocol 1)
	// instead of on the Probes stream (protocol 2) or the probe lane (protocol 3, the zero
	// value); noLane keeps it on the stream.
	unary, noLane bool
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// VersionedPlugins is the plugin set a host offers go-plugin, by protocol version: a plugin
// that speaks only protocol 1 gets its probes as Check calls.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1:                   {string(sdk.KindCheck): &Plugin{unary: true}},
		2:                   {string(sdk.KindCheck): &Plugin{noLane: true}},
		sdk.ProtocolVersion: {string(sdk.KindCheck): &Plugin{}},
	}
}

// GRPCServer registers Impl.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterCheckServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Checker that calls the plugin over c.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	cl := &client{c: pb.NewCheckClient(c)}
	if !p.unary {
		cl.mux = &mux{c: cl.c, conn: c, noLane: p.noLane}
	}
	return cl, nil
}

func serve(impl Checker) { wire.Serve(sdk.KindCheck, &Plugin{Impl: impl}) }

// server adapts a Checker to the generated gRPC service.
type server struct {
	pb.UnimplementedCheckServer
	impl Checker
}

func (s *server) Describe(ctx context.Context, _ *pb.DescribeRequest) (_ *pb.DescribeResponse, err error) {
	defer wire.Recover(&err)
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, wire.Status(ctx, err, codes.Unknown)
	}
	return wire.Info(sdk.KindCheck, info), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (_ *pb.ConfigureResponse, err error) {
	defer wire.Recover(&err)
	resp, err := s.impl.Configure(ctx, wire.FromConfigureRequest(req))
	if err != nil {
		return nil, wire.Status(ctx, err, codes.InvalidArgument)
	}
	return &pb.ConfigureResponse{Warnings: resp.Warnings}, nil
}

func (s *server) Check(ctx context.Context, req *pb.CheckRequest) (_ *pb.CheckResponse, err error) {
	defer wire.Recover(&err)
	resp, err := s.impl.Check(ctx, CheckRequest{Name: req.GetName()})
	if err != nil {
		return nil, wire.Status(ctx, err, codes.Unknown)
	}
	out := &pb.CheckResponse{Status: toStatus(resp.Status), Message: validUTF8(resp.Message), Metrics: resp.Metrics}
	for k, v := range resp.Metrics {
		if !utf8.ValidString(k) {
			out.Metrics = maps.Clone(resp.Metrics)
			delete(out.Metrics, k)
			out.Metrics[validUTF8(k)] = v
		}
	}
	if resp.Weight != nil {
		// Clamped, not truncated: a weight past int32 would otherwise wrap into a valid one
		// (2^32+10 into 10); clamped, it stays out of range and the host refuses it.
		w := int32(max(min(*resp.Weight, math.MaxInt32), math.MinInt32))
		out.Weight = &w
	}
	fitResponse(out)
	return out, nil
}

// What one answer may take on the wire. The host takes at most lane.MaxAnswer in one
// message, and on the Probes stream and the lane answers that are ready at once travel
// together (see serveProbes): an answer beyond that would break the stream and fail every
// probe in flight on it, and a unary answer beyond it fails its probe. The host keeps far
// less of a message anyway (1 KiB, see CONTRIBUTING.md), so a plugin that answers a page
// of text or a metric per table loses nothing it could have shown.
const (
	maxResultMessage = 64 << 10  // bytes of Message sent; the rest is cut
	maxResultSize    = 256 << 10 // bytes of one encoded answer
)

// fitResponse cuts an answer larger than maxResultSize: its message to maxResultMessage
// bytes (on a character boundary), then its metrics to those, in name order, that fit. The
// status and the weight, which decide, always stay.
func fitResponse(r *pb.CheckResponse) {
	if proto.Size(r) <= maxResultSize {
		return
	}
	r.Message = cutUTF8(r.Message, maxResultMessage)
	size := proto.Size(r)
	if size <= maxResultSize {
		return
	}
	names := slices.Sorted(maps.Keys(r.Metrics))
	all := r.Metrics
	r.Metrics = nil
	size = proto.Size(r)
	kept := map[string]float64{}
	for _, k := range names {
		// An entry: its tag and length, the name's tag, length and bytes, the value's tag
		// and 8 bytes.
		n := len(k) + 20
		if size+n > maxResultSize {
			continue // a shorter name after it may still fit
		}
		kept[k] = all[k]
		size += n
	}
	r.Metrics = kept
}

// cutUTF8 returns at most n bytes of s, not ending inside a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// validUTF8 makes s encodable: protobuf refuses strings that are not UTF-8, and a message often
// quotes what a service sent (a greeting, an error) byte for byte.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// client is the host's Checker: each call is one gRPC call to the plugin, except probes on
// protocol 2 and later, which go through mux.
type client struct {
	c   pb.CheckClient
	mux *mux // nil on protocol 1
}

var _ Checker = (*client)(nil)

func (c *client) Describe(ctx context.Context) (Info, error) {
	resp, err := c.c.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Info{}, wire.Error(err)
	}
	return wire.FromInfo(resp), nil
}

func (c *client) Configure(ctx context.Context, req ConfigureRequest) (ConfigureResponse, error) {
	resp, err := c.c.Configure(ctx, wire.ConfigureRequest(req))
	if err != nil {
		return ConfigureResponse{}, wire.Error(err)
	}
	return ConfigureResponse{Warnings: resp.GetWarnings()}, nil
}

func (c *client) Check(ctx context.Context, req CheckRequest) (CheckResponse, error) {
	if c.mux != nil {
		resp, err := c.mux.check(ctx, req)
		if !errors.Is(err, errNoStream) {
			return resp, err
		}
	}
	if dl, ok := probeDeadline(ctx); ok {
		// A unary call carries one deadline, the plugin's: the host waits no longer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	resp, err := c.c.Check(ctx, &pb.CheckRequest{Name: req.Name})
	if err != nil {
		return CheckResponse{}, wire.Error(err)
	}
	return fromResponse(resp), nil
}

func fromResponse(resp *pb.CheckResponse) CheckResponse {
	out := CheckResponse{Status: fromStatus(resp.GetStatus()), Message: resp.GetMessage(), Metrics: resp.GetMetrics()}
	if resp != nil && resp.Weight != nil {
		w := int(resp.GetWeight())
		out.Weight = &w
	}
	return out
}

func toStatus(s Status) pb.Status {
	switch s {
	case OK:
		return pb.Status_STATUS_OK
	case Warning:
		return pb.Status_STATUS_WARNING
	case Critical:
		return pb.Status_STATUS_CRITICAL
	}
	return pb.Status_STATUS_UNKNOWN
}

// fromStatus keeps a status that does not exist (a plugin written without this SDK may send
// one) as it came, outside Unknown..Critical: it is not Healthy, and the host can say what
// the plugin sent instead of taking it for Unknown.
func fromStatus(s pb.Status) Status {
	switch s {
	case pb.Status_STATUS_UNKNOWN:
		return Unknown
	case pb.Status_STATUS_OK:
		return OK
	case pb.Status_STATUS_WARNING:
		return Warning
	case pb.Status_STATUS_CRITICAL:
		return Critical
	}
	return Status(s) // the wire's numbers are the SDK's
}
