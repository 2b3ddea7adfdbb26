package plugin

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRunnerChecksum: the runner verifies a pinned checksum at the exec itself, as
// go-plugin's SecureConfig would, so a file swapped after discovery does not run.
func TestRunnerChecksum(t *testing.T) {
	path := filepath.Join(pluginDir, "vigil-check-test")
	r, err := newProcRunner(hclog.NewNullLogger(), path, strings.Repeat("0", 64), exec.Command(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); !errors.Is(err, ErrChecksum) || r.pid != 0 {
		t.Fatalf("Start with a wrong pin: %v (pid %d); want ErrChecksum and no process", err, r.pid)
	}
}

func TestFilterHandshake(t *testing.T) {
	const hs = "1|2|unix|/tmp/plugin1/sock|grpc|MIIBkzCCATmgAwIBAgIR"
	for _, tc := range []struct{ name, in, want, ranInto string }{
		{"clean", hs + "\nlater\n", hs + "\nlater\n", ""},
		{"noise first", "hello\r\n\n1|2|3\n  " + hs + " \r\nlater", hs + "\nlater", ""},
		{"no certificate", "x\n1|1|tcp|127.0.0.1:1234|grpc\n", "1|1|tcp|127.0.0.1:1234|grpc\n", ""},
		{"no handshake", "a\nb\n", "", ""},
		{"long noise", strings.Repeat("y", 3*maxLine) + "\n" + hs + "\n", hs + "\n", ""},
		{"ran into it", "x\nstarting..." + hs + "\nlater\n", "", "starting..." + hs},
		{"long noise ran into it", "x\n" + strings.Repeat("n", 500) + hs + strings.Repeat("A", 500) + "\n", "",
			"…" + strings.Repeat("n", 120) + (hs + strings.Repeat("A", 500))[:60] + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			var ranInto string
			go filterHandshake(hclog.NewNullLogger(), strings.NewReader(tc.in), pw, func(line string) { ranInto = line })
			got, err := io.ReadAll(pr)
			if err != nil || string(got) != tc.want || ranInto != tc.ranInto {
				t.Fatalf("got %q, %v, ran into %q; want %q, ran into %q", got, err, ranInto, tc.want, tc.ranInto)
			}
		})
	}
}

// TestResolveDir: plugin_dir wins; without it an installed vigil uses DefaultDir, and a
// vigil binary beside plugins (bin/ after make build) uses its own directory, and one
// installed as PREFIX/sbin/vigil uses PREFIX/lib/vigil/plugins (make install PREFIX=...).
func TestResolveDir(t *testing.T) {
	dev := t.TempDir()
	exe := filepath.Join(dev, "vigil")
	bare := filepath.Join(t.TempDir(), "vigil")
	if err := os.WriteFile(filepath.Join(dev, "vigil-check-tcp"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	// A bin/ with only vigil and the BGP speaker holds plugins too.
	speakerOnly := t.TempDir()
	if err := os.WriteFile(filepath.Join(speakerOnly, SpeakerFile), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	installed := filepath.Join(prefix, "sbin", "vigil")
	if err := os.MkdirAll(filepath.Join(prefix, "lib", "vigil", "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "lib", "vigil", "plugins", "vigil-notify-exec"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		configured    string
		defaultExists bool
		exe, want     string
	}{
		{"/opt/vigil/plugins", false, exe, "/opt/vigil/plugins"},
		{"/opt/vigil/plugins", true, exe, "/opt/vigil/plugins"},
		{"", true, exe, DefaultDir},
		{DefaultDir, true, exe, DefaultDir},
		{"", false, exe, dev},
		{DefaultDir, false, exe, dev},
		{"", false, bare, DefaultDir},
		{"", false, filepath.Join(speakerOnly, "vigil"), speakerOnly},
		{"", false, installed, filepath.Join(prefix, "lib", "vigil", "plugins")},
		{DefaultDir, false, installed, filepath.Join(prefix, "lib", "vigil", "plugins")},
		{"", true, installed, DefaultDir},
		{"", false, "", DefaultDir},
	} {
		if got := resolveDir(c.configured, c.defaultExists, c.exe); got != c.want {
			t.Errorf("resolveDir(%q, %v, %q) = %q; want %q", c.configured, c.defaultExists, c.exe, got, c.want)
		}
	}
}
