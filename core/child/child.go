// Package child connects vigil's core process to its two children, the check and vrrp
// processes. A child is the vigil binary re-executed in a role and served with go-plugin over
// gRPC on a private unix socket; core is the go-plugin client. The protocol is in
// core/internal/childpb and is private to one vigil binary.
package child

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/vigil-ha/vigil/core/internal/childpb"
)

// Role names a child process.
type Role string

const (
	RoleVRRP  Role = "vrrp"
	RoleCheck Role = "check"
)

// Handshake keeps a child from being started by anything but its own core: the cookie is
// not a secret, it only makes running `vigil --role vrrp` by hand fail with a clear message.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "VIGIL_CHILD",
	MagicCookieValue: "core-started-me",
}

// Exit codes a child uses for problems that restarting cannot fix; core stops the daemon with
// the child's message instead of restarting it in a loop.
const (
	ExitConfig     = 78 // EX_CONFIG: the configuration cannot run
	ExitPermission = 77 // EX_NOPERM: a privilege is missing (not root, no CAP_NET_ADMIN ...)
)

// vrrpPlugin and checkPlugin are the go-plugin glue: the same type serves in the child and
// dispenses the gRPC client in core.
type vrrpPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv childpb.VRRPServer
}

func (p *vrrpPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	childpb.RegisterVRRPServer(s, p.srv)
	return nil
}

func (p *vrrpPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return childpb.NewVRRPClient(c), nil
}

type checkPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv childpb.CheckServer
}

func (p *checkPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	childpb.RegisterCheckServer(s, p.srv)
	return nil
}

func (p *checkPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return childpb.NewCheckClient(c), nil
}

// PluginSet is what core dispenses from a child.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{string(RoleVRRP): &vrrpPlugin{}, string(RoleCheck): &checkPlugin{}}
}

// server is what both children implement besides their gRPC service.
type server interface {
	// shutdown stops the role's work the graceful way (vrrp: resign and remove addresses).
	shutdown()
}

// Options are what core's flags tell a child.
type Options struct {
	// DontReleaseIPVS is --dont-release-ipvs: the check child leaves the kernel's IPVS
	// table as it is when it stops.
	DontReleaseIPVS bool
	// DontReleaseVRRP is --dont-release-vrrp: the vrrp child leaves the virtual addresses
	// and routes in place when it stops.
	DontReleaseVRRP bool
}

// Serve runs this process as the child in role until core stops it. It logs through log,
// whose output core reads and re-logs with the role as a field. SIGTERM (sent by core, or by
// the kernel when core dies: the parent-death signal) stops the work gracefully and exits.
func Serve(role Role, log hclog.Logger, o Options) {
	set := plugin.PluginSet{}
	var srv server
	switch role {
	case RoleVRRP:
		v := newVRRPServer(log, o)
		set[string(role)], srv = &vrrpPlugin{srv: v}, v
	case RoleCheck:
		limitCheckCaps(log)
		c := newCheckServer(log, o)
		set[string(role)], srv = &checkPlugin{srv: c}, c
	default:
		log.Error("unknown role", "asked", string(role))
		os.Exit(ExitConfig)
	}
	// When core dies, the kernel sends us SIGTERM (Pdeathsig) and our stderr, a pipe to core,
	// has no reader any more. A write to it would then kill the process with SIGPIPE, before
	// the vrrp child resigned and removed its addresses; ignored, the write just fails.
	signal.Ignore(syscall.SIGPIPE)
	// SIGHUP reaches the children too when an operator reloads with `killall -HUP vigil`
	// (as many do keepalived) or the terminal hangs up, and Go's default for it is to exit:
	// the vrrp child would die and leave its addresses to a backup. Reloads come from core;
	// here the signal is only logged. Caught rather than ignored: an ignored signal stays
	// ignored across exec, in the plugins and scripts that the children start.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	go func() {
		for range hups {
			log.Debug("SIGHUP ignored: core reloads the configuration and hands it to the children")
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() {
		<-sigs
		log.Info("stopping on SIGTERM")
		srv.shutdown()
		os.Exit(0)
	}()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         set,
		GRPCServer:      grpcServer,
		Logger:          log,
	})
}

// maxRequest bounds what a child takes in one message from core. Start and Reload carry the
// configuration's resolved text and the places of its lines: gRPC's default of 4 MiB would
// refuse a large configuration (the reader takes 64 MiB, and macros may make the resolved
// text longer still), and the child would then fail to start, again and again.
const maxRequest = 512 << 20

// grpcServer is a child's gRPC server: go-plugin's default, taking requests up to maxRequest.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxRequest))...)
}
