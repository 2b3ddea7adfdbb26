package lvs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
)

// findSamples finds keepalived's sample configurations in the shared/ folder beside the
// repository (keepalived's files: read there, never copied in).
func findSamples(t *testing.T) []string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "keepalived-samples")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			files, _ := filepath.Glob(filepath.Join(cand, "keepalived.conf*"))
			return files
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("keepalived samples not found: expected a shared/keepalived-samples folder beside the repository")
		}
		dir = parent
	}
}

// TestSamples runs every keepalived sample with a virtual_server through a Director: every
// checker core/checksched plans is one the Director knows, and every table it wants is one the
// kernel takes (ipvs.Table.Validate), with all checkers up, all down, and up again.
func TestSamples(t *testing.T) {
	n := 0
	for _, f := range findSamples(t) {
		cfg, ds := config.Load(f, config.Options{})
		if cfg == nil || ds.HasErrors() || len(cfg.VirtualServers) == 0 {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			d, _ := New(FromConfig(cfg))
			known := map[string]bool{}
			for _, s := range d.Status() {
				for _, r := range s.Reals {
					for _, c := range r.Checkers {
						known[c.Name] = true
					}
				}
			}
			var names []string
			for _, rc := range checksched.RealServerChecks(cfg) {
				if !known[rc.Name] {
					t.Errorf("checker %s unknown to the director", rc.Name)
				}
				names = append(names, rc.Name)
			}
			for _, up := range []bool{true, false, true} {
				for _, name := range names {
					d.Check(name, Result{Up: up})
				}
				if err := d.Desired().Validate(); err != nil {
					t.Errorf("all checkers up=%v: %v\n%s", up, err, table(d.Desired()))
				}
			}
			if testing.Verbose() {
				t.Logf("\n%s", strings.TrimSpace(table(d.Desired())))
			}
		})
	}
	if n == 0 {
		t.Skip("no sample with a virtual_server loads without errors")
	}
}
