// Package sdktest runs vigil plugins from Go tests, through the same gRPC boundary vigil uses:
//
//	func TestHello(t *testing.T) {
//		c := sdktest.ServeCheck(t, &Hello{})            // in this process
//		// or: c := sdktest.LaunchCheck(t, sdktest.Build(t, "."))  // the built binary
//		if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: ...}); err != nil { ... }
//		resp, err := c.Check(ctx, check.CheckRequest{Name: "chk"})
//	}
//
// Everything a plugin returns is converted to the wire and back, so a test sees what vigil
// will see: the same errors, the same dropped fields.
package sdktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// ServeCheck serves impl in this process over a real gRPC connection and returns the
// host's view of it. Both ends are closed when the test ends.
func ServeCheck(t testing.TB, impl check.Checker) check.Checker {
	t.Helper()
	return inProcess(t, sdk.KindCheck, &check.Plugin{Impl: impl}).(check.Checker)
}

// ServeNotifier serves impl in this process over a real gRPC connection and returns the
// host's view of it. Both ends are closed when the test ends.
func ServeNotifier(t testing.TB, impl notify.Notifier) notify.Notifier {
	t.Helper()
	return inProcess(t, sdk.KindNotify, &notify.Plugin{Impl: impl}).(notify.Notifier)
}

func inProcess(t testing.TB, kind sdk.Kind, p plugin.Plugin) any {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{string(kind): p})
	// Closing the client shuts the server down through go-plugin's controller, as in a plugin
	// process; stopping the server as well would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(string(kind))
	if err != nil {
		t.Fatalf("sdktest: dispense %s plugin: %v", kind, err)
	}
	return raw
}

// LaunchCheck starts the check plugin binary at path the way vigil does (handshake, protocol
// negotiation, mutual TLS) and returns the host's view of it. The plugin's log goes to the
// test log; the process is killed when the test ends. It is stricter than vigil on purpose: a
// line the plugin prints on stdout before its handshake (say, in an init function) fails the
// start here, while vigil skips and logs it, so that an author sees the noise in tests.
func LaunchCheck(t testing.TB, path string) check.Checker {
	t.Helper()
	return launch(t, path, sdk.KindCheck, check.VersionedPlugins()).(check.Checker)
}

// LaunchNotifier is LaunchCheck for notify plugins.
func LaunchNotifier(t testing.TB, path string) notify.Notifier {
	t.Helper()
	return launch(t, path, sdk.KindNotify, notify.VersionedPlugins()).(notify.Notifier)
}

func launch(t testing.TB, path string, kind sdk.Kind, set map[int]plugin.PluginSet) any {
	t.Helper()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: set,
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		StartTimeout:     30 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "sdktest", Output: testWriter{t}, Level: hclog.Debug,
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest: start %s: %v", path, err)
	}
	raw, err := rpc.Dispense(string(kind))
	if err != nil {
		t.Fatalf("sdktest: %s is not a %s plugin: %v", path, kind, err)
	}
	return raw
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// Build compiles the main package pkg (a directory, or an import path) with `go build` into
// a temporary directory and returns the binary's path. Use it with LaunchCheck to test the
// binary vigil will run: Build(t, ".") in a plugin's own package.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plugin")
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdktest: go build %s: %v", pkg, err)
	}
	return out
}
