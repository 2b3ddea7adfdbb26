package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInsertBlock(t *testing.T) {
	begin, end := BlockMarkers("xbench")
	if begin != "<!-- xbench: this block is written by bench/xbench -->" || end != "<!-- end of xbench -->" {
		t.Fatalf("markers: %q %q", begin, end)
	}
	notes := "# B\n\nvrrpbench's table\n\n" + NotesBegin + "\nsomeone's note\n" + NotesEnd + "\n"

	// Between the markers: only what is between them changes.
	doc := "# B\n" + NotesBegin + "\nbefore\n" + begin + "\nold figures\n" + end + "\nafter\n" + NotesEnd + "\n"
	got, err := InsertBlock(doc, "xbench", "new figures\n")
	if want := "# B\n" + NotesBegin + "\nbefore\n" + begin + "\nnew figures\n" + end + "\nafter\n" + NotesEnd + "\n"; err != nil || got != want {
		t.Errorf("replace: %q, %v; want %q", got, err, want)
	}

	// Without the markers: at the end of the notes block, a paragraph of its own.
	got, err = InsertBlock(notes, "xbench", "figures\n")
	want := "# B\n\nvrrpbench's table\n\n" + NotesBegin + "\nsomeone's note\n\n" + begin + "\nfigures\n" + end + "\n" + NotesEnd + "\n"
	if err != nil || got != want {
		t.Errorf("append: %q, %v; want %q", got, err, want)
	}
	// Written twice, the second run replaces the first's block.
	if again, err := InsertBlock(got, "xbench", "other\n"); err != nil || strings.Count(again, begin) != 1 || !strings.Contains(again, begin+"\nother\n"+end) {
		t.Errorf("second run: %q, %v", again, err)
	}

	// What needs a person: no notes block, a notes end before its begin, broken markers.
	for name, doc := range map[string]string{
		"no notes block":         "# B\n",
		"notes end first":        NotesEnd + "\n" + NotesBegin + "\n",
		"begin marker only":      notes + begin + "\n",
		"end marker only":        end + "\n" + notes,
		"markers in wrong order": end + "\n" + begin + "\n" + notes,
	} {
		if got, err := InsertBlock(doc, "xbench", "figures\n"); err == nil {
			t.Errorf("%s: no error, got %q", name, got)
		}
	}
}

func TestWriteBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := WriteBlock(path, "xbench", "x\n"); err == nil {
		t.Error("a missing file: no error")
	}
	if err := os.WriteFile(path, []byte(NotesBegin+"\n"+NotesEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBlock(path, "xbench", "x\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	begin, end := BlockMarkers("xbench")
	if want := NotesBegin + "\n\n" + begin + "\nx\n" + end + "\n" + NotesEnd + "\n"; string(b) != want {
		t.Errorf("file: %q; want %q", b, want)
	}
}
