package child

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/internal/childpb"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
)

// pluginProcs counts the running processes of the executable path.
func pluginProcs(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			n++
		}
	}
	return n
}

// TestCheckValidate runs the check child with real plugins and asks it to validate checks
// as core does before a reload: the plugins already running answer (no new plugin process),
// with the same errors a fresh plugin host gives; what is validated changes nothing in the
// running checks, not even for a check of the same name (its plugin keeps its params); the
// child refuses before Start, after Stop, and for another plugin host.
func TestCheckValidate(t *testing.T) {
	plugins := buildCheckPlugins(t)
	dir := t.TempDir()
	recorded := filepath.Join(dir, "recorded")
	os.WriteFile(filepath.Join(dir, "count.sh"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "record.sh"), []byte("#!/bin/sh\necho \"$1\" >> "+recorded+"\n"), 0o755)
	var log logBuffer
	s := newCheckServer(hclog.New(&hclog.LoggerOptions{Output: &log, Level: hclog.Debug}), Options{})
	t.Cleanup(s.shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	text := reloadConfig(plugins, dir, -20, 3, false, "old", "")
	cfg, ds := config.Parse("validate.conf", []byte(text), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		t.Fatal(ds.Errors())
	}
	param := func(kv ...string) []config.Param {
		var ps []config.Param
		for _, s := range kv {
			f := strings.Fields(s)
			ps = append(ps, config.Param{Key: f[0], Values: f[1:]})
		}
		return ps
	}
	items := []ValidateItem{
		{Plugin: "test", Name: "c_keep", Params: param("mode ok", "weight 42")},
		{Plugin: "test", Name: "c_new", Params: param("mode bogus")},
		{Plugin: "exec", Name: "c_exec", Params: param("command " + dir + "/record.sh new")},
		{Plugin: "redsi", Name: "c_missing"},
		{Plugin: "test", Name: "c_block", Params: []config.Param{{Key: "mode", Values: []string{"ok"}}, {Key: "opts", Block: param("a 1")}}},
	}
	req := ValidateRequest(cfg.Global, items)

	if _, err := s.Validate(ctx, req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Validate before Start: %v, want FailedPrecondition", err)
	}
	sub := s.out.subscribe(nil)
	defer s.out.unsubscribe(sub)
	if _, err := s.Start(ctx, &childpb.StartRequest{ConfigName: "validate.conf", ConfigText: text}); err != nil {
		t.Fatalf("Start: %v\n%s", err, log.String())
	}
	waitUntil(t, "the checks settle", func() bool {
		m := states(s)
		return len(m) == 4 && !m["s_keep"].Initial && !m["s_keep"].Up &&
			weightIs(m["c_keep"], 7) && weightIs(m["c_change"], 3) && m["c_exec"].Up && lines(t, recorded) > 0
	})
	before := states(s)
	seqBefore := seqNow(s)
	testPlugin := filepath.Join(plugins, "vigil-check-test")
	if n := pluginProcs(t, testPlugin); n != 1 {
		t.Fatalf("%d test plugin processes run; want 1", n)
	}
	configured := func(name string) int {
		n := 0
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "vigil-check-test: configured:") && strings.Contains(l+" ", " check="+name+" ") {
				n++
			}
		}
		return n
	}
	keptBefore := configured("c_keep")

	resp, err := s.Validate(ctx, req)
	if err != nil {
		t.Fatalf("Validate: %v\n%s", err, log.String())
	}
	// The answers are those of a fresh plugin host, which `vigil -t` asks.
	fresh := plugin.New(plugin.ConfigOptions(cfg.Global, hclog.NewNullLogger()))
	defer fresh.Close()
	if len(resp.Results) != len(items) {
		t.Fatalf("Validate answered %d results to %d items", len(resp.Results), len(items))
	}
	for i, it := range items {
		_, ferr := fresh.ConfigureCheck(ctx, it.Plugin, sdk.ConfigureRequest{Name: it.Name, Params: plugin.Params(it.Params), ValidateOnly: true})
		want := ""
		if ferr != nil {
			want = ferr.Error()
		}
		got := resp.Results[i]
		if got.Error != want || got.NotInstalled != (it.Plugin == "redsi") {
			t.Errorf("%s: the check child answered %q (not installed %v); a fresh host %q", it.Name, got.Error, got.NotInstalled, want)
		}
	}
	if !strings.Contains(resp.Results[1].Error, `mode "bogus"`) || resp.Results[0].Error != "" || resp.Results[2].Error != "" || resp.Results[4].Error != "" {
		t.Errorf("Validate: %v", resp.Results)
	}
	// The running plugin process answered: it logged c_keep's params once more, and no other
	// test plugin process ran for the check child.
	if n := configured("c_keep"); n != keptBefore+1 {
		t.Errorf("the running test plugin was asked about c_keep %d times by Validate; want once", n-keptBefore)
	}
	fresh.Close()
	if n := pluginProcs(t, testPlugin); n != 1 {
		t.Errorf("%d test plugin processes run after Validate; want 1", n)
	}
	if m := states(s); m["c_keep"].Metrics["pid"] != before["c_keep"].Metrics["pid"] {
		t.Errorf("c_keep answered from plugin pid %v after Validate, %v before", m["c_keep"].Metrics["pid"], before["c_keep"].Metrics["pid"])
	}

	// The checks of the same names run on with their own params: c_exec still records "old"
	// (four runs more), and c_keep keeps its weight 7, not 42.
	recordedBefore := lines(t, recorded)
	waitUntil(t, "c_exec runs on", func() bool { return lines(t, recorded) >= recordedBefore+4 })
	if b, _ := os.ReadFile(recorded); strings.Contains(string(b), "new") {
		t.Errorf("c_exec ran the command it was only validated with:\n%s", b)
	}
	if n := seqNow(s); n != seqBefore {
		sent, _ := sub.take()
		var after []*childpb.CheckState
		for _, st := range sent {
			if st.Seq > seqBefore {
				after = append(after, st)
			}
		}
		t.Errorf("Validate was followed by %d states: %v", n-seqBefore, after)
	}
	if m := states(s); !weightIs(m["c_keep"], 7) {
		t.Errorf("c_keep after Validate: %v", m["c_keep"])
	}

	// Another plugin_dir: the running host is not the one asked for.
	other := cfg.Global
	other.PluginDir = t.TempDir()
	if _, err := s.Validate(ctx, ValidateRequest(other, items)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Validate for another plugin_dir: %v, want FailedPrecondition", err)
	}
	if checksched.PluginHostKey(other) == req.PluginHostKey {
		t.Fatal("the plugin host keys do not differ")
	}

	// A plugin that gives no answer of its own (here: a file anyone may write, which the
	// host refuses to run): the child does not answer for it, and core asks a fresh host.
	if err := os.WriteFile(filepath.Join(plugins, "vigil-check-unsafe"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(plugins, "vigil-check-unsafe"), 0o777); err != nil {
		t.Fatal(err)
	}
	unsafe := ValidateRequest(cfg.Global, append(items, ValidateItem{Plugin: "unsafe", Name: "c_unsafe"}))
	if _, err := s.Validate(ctx, unsafe); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "writable") {
		t.Errorf("Validate with an unsafe plugin: %v, want Unavailable naming its mode", err)
	}

	s.shutdown()
	if _, err := s.Validate(ctx, req); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Validate after Stop: %v, want FailedPrecondition", err)
	}
}
