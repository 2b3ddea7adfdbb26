// Command vigil-bgp is vigil's BGP speaker (core/bgp/speaker) as a go-plugin plugin: the vrrp
// process starts it from the plugin directory when the configuration has a bgp block and
// drives it over gRPC. It is a binary of its own so that GoBGP is never linked into vigil.
// Run by hand it prints go-plugin's message and exits.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/bgp/speaker"
)

func main() {
	// JSON on stderr: go-plugin's host parses it into the vrrp process's log.
	speaker.Serve(hclog.New(&hclog.LoggerOptions{
		Name: "vigil-bgp", Level: hclog.Info, JSONFormat: true, Output: os.Stderr,
	}))
}
