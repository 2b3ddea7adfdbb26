// Command vigil-check-future stands for a check plugin built with a future SDK that speaks
// only a protocol newer than this vigil's: the host must refuse it with a clear message.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

func main() {
	hs := sdk.Handshake()
	hs.ProtocolVersion = sdk.ProtocolVersion + 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{int(hs.ProtocolVersion): {"check": &check.Plugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
