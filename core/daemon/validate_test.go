package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/core/config"
)

// TestValidatePluginsOnReload: a reload asks the plugins about the checks that are new or
// changed only (the check process configures only those again); -t, or a reload that changes
// plugin_dir, asks about every one. The plugin is missing here, so each check asked is an
// error, and what is not asked is none.
func TestValidatePluginsOnReload(t *testing.T) {
	dir := t.TempDir()
	conf := func(pluginDir string, reals int, port int) *config.Config {
		var b strings.Builder
		fmt.Fprintf(&b, "global_defs {\n    plugin_dir %s\n}\nvirtual_server 192.0.2.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", pluginDir)
		for i := range reals {
			p := 8080
			if i == 0 {
				p = port
			}
			fmt.Fprintf(&b, "    real_server 198.51.100.%d %d {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", 11+i, p)
		}
		b.WriteString("}\n")
		cfg, ds := config.Parse("lvs.conf", []byte(b.String()), config.Options{DisableIncludes: true})
		if ds.HasErrors() {
			t.Fatal(ds.Errors())
		}
		return cfg
	}
	running := conf(dir, 3, 8080)
	// A new connect_timeout is no new param, but the check process configures the checker
	// again (its Key changed): it is asked too.
	slower := conf(dir, 3, 8080)
	slower.VirtualServers[0].RealServers[1].Checkers[0].ConnectTimeout = 2 * time.Second
	asked := func(ds config.Diagnostics) string {
		var out []string
		for _, d := range ds {
			out = append(out, regexp.MustCompile(`"[^"]*"`).FindString(d.Msg))
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		name          string
		next, running *config.Config
		want          string
	}{
		{"vigil -t", running, nil, `"192.0.2.100:80/198.51.100.11:8080/TCP_CHECK"`},
		{"reload of the same file", conf(dir, 3, 8080), running, ""},
		{"reload adding a real server", conf(dir, 4, 8080), running, `"192.0.2.100:80/198.51.100.14:8080/TCP_CHECK"`},
		// A real server's port is its checker's connect_port: new params, asked again (and
		// a new name).
		{"reload changing a checker's params", conf(dir, 3, 9090), running, `"192.0.2.100:80/198.51.100.11:9090/TCP_CHECK"`},
		{"reload changing a checker's timeout", slower, running, `"192.0.2.100:80/198.51.100.12:8080/TCP_CHECK"`},
		{"reload changing plugin_dir", conf(t.TempDir(), 3, 8080), running, `"192.0.2.100:80/198.51.100.11:8080/TCP_CHECK"`},
	} {
		if got := asked(validatePlugins(context.Background(), c.next, c.running, nil, nil)); got != c.want {
			t.Errorf("%s: errors for %s; want %s", c.name, got, c.want)
		}
	}
}

// TestConfigTestWarnings: a plugin's warnings are reported at its block's place, for a
// check plugin as for a notify plugin (the exec plugins warn of a program that is not
// there: keepalived keeps such a script and lets it fail), and they do not make the file
// fail.
func TestConfigTestWarnings(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"vigil-check-exec", "vigil-notify-exec"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, p), "github.com/vigil-ha/vigil/plugins/"+p)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", p, err, out)
		}
	}
	body := `global_defs {
    plugin_dir ` + dir + `
}
vrrp_check chk {
    plugin exec
    params {
        command /nonexistent/vigil-probe
    }
}
vrrp_notify page {
    plugin exec
    params {
        command /nonexistent/vigil-pager
    }
}
`
	file := filepath.Join(dir, "vigil.conf")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := config.Load(file, config.Options{ConfigID: "test"})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	ds = ConfigTest(context.Background(), cfg)
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	for _, want := range []string{
		file + `:4:1: warning: vrrp_check "chk": plugin exec: /nonexistent/vigil-probe: `,
		file + `:10:1: warning: vrrp_notify "page": plugin exec: /nonexistent/vigil-pager: `,
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("ConfigTest:\n%s\nwant a line beginning %s", strings.Join(got, "\n"), want)
		}
	}
	if ds.HasErrors() {
		t.Errorf("warnings made errors: %v", ds.Errors())
	}
}
