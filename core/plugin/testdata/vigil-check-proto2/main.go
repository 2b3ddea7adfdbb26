// Command vigil-check-proto2 stands for a check plugin built with a future SDK that speaks
// only protocol 2: the host must refuse it with a clear message.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

func main() {
	hs := sdk.Handshake()
	hs.ProtocolVersion = 2
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{2: {"check": &check.Plugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
