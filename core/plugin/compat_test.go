package plugin

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// TestCompatibilityMatrix proves the combinations sdk/README.md's compatibility promise names:
// plugins speaking an older protocol under today's host, and plugins built with today's SDK
// under hosts that offer only older protocols, as vigil releases of protocol 1 and 2 did.
//
// An older host is today's host code offering only some versions of its plugin set (the set
// of each version is the code that version's host ran: Check calls for 1, the Probes stream
// for 2); an older plugin is testdata/vigil-check-old serving one version only (vigil-check-v1,
// vigil-check-v2). Each cell starts the plugin, checks the version the handshake picked (the
// newest both speak) and runs Describe, Configure and three probes or a notification; a cell
// with no common version must be refused. TestProtocolVersions runs the older plugins through
// the Host type itself.
func TestCompatibilityMatrix(t *testing.T) {
	hosts := [][]int{{1}, {1, 2}, {1, 2, 3}}
	if sdk.ProtocolVersion != 3 || sdk.MinProtocolVersion != 1 {
		t.Fatalf("the SDK speaks %d to %d: add the new version's host and plugin to this matrix and to sdk/README.md's table",
			sdk.MinProtocolVersion, sdk.ProtocolVersion)
	}
	plugins := []struct {
		exe    string
		kind   sdk.Kind
		speaks []int
	}{
		{"vigil-check-v1", sdk.KindCheck, []int{1}},
		{"vigil-check-v2", sdk.KindCheck, []int{2}},
		{"vigil-check-test", sdk.KindCheck, []int{1, 2, 3}},
		{"vigil-check-hello", sdk.KindCheck, []int{1, 2, 3}},
		{"vigil-notify-test", sdk.KindNotify, []int{1, 2, 3}},
	}
	for _, offers := range hosts {
		for _, pl := range plugins {
			want := 0 // the newest version both speak; 0: none
			for _, v := range offers {
				if slices.Contains(pl.speaks, v) {
					want = v
				}
			}
			t.Run(fmt.Sprintf("host%v/%s", strings.Trim(fmt.Sprint(offers), "[]"), pl.exe), func(t *testing.T) {
				t.Parallel()
				raw, got, err := startOffering(t, pl.exe, pl.kind, offers)
				if want == 0 {
					if err == nil {
						t.Fatalf("started with protocol %d; want it refused: the plugin speaks %v, the host offers %v", got, pl.speaks, offers)
					}
					// The host explains go-plugin's refusal in vigil's terms (startError).
					if err := startError(pl.exe, err); !errors.Is(err, ErrProtocol) {
						t.Fatalf("refused for another reason than the version: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("negotiated protocol %d, want %d (plugin speaks %v, host offers %v)", got, want, pl.speaks, offers)
				}
				ctx := ctxFor(t, 30*time.Second)
				switch c := raw.(type) {
				case check.Checker:
					info, err := c.Describe(ctx)
					if err != nil || info.Kind != sdk.KindCheck {
						t.Fatalf("Describe: %+v, %v", info, err)
					}
					var params []check.Param
					name := "chk"
					switch info.Name {
					case "test":
						params = []check.Param{{Key: "mode", Values: []string{"ok"}}}
					case "hello":
						params = []check.Param{{Key: "address", Values: []string{greeter(t, "220 ready")}}, {Key: "expect", Values: []string{"220"}}}
					}
					if _, err := c.Configure(ctx, check.ConfigureRequest{Name: name, Params: params}); err != nil {
						t.Fatalf("Configure: %v", err)
					}
					for range 3 {
						resp, err := c.Check(ctx, check.CheckRequest{Name: name})
						if err != nil || resp.Status != check.OK {
							t.Fatalf("Check: %+v, %v", resp, err)
						}
					}
				case notify.Notifier:
					file := filepath.Join(t.TempDir(), "events")
					if _, err := c.Configure(ctx, notify.ConfigureRequest{Name: "n", Params: []notify.Param{{Key: "file", Values: []string{file}}}}); err != nil {
						t.Fatalf("Configure: %v", err)
					}
					ev := notify.Event{Node: "node1", Instance: "VI_1", OldState: "BACKUP", NewState: "MASTER", Priority: 100, Time: time.Unix(0, 0)}
					if _, err := c.Notify(ctx, notify.NotifyRequest{Name: "n", Event: ev}); err != nil {
						t.Fatalf("Notify: %v", err)
					}
					b, err := os.ReadFile(file)
					if err != nil || !strings.HasPrefix(string(b), "node1 VI_1 BACKUP>MASTER 100") {
						t.Fatalf("the notifier wrote %q, %v", b, err)
					}
				default:
					t.Fatalf("dispensed %T", raw)
				}
			})
		}
	}
}

// startOffering starts the plugin exe from pluginDir under a host that offers only the
// protocol versions in offers, and returns what it dispensed and the version negotiated.
func startOffering(t *testing.T, exe string, kind sdk.Kind, offers []int) (any, int, error) {
	t.Helper()
	all := check.VersionedPlugins()
	if kind == sdk.KindNotify {
		all = notify.VersionedPlugins()
	}
	set := map[int]goplugin.PluginSet{}
	for _, v := range offers {
		s, ok := all[v]
		if !ok {
			t.Fatalf("the SDK's host has no plugin set for protocol %d (it has %v)", v, slices.Sorted(maps.Keys(all)))
		}
		set[v] = s
	}
	hs := sdk.Handshake()
	hs.ProtocolVersion = uint(slices.Max(offers))
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: set,
		Cmd:              exec.Command(filepath.Join(pluginDir, exe)),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		StartTimeout:     30 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Output: &syncWriter{t: t}, Level: hclog.Info}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		return nil, 0, err
	}
	raw, err := rpc.Dispense(string(kind))
	if err != nil {
		return nil, 0, err
	}
	return raw, client.NegotiatedVersion(), nil
}

// greeter listens on loopback and greets every connection with line, for vigil-check-hello.
func greeter(t *testing.T, line string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(line + "\r\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}
