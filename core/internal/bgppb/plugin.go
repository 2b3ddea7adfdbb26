package bgppb

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is what the vrrp process and vigil-bgp agree on before they talk. The cookie is no
// secret: it only makes running vigil-bgp by hand fail with go-plugin's clear message.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "VIGIL_BGP_SPEAKER",
	MagicCookieValue: "the-vrrp-process-started-me",
}

// PluginName is the name the speaker is served and dispensed under.
const PluginName = "speaker"

// Plugin is the go-plugin glue: in vigil-bgp it serves Impl, in the vrrp process it dispenses
// a SpeakerClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl SpeakerServer
}

func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	RegisterSpeakerServer(s, p.Impl)
	return nil
}

func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewSpeakerClient(c), nil
}

// PluginSet is what both sides name.
func PluginSet(impl SpeakerServer) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &Plugin{Impl: impl}}
}
