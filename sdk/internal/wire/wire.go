// Package wire is the part of the SDK that both plugin kinds share below their public API:
// conversions between the plain SDK types and the generated protocol types, the mapping of
// errors to gRPC status codes and back, and the process set-up behind Serve.
package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/internal/pb"
)

// Serve runs this process as a plugin of kind until the host stops it. The plugin's log/slog
// default logger writes hclog-compatible JSON to stderr, so its lines reach vigil's log with
// their level and fields. The same server serves every protocol version the SDK speaks: a
// newer version only adds calls.
func Serve(kind sdk.Kind, p plugin.Plugin) {
	slog.SetDefault(slog.New(NewLogHandler(os.Stderr)))
	limitProcs()
	set := map[int]plugin.PluginSet{}
	for v := sdk.MinProtocolVersion; v <= sdk.ProtocolVersion; v++ {
		set[v] = plugin.PluginSet{string(kind): p}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: set,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, sdk.GRPCServerOptions()...)...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Output: os.Stderr, JSONFormat: true, Level: hclog.Warn, Name: "sdk",
		}),
	})
}

// defaultProcs is GOMAXPROCS as the runtime set it, before main could change it.
var defaultProcs = runtime.GOMAXPROCS(0)

// limitProcs runs the plugin's Go code on one thread at a time, unless the plugin chose
// otherwise (runtime.GOMAXPROCS before Serve, or the GOMAXPROCS variable). A check spends its
// time waiting on the network, so it loses nothing; but with several Ps every hand-off between
// goroutines (gRPC's reader and writer, the probe, the reply) may wake another thread, and
// the idle threads spin looking for work: on the benchmark that is 40% of a probe's CPU time
// in the plugin (see bench/pluginbench).
func limitProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == defaultProcs {
		runtime.GOMAXPROCS(1)
	}
}

// NewLogHandler is a slog handler whose JSON lines go-plugin's host parses as hclog lines.
func NewLogHandler(w *os.File) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				return slog.String("@level", levelName(a.Value.Any()))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			}
			return a
		},
	})
}

func levelName(v any) string {
	l, _ := v.(slog.Level)
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// Params converts SDK params to the wire.
func Params(ps []sdk.Param) []*pb.Param {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*pb.Param, len(ps))
	for i, p := range ps {
		out[i] = &pb.Param{Key: p.Key, Values: p.Values, Block: Params(p.Block)}
	}
	return out
}

// FromParams converts wire params to the SDK's.
func FromParams(ps []*pb.Param) []sdk.Param {
	if len(ps) == 0 {
		return nil
	}
	out := make([]sdk.Param, len(ps))
	for i, p := range ps {
		out[i] = sdk.Param{Key: p.GetKey(), Values: p.GetValues(), Block: FromParams(p.GetBlock())}
	}
	return out
}

// Info converts a plugin's description to the wire, filling in what the SDK knows.
func Info(kind sdk.Kind, in sdk.Info) *pb.DescribeResponse {
	out := &pb.DescribeResponse{
		Name: in.Name, Kind: string(kind), Version: in.Version,
		ProtocolVersion: sdk.ProtocolVersion, Description: in.Description,
	}
	for _, p := range in.Params {
		out.Params = append(out.Params, &pb.ParamSpec{
			Name: p.Name, Type: string(p.Type), Required: p.Required, Default: p.Default, Description: p.Description,
		})
	}
	return out
}

// FromInfo converts a description from the wire.
func FromInfo(in *pb.DescribeResponse) sdk.Info {
	out := sdk.Info{
		Name: in.GetName(), Kind: sdk.Kind(in.GetKind()), Version: in.GetVersion(),
		ProtocolVersion: int(in.GetProtocolVersion()), Description: in.GetDescription(),
	}
	for _, p := range in.GetParams() {
		out.Params = append(out.Params, sdk.ParamSpec{
			Name: p.GetName(), Type: sdk.ParamType(p.GetType()), Required: p.GetRequired(),
			Default: p.GetDefault(), Description: p.GetDescription(),
		})
	}
	return out
}

// ConfigureRequest converts a configure request to the wire.
func ConfigureRequest(r sdk.ConfigureRequest) *pb.ConfigureRequest {
	return &pb.ConfigureRequest{Name: r.Name, Params: Params(r.Params), ValidateOnly: r.ValidateOnly}
}

// FromConfigureRequest converts a configure request from the wire.
func FromConfigureRequest(r *pb.ConfigureRequest) sdk.ConfigureRequest {
	return sdk.ConfigureRequest{Name: r.GetName(), Params: FromParams(r.GetParams()), ValidateOnly: r.GetValidateOnly()}
}

// Status turns a plugin's error into a gRPC status: the context's own errors keep their
// meaning, anything else gets code with the plugin's message.
func Status(ctx context.Context, err error, code codes.Code) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

// Recover turns a panic in a plugin's method into an error for that call, so that one bad
// input does not take down every check the process serves. Use as defer Recover(&err).
func Recover(err *error) {
	if r := recover(); r != nil {
		slog.Error("plugin panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "plugin panicked: %v", r)
	}
}

// Error turns a gRPC error from a plugin back into a Go error: the plugin's message for the
// operator, matching context.DeadlineExceeded, context.Canceled or sdk.ErrUnavailable where
// that is what happened.
func Error(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w (%s)", context.DeadlineExceeded, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w (%s)", context.Canceled, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", sdk.ErrUnavailable, st.Message())
	}
	return &sdk.PluginError{Msg: st.Message()}
}
