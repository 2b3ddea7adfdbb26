// Command vigil-check-old stands for a check plugin built with an older SDK, which speaks only
// an older protocol: the host must still run it. The test builds it as vigil-check-v1 (a
// Check call per probe) and vigil-check-v2 (the Probes stream, no probe lane); the digit at
// the end of the executable's name is the protocol it speaks.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

type old struct{}

func (old) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "old", Version: "0.1.0"}, nil
}

func (old) Configure(context.Context, check.ConfigureRequest) (check.ConfigureResponse, error) {
	return check.ConfigureResponse{}, nil
}

func (old) Check(_ context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	return check.CheckResponse{Status: check.OK, Message: req.Name, Metrics: map[string]float64{"pid": float64(os.Getpid())}}, nil
}

func main() {
	name := filepath.Base(os.Args[0])
	v, err := strconv.Atoi(name[strings.LastIndexByte(name, 'v')+1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: name it vigil-check-vN, N the protocol to speak\n", name)
		os.Exit(1)
	}
	hs := sdk.Handshake()
	hs.ProtocolVersion = uint(v)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{v: {"check": &check.Plugin{Impl: old{}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
