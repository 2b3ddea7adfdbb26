package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadBounded runs Load in a goroutine and fails the test if it has not returned within a
// generous bound: before the fix, a FIFO blocked Load in open(2) for ever and /dev/zero made
// it read until memory ran out.
func loadBounded(t *testing.T, path string, opts Options) Diagnostics {
	t.Helper()
	done := make(chan Diagnostics, 1)
	go func() {
		_, ds := Load(path, opts)
		done <- ds
	}()
	select {
	case ds := <-done:
		return ds
	case <-time.After(60 * time.Second):
		t.Fatalf("Load(%s) has not returned after 60 s", path)
		return nil
	}
}

// TestIncludeNotRegularOrTooLarge: a file that is not a regular file, or that holds more than
// the configuration may, is refused at once with an error at the include line that names the
// file and says what to do; nothing is read past the limit.
func TestIncludeNotRegularOrTooLarge(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, []byte(strings.Repeat("# comment line\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	const limit = 4096
	tests := []struct {
		name, include, want string
	}{
		{"dev-zero", "/dev/zero", "/dev/zero is a character device, not a regular file"},
		{"directory", filepath.Join(dir, "sub"), dir + "/sub is a directory, not a regular file"},
		{"fifo", fifo, fifo + " is a FIFO, not a regular file"},
		{"too-large", big, big + " is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kw := range []string{"include", "includer"} {
				main := filepath.Join(dir, tt.name+"-"+kw+".conf")
				src := "global_defs {\n  router_id r1\n}\n  " + kw + " " + tt.include + "\n"
				if err := os.WriteFile(main, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				ds := loadBounded(t, main, Options{MaxInputBytes: limit})
				var hit *Diagnostic
				for i, d := range ds {
					if d.Severity == SevError && strings.Contains(d.Msg, tt.want) {
						hit = &ds[i]
					}
				}
				if hit == nil {
					t.Fatalf("%s: want an error %q, got %v", kw, tt.want, ds)
				}
				if want := (Pos{File: main, Line: 4, Col: 3}); hit.Pos != want {
					t.Errorf("%s: error at %v, want the include line %v", kw, hit.Pos, want)
				}
				if hit.Hint == "" {
					t.Errorf("%s: %v says nothing about what to do", kw, hit)
				}
				if tt.name == "too-large" && !strings.Contains(hit.Msg, "4096 bytes") {
					t.Errorf("%s: %v does not name the limit", kw, hit)
				}
			}
		})
	}

	// The main file itself: the same refusal, placed at the file.
	for _, path := range []string{"/dev/zero", fifo, filepath.Join(dir, "sub")} {
		ds := loadBounded(t, path, Options{})
		if !ds.HasErrors() || !strings.Contains(joined(ds), "not a regular file") {
			t.Errorf("-f %s: want a not-a-regular-file error, got %v", path, ds)
		}
	}
	ds := loadBounded(t, big, Options{MaxInputBytes: limit})
	if !ds.HasErrors() || !strings.Contains(joined(ds), big+" is larger than 4096 bytes") {
		t.Errorf("-f %s over the limit: got %v", big, ds)
	}
}

// TestIncludeWildcardSkipsSpecial: a wildcard of a plain include that also matches a
// subdirectory reads the files and skips the directory with a warning, as keepalived does.
func TestIncludeWildcardSkipsSpecial(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf":         "include conf.d/*\n",
		"conf.d/a.conf":     "global_defs {\n  router_id r1\n}\n",
		"conf.d/old/x.conf": "never\n",
	})
	ds := loadBounded(t, filepath.Join(dir, "main.conf"), Options{})
	if ds.HasErrors() || !strings.Contains(joined(ds), "old is a directory, not a regular file; skipped") {
		t.Errorf("want only a warning for conf.d/old, got %v", ds)
	}
}

func joined(ds Diagnostics) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, "\n")
}

// TestTextWithPlacesReadsBackToTheOperatorsPlaces: the resolved text that core hands its
// children, parsed with its places, gives every statement the place it has in the operator's
// files (an included file, a ~SEQ, a nested block), not a line of the text.
func TestTextWithPlacesReadsBackToTheOperatorsPlaces(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.conf": "global_defs {\n  router_id r1\n}\n\ninclude inc.conf\n",
		"inc.conf": "# instances\nvrrp_instance VI_1 {\n interface lo\n virtual_router_id 1\n virtual_ipaddress {\n" +
			"  ~SEQ(n,1,1,2) 192.0.2.${n}/32\n }\n}\nvrrp_instance VI_2 {\n interface lo\n virtual_router_id 2\n}\nvirtual_server 192.0.2.100 80 {\n    protocol TCP\n    real_server 192.0.2.11 80 {\n" +
			"        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n}\n",
	})
	cfg, ds := Load(filepath.Join(dir, "main.conf"), Options{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	text, places := cfg.TextWithPlaces()
	if got := strings.Count(text, "\n"); got != len(places) {
		t.Fatalf("%d lines of text, %d places", got, len(places))
	}
	back, ds := Parse("core", []byte(text), Options{DisableIncludes: true, Places: places})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	var walk func(a, b []*Node)
	walk = func(a, b []*Node) {
		if len(a) != len(b) {
			t.Fatalf("%d statements read back, want %d", len(b), len(a))
		}
		for i := range a {
			if a[i].Pos != b[i].Pos || a[i].End != b[i].End {
				t.Errorf("%s read back at %v (end %v), want %v (end %v)", a[i].Name, b[i].Pos, b[i].End, a[i].Pos, a[i].End)
			}
			walk(a[i].Block, b[i].Block)
		}
	}
	walk(cfg.Tree, back.Tree)
	if in := back.Instances[1]; in.Pos != (Pos{File: filepath.Join(dir, "inc.conf"), Line: 9, Col: 1}) {
		t.Errorf("VI_2 at %v, want inc.conf:9:1", in.Pos)
	}
}
