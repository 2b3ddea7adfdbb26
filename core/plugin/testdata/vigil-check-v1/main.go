// Command vigil-check-v1 stands for a check plugin built with the first SDK, which speaks
// only protocol 1 (a Check call per probe, no Probes stream): the host must still run it.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

type v1 struct{}

func (v1) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "v1", Version: "0.1.0"}, nil
}

func (v1) Configure(context.Context, check.ConfigureRequest) (check.ConfigureResponse, error) {
	return check.ConfigureResponse{}, nil
}

func (v1) Check(_ context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	return check.CheckResponse{Status: check.OK, Message: req.Name, Metrics: map[string]float64{"pid": float64(os.Getpid())}}, nil
}

func main() {
	hs := sdk.Handshake()
	hs.ProtocolVersion = 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{1: {"check": &check.Plugin{Impl: v1{}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
