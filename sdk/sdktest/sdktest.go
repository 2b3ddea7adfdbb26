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
// will see: the same errors, the same dropped fields. go-plugin's and the plugin's log lines
// are shown with go test -v, or when the test failed; otherwise they are dropped.
package sdktest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

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
	t.Helper()
	log := newPluginLog(t)
	logger := log.logger()
	// go-plugin's test mode: the plugin is served in this process on a private socket and the
	// host attaches to it, both ends logging to log. (go-plugin's TestPluginGRPCConn would be
	// shorter, but logs every connection's end to stderr at debug level, unasked.)
	ctx, cancel := context.WithCancel(context.Background())
	attach := make(chan *plugin.ReattachConfig, 1)
	served := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: sdk.Handshake(),
		Plugins:         plugin.PluginSet{string(kind): p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, sdk.GRPCServerOptions()...)...)
		},
		Logger: logger,
		Test:   &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: attach, CloseCh: served},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-attach:
	case <-served:
		cancel()
		t.Fatalf("sdktest: serving the %s plugin in process failed (its log follows on failure)", kind)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		Plugins:          plugin.PluginSet{string(kind): p},
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		Logger:           logger,
	})
	// Cleanups run last first: the client goes, then the server, then the log is settled.
	t.Cleanup(log.finish)
	t.Cleanup(func() { cancel(); <-served })
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("sdktest: connect to the %s plugin in process: %v", kind, err)
	}
	raw, err := rpc.Dispense(string(kind))
	if err != nil {
		t.Fatalf("sdktest: dispense %s plugin: %v", kind, err)
	}
	return raw
}

// LaunchCheck starts the check plugin binary at path the way vigil does (handshake, protocol
// negotiation, mutual TLS) and returns the host's view of it. The plugin's log goes to the
// test log with -v or when the test failed; the process is killed when the test ends. It is stricter than vigil on purpose: a
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
	log := newPluginLog(t)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: set,
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		StartTimeout:     30 * time.Second,
		Logger:           log.logger(),
	})
	t.Cleanup(log.finish) // after Kill: the log holds the plugin's last lines
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

// pluginLog holds what go-plugin and the plugin log during a test: about 60 debug lines per
// plugin (handshake, connections, the plugin's own stderr), which hide the test's own lines.
// With go test -v they go to the test log as they come; otherwise they are kept and shown
// only when the test failed, where they help.
type pluginLog struct {
	t    testing.TB
	live bool

	mu   sync.Mutex
	buf  bytes.Buffer
	done bool // the test is over: t.Log would panic
}

func newPluginLog(t testing.TB) *pluginLog {
	return &pluginLog{t: t, live: testing.Verbose()}
}

func (l *pluginLog) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "sdktest", Output: l, Level: hclog.Debug})
}

func (l *pluginLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.done:
	case l.live:
		l.t.Log(strings.TrimRight(string(b), "\n"))
	default:
		l.buf.Write(b)
	}
	return len(b), nil
}

// finish shows the kept lines if the test failed, and drops what comes after.
func (l *pluginLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if !l.live && l.t.Failed() && l.buf.Len() > 0 {
		l.t.Logf("sdktest: the plugin's log (shown because the test failed):\n%s", l.buf.String())
	}
	l.buf.Reset()
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
