package speaker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
	"github.com/vigil-ha/vigil/internal/lab"
)

// bgpd is FRR's zebra, bgpd and optionally bfdd in a lab node, in a directory of their own.
// TODO(bgplab): lab.StartFRR with bgpd replaces this once it is on main.
type bgpd struct {
	nd                *lab.Node
	dir               string
	zebra, bgpd, bfdd *lab.Proc
}

var frrBGPBinaries = []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/lib/frr/bfdd"}

func frrBGPAvailable() error {
	for _, b := range frrBGPBinaries {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("FRR's %s is not installed (Debian package frr): %w", filepath.Base(b), err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return fmt.Errorf("FRR's vtysh is not installed (Debian package frr): %w", err)
	}
	return nil
}

// startBGPD runs zebra and bgpd with conf in nd, and bfdd first when withBFD.
func startBGPD(t *testing.T, nd *lab.Node, conf string, withBFD bool) *bgpd {
	t.Helper()
	dir, err := os.MkdirTemp("", "vigil-frr-bgp-")
	if err != nil {
		t.Fatal(err)
	}
	// The daemons drop to the frr user, who must reach the directory.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f := &bgpd{nd: nd, dir: dir}
	t.Cleanup(f.stop)
	for name, text := range map[string]string{"zebra.conf": "", "bgpd.conf": conf, "bfdd.conf": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	common := func(d string) []string {
		return []string{"-i", filepath.Join(dir, d+".pid"), "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-f", filepath.Join(dir, d+".conf"), "--log", "stdout", "--log-level", "info"}
	}
	if f.zebra, err = nd.Start(frrBGPBinaries[0], common("zebra")...); err != nil {
		t.Fatal(err)
	}
	f.waitFile(t, "zserv.api", f.zebra)
	if withBFD {
		if f.bfdd, err = nd.Start(frrBGPBinaries[2], append(common("bfdd"), "--bfdctl", filepath.Join(dir, "bfdd.sock"))...); err != nil {
			t.Fatal(err)
		}
		f.waitFile(t, "bfdd.vty", f.bfdd)
	}
	if f.bgpd, err = nd.Start(frrBGPBinaries[1], common("bgpd")...); err != nil {
		t.Fatal(err)
	}
	f.waitFile(t, "bgpd.vty", f.bgpd)
	return f
}

func (f *bgpd) waitFile(t *testing.T, name string, p *lab.Proc) {
	t.Helper()
	waitFor(t, "FRR's "+name, 15*time.Second, func() (bool, string) {
		if p.Exited() {
			t.Fatalf("FRR daemon exited: %s", p.Output())
		}
		_, err := os.Stat(filepath.Join(f.dir, name))
		return err == nil, fmt.Sprint(err)
	})
}

func (f *bgpd) stop() {
	for _, p := range []*lab.Proc{f.bgpd, f.bfdd, f.zebra} {
		if p == nil || p.Exited() {
			continue
		}
		_ = p.Signal(syscall.SIGTERM)
		if p.Wait(5*time.Second) != nil && !p.Exited() {
			p.Kill()
		}
	}
	for _, p := range []*lab.Proc{f.bgpd, f.bfdd, f.zebra} {
		if p != nil {
			_ = os.RemoveAll(filepath.Join("/var/tmp/frr", fmt.Sprintf("%s.%d", filepath.Base(p.Cmd.Args[4]), p.Cmd.Process.Pid)))
		}
	}
	_ = os.RemoveAll(f.dir)
}

// vtysh runs FRR commands; more than one runs them in order (conf t, router bgp, ...).
func (f *bgpd) vtysh(ctx context.Context, cmds ...string) ([]byte, error) {
	args := []string{"--vty_socket", f.dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.CommandContext(ctx, "vtysh", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh %q: %w: %s", cmds, err, out)
	}
	return out, nil
}

// frrPath is the part of a path in `show bgp ... PREFIX json` the tests read.
type frrPath struct {
	Metric    *uint32 `json:"metric"`
	LocPrf    *uint32 `json:"locPrf"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	Nexthops []struct {
		IP    string `json:"ip"`
		Scope string `json:"scope"`
	} `json:"nexthops"`
}

func (p frrPath) String() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// route returns FRR's paths for prefix (none when it has no route).
func (f *bgpd) route(ctx context.Context, prefix string) ([]frrPath, error) {
	afi := "ipv4"
	if strings.Contains(prefix, ":") {
		afi = "ipv6"
	}
	out, err := f.vtysh(ctx, fmt.Sprintf("show bgp %s unicast %s json", afi, prefix))
	if err != nil {
		return nil, err
	}
	var r struct {
		Paths []frrPath `json:"paths"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("show bgp %s: %w: %s", prefix, err, out)
	}
	return r.Paths, nil
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
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil-bgp")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vigil-ha/vigil/cmd/vigil-bgp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build vigil-bgp: %v\n%s", err, out)
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
