package vrrp

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadTrackFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		content string
		want    int
	}{{"5\n", 5}, {"-3", -3}, {"0x10 trailing", 16}, {"", 0}, {"nonsense", 0}, {"99999999999", 0}} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readTrackFile(p); got != tt.want {
			t.Errorf("readTrackFile(%q) = %d, want %d", tt.content, got, tt.want)
		}
	}
	if got := readTrackFile(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file = %d, want 0", got)
	}
}
