package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the whole reader: preprocessor, tree, model, validation.
// It must never panic or hang, and what vigil -d prints for a good file must read back to the
// same text.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.conf")
	seeds = append(seeds, "testdata/seed/keepalived.conf")
	if dir, err := findSamples(); err == nil {
		more, _ := filepath.Glob(filepath.Join(dir, "keepalived.conf*"))
		seeds = append(seeds, more...)
	}
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(fullConfig))
	f.Add([]byte("$A=${A}${A}\n~SEQ(N,1,9) ~LST({a,b},{1,2}) $A ${N}\n@x {\n{\n}}}\n\"unterminated\n"))
	opts := Options{DisableIncludes: true, MaxLines: 20000, MaxInputBytes: 1 << 20, ConfigID: "high"}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, ds := Parse("fuzz.conf", src, opts)
		if cfg == nil {
			t.Fatal("Parse returned no model")
		}
		for _, d := range ds {
			if d.Pos.File == "" {
				t.Fatalf("diagnostic without a place: %s", d)
			}
		}
		if ds.HasErrors() {
			return
		}
		text := cfg.Text()
		cfg2, ds2 := Parse("fuzz2.conf", []byte(text), opts)
		if ds2.HasErrors() {
			t.Fatalf("dump of a valid file does not read back:\n%s\n%v", text, ds2)
		}
		if cfg2.Text() != text {
			t.Fatalf("dump is not stable:\n%q\n%q", text, cfg2.Text())
		}
	})
}

func findSamples() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "shared", "keepalived-samples")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
