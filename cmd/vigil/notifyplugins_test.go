package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigTestNotifyPlugins: vigil -t asks the plugin of each vrrp_notify to validate its
// params and prints an objection at the block's line; a missing plugin is an error there too.
func TestConfigTestNotifyPlugins(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "vigil-notify-webhook"), "github.com/vigil-ha/vigil/plugins/vigil-notify-webhook")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	write := func(url, more string) {
		os.WriteFile(conf, []byte(`global_defs {
    plugin_dir `+dir+`
}
vrrp_notify hook {
    plugin webhook
    params {
        url `+url+`
    }
}
`+more), 0o644)
	}
	pager := "vrrp_notify page {\n    plugin pager\n}\n"
	write("ftp://example.com/", pager)
	code, _, stderr := runVigil("-t", "-f", conf)
	if code == 0 {
		t.Errorf("vigil -t accepted a webhook with an ftp url:\n%s", stderr)
	}
	if want := conf + `:4:1: error: vrrp_notify "hook": plugin webhook: url "ftp://example.com/"`; !strings.Contains(stderr, want) {
		t.Errorf("vigil -t:\n%s\nwant: %s", stderr, want)
	}
	if !strings.Contains(stderr, conf+`:10:1: error: vrrp_notify "page": plugin pager is not installed in `+dir) {
		t.Errorf("vigil -t says nothing of the missing pager plugin:\n%s", stderr)
	}
	write("https://hooks.example.com/vigil", pager)
	if code, _, stderr := runVigil("-t", "-f", conf); code == 0 {
		t.Errorf("vigil -t accepted a vrrp_notify whose plugin is not installed:\n%s", stderr)
	}
	write("https://hooks.example.com/vigil", "")
	if code, _, stderr := runVigil("-t", "-f", conf); code != 0 {
		t.Errorf("vigil -t refused a good webhook (exit %d):\n%s", code, stderr)
	}
}
