package harness

import (
	"fmt"
	"os"
	"strings"
)

// The notes block of BENCHMARKS.md: bench/vrrpbench rewrites the file and keeps what is
// between these markers, so a benchmark that writes its own block there never overwrites
// another's results.
const (
	NotesBegin = "<!-- notes: kept when vrrpbench rewrites this file -->"
	NotesEnd   = "<!-- end of notes -->"
)

// BlockMarkers are the markers of the block that bench/TOOL owns.
func BlockMarkers(tool string) (begin, end string) {
	return "<!-- " + tool + ": this block is written by bench/" + tool + " -->", "<!-- end of " + tool + " -->"
}

// WriteBlock puts md into tool's block of path (see InsertBlock), re-reading the file right
// before writing so that what others wrote elsewhere in it stays.
func WriteBlock(path, tool, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	s, err := InsertBlock(string(b), tool, md)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// InsertBlock is doc with md between tool's markers (BlockMarkers). Without the markers the
// block is added at the end of the notes block; a document without a notes block (or whose
// notes end comes before its begin), or with only one of tool's markers or them in the wrong
// order, is an error: it needs a person's look rather than a guess.
func InsertBlock(doc, tool, md string) (string, error) {
	begin, end := BlockMarkers(tool)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		return doc[:i+len(begin)] + "\n" + md + doc[j:], nil
	case i < 0 && j < 0:
		n := strings.Index(doc, NotesBegin)
		e := strings.Index(doc, NotesEnd)
		if n < 0 || e < n {
			return "", fmt.Errorf("no notes block (%q ... %q) to put the %s block in", NotesBegin, NotesEnd, tool)
		}
		sep := ""
		if !strings.HasSuffix(doc[:e], "\n\n") {
			sep = "\n" // a paragraph before the block stays a paragraph of its own
		}
		return doc[:e] + sep + begin + "\n" + md + end + "\n" + doc[e:], nil
	}
	return "", fmt.Errorf("the %s markers %q ... %q are broken; fix them by hand and run again", tool, begin, end)
}
