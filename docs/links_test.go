// Package docs holds vigil's operator guide, pages of Markdown. Its only Go is this test,
// which lives here because the guide is what breaks when a page or a heading moves: it
// checks that every relative link in the repository's Markdown files leads to a file that
// exists and, when it names an anchor in a Markdown file, to a heading that exists.
package docs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

var (
	// fence matches a fenced code block: links shown inside one are examples, not links.
	fence = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	// codeSpan matches inline code, for the same reason.
	codeSpan = regexp.MustCompile("`[^`\n]*`")
	// link matches an inline link or image, [text](target "title"), capturing the target.
	link = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// heading matches an ATX heading line.
	heading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
	// htmlAnchor matches an explicit anchor, <a id="x"> or <a name="x">.
	htmlAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
)

// slug is the anchor GitHub gives a heading: lower case, punctuation other than '-' and '_'
// dropped, each space a '-'.
func slug(h string) string {
	h = strings.ReplaceAll(h, "`", "")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors lists the anchors a Markdown text defines; a repeated heading gets -1, -2, ... as
// on GitHub.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	for _, m := range htmlAnchor.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

// lineOf is the 1-based line of offset off in text.
func lineOf(text string, off int) int { return strings.Count(text[:off], "\n") + 1 }

// markdownFiles lists the repository's Markdown files, relative to root, leaving out test
// data and hidden directories.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRelativeLinks: every relative link in a Markdown file of the repository resolves to a
// file or directory, and an anchor into a Markdown file names one of its headings. A page
// that moves, or a heading that is renamed, fails here naming each link it broke.
func TestRelativeLinks(t *testing.T) {
	root := ".."
	files := markdownFiles(t, root)
	if len(files) < 10 {
		t.Fatalf("found %d Markdown files under %s; the walk is wrong", len(files), root)
	}
	cache := map[string]map[string]bool{}
	anchorsOf := func(p string) (map[string]bool, error) {
		if a, ok := cache[p]; ok {
			return a, nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cache[p] = anchors(string(b))
		return cache[p], nil
	}
	links := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Blank out code rather than delete it, so that offsets still give the right line.
		text := fence.ReplaceAllStringFunc(string(b), blank)
		text = codeSpan.ReplaceAllStringFunc(text, blank)
		for _, m := range link.FindAllStringSubmatchIndex(text, -1) {
			target := text[m[2]:m[3]]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			where := fmt.Sprintf("%s:%d", f, lineOf(text, m[0]))
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: %s does not exist", where, target, dest)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			a, err := anchorsOf(dest)
			if err != nil {
				t.Errorf("%s: link %q: %v", where, target, err)
				continue
			}
			if !a[frag] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", where, target, dest, frag)
			}
		}
	}
	if links == 0 {
		t.Fatal("no relative link found; the link pattern is wrong")
	}
	t.Logf("%d relative links in %d files", links, len(files))
}

// blank replaces every character but newlines with spaces.
func blank(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		return ' '
	}, s)
}

// TestSlug pins the anchor rule against headings of this guide, as GitHub renders them.
func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"Test a configuration: `vigil -t`":           "test-a-configuration-vigil--t",
		"Plugin extensions to keepalived.conf":       "plugin-extensions-to-keepalivedconf",
		"HTTP_GET and SSL_GET":                       "http_get-and-ssl_get",
		"When a check plugin dies, hangs or is slow": "when-a-check-plugin-dies-hangs-or-is-slow",
		"Capacity, beside keepalived":                "capacity-beside-keepalived",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}
