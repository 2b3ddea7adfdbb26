package notify

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/internal/pb"
	"github.com/vigil-ha/vigil/sdk/internal/wire"
)

// Plugin is the go-plugin glue of a notify plugin, for hosts and test harnesses: in the
// plugin process it serves Impl; in the host it dispenses a Notifier that calls the plugin.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Notifier
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// VersionedPlugins is the plugin set a host offers go-plugin, by protocol version. Notify
// calls are the same in every version.
func VersionedPlugins() map[int]plugin.PluginSet {
	set := map[int]plugin.PluginSet{}
	for v := sdk.MinProtocolVersion; v <= sdk.ProtocolVersion; v++ {
		set[v] = plugin.PluginSet{string(sdk.KindNotify): &Plugin{}}
	}
	return set
}

// GRPCServer registers Impl.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterNotifyServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Notifier that calls the plugin over c.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &client{c: pb.NewNotifyClient(c)}, nil
}

func serve(impl Notifier) { wire.Serve(sdk.KindNotify, &Plugin{Impl: impl}) }

type server struct {
	pb.UnimplementedNotifyServer
	impl Notifier
}

func (s *server) Describe(ctx context.Context, _ *pb.DescribeRequest) (_ *pb.DescribeResponse, err error) {
	defer wire.Recover(&err)
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, wire.Status(ctx, err, codes.Unknown)
	}
	return wire.Info(sdk.KindNotify, info), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (_ *pb.ConfigureResponse, err error) {
	defer wire.Recover(&err)
	resp, err := s.impl.Configure(ctx, wire.FromConfigureRequest(req))
	if err != nil {
		return nil, wire.Status(ctx, err, codes.InvalidArgument)
	}
	return &pb.ConfigureResponse{Warnings: resp.Warnings}, nil
}

func (s *server) Notify(ctx context.Context, req *pb.NotifyRequest) (_ *pb.NotifyResponse, err error) {
	defer wire.Recover(&err)
	e := req.GetEvent()
	ev := Event{
		Node: e.GetNode(), Instance: e.GetInstance(), Group: e.GetGroup(),
		OldState: e.GetOldState(), NewState: e.GetNewState(), Priority: int(e.GetPriority()),
		VIPs: e.GetVips(), VirtualServer: e.GetVirtualServer(), RealServer: e.GetRealServer(), Detail: e.GetDetail(),
	}
	if e.GetTime() != nil {
		ev.Time = e.GetTime().AsTime()
	}
	if _, err := s.impl.Notify(ctx, NotifyRequest{Name: req.GetName(), Event: ev}); err != nil {
		return nil, wire.Status(ctx, err, codes.Unknown)
	}
	return &pb.NotifyResponse{}, nil
}

type client struct{ c pb.NotifyClient }

var _ Notifier = (*client)(nil)

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

func (c *client) Notify(ctx context.Context, req NotifyRequest) (NotifyResponse, error) {
	e := req.Event
	pe := &pb.Event{
		Node: e.Node, Instance: e.Instance, Group: e.Group, OldState: e.OldState,
		NewState: e.NewState, Priority: int32(e.Priority), Vips: e.VIPs,
		VirtualServer: e.VirtualServer, RealServer: e.RealServer, Detail: e.Detail,
	}
	if !e.Time.IsZero() {
		pe.Time = timestamppb.New(e.Time)
	}
	if _, err := c.c.Notify(ctx, &pb.NotifyRequest{Name: req.Name, Event: pe}); err != nil {
		return NotifyResponse{}, wire.Error(err)
	}
	return NotifyResponse{}, nil
}
