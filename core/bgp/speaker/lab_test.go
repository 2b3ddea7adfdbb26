package speaker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/internal/lab"
)

// vtysh runs FRR commands in f's daemons, in order ("configure terminal", "router bgp ..."),
// and returns what they print.
func vtysh(ctx context.Context, f *lab.FRR, cmds ...string) ([]byte, error) {
	args := []string{"--vty_socket", f.Dir()}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.CommandContext(ctx, "vtysh", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh %q on %s: %w: %s", cmds, f, err, out)
	}
	return out, nil
}

// startFRR runs zebra and bgpd (after bfdd when withBFD) with conf in nd until the test ends.
func startFRR(ctx context.Context, t *testing.T, nd *lab.Node, conf string, withBFD bool) *lab.FRR {
	t.Helper()
	ds := []lab.FRRDaemon{{Name: "bgpd", Conf: conf}}
	if withBFD {
		ds = append([]lab.FRRDaemon{{Name: "bfdd"}}, ds...)
	}
	f, err := nd.StartFRRDaemons(ctx, ds...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop() })
	return f
}

// waitFor polls ok until it holds or bound passes: then the test fails with the last detail.
func waitFor(t *testing.T, what string, bound time.Duration, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		done, detail := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, bound, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// syncBuffer is the log the test reads while the speaker writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func buildSpeaker(t *testing.T) string {
	t.Helper()
	bin, err := lab.BuildCommand(t.TempDir(), "vigil-bgp")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startSpeaker runs vigil-bgp in nd as the vrrp process does (go-plugin, gRPC, AutoMTLS),
// its log into logs.
func startSpeaker(t *testing.T, nd *lab.Node, bin string, logs *syncBuffer) bgppb.SpeakerClient {
	t.Helper()
	// ip netns exec execs into vigil-bgp: the speaker's parent is this test.
	cmd := exec.Command("ip", "netns", "exec", nd.NS, bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  bgppb.Handshake,
		Plugins:          bgppb.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start vigil-bgp: %v", err)
	}
	raw, err := rpc.Dispense(bgppb.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(bgppb.SpeakerClient)
}

func peerStatus(ctx context.Context, spk bgppb.SpeakerClient, addr string) (*bgppb.PeerStatus, error) {
	st, err := spk.Status(ctx, &bgppb.Empty{})
	if err != nil {
		return nil, err
	}
	for _, p := range st.Peers {
		if p.Address == addr {
			return p, nil
		}
	}
	return nil, errors.New("no peer " + addr + " in status")
}
