package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/manual"
)

// registeredFlags reads main.go's source for the flags run() registers on its flag set:
// fs.XxxVar(p, "name", ...), fs.Xxx("name", ...) and both(p, "short", "long", ...). The
// flag set itself lives inside run(); its source is the list a new flag is added to, so a
// flag added there without showing in the manual fails TestHelpListsEveryFlag.
func registeredFlags(t *testing.T) (names []string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	str := func(e ast.Expr) string {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, _ := strconv.Unquote(lit.Value)
			return s
		}
		return ""
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 3 {
			return true
		}
		var idx []int
		switch fun := call.Fun.(type) {
		case *ast.Ident:
			if fun.Name == "both" {
				idx = []int{1, 2}
			}
		case *ast.SelectorExpr:
			if x, ok := fun.X.(*ast.Ident); ok && x.Name == "fs" {
				if strings.HasSuffix(fun.Sel.Name, "Var") {
					idx = []int{1}
				} else {
					idx = []int{0}
				}
			}
		}
		if len(idx) == 0 || strings.HasPrefix(str(call.Args[len(call.Args)-1]), manual.Hidden) {
			return true
		}
		for _, i := range idx {
			if s := str(call.Args[i]); s != "" {
				names = append(names, s)
			}
		}
		return true
	})
	if len(names) < 20 {
		t.Fatalf("found only %d flags in main.go (%v): has the way run() registers them changed?", len(names), names)
	}
	return names
}

// TestHelpListsEveryFlag: `vigil help`, `vigil -h` and the man page vigil.8 name every flag
// that run() registers, so that the help and the man page cannot drift from the flag set.
// Fails when a flag is added to main.go and the manual does not pick it up (e.g. with
// manual.Flags reading another flag set).
func TestHelpListsEveryFlag(t *testing.T) {
	code, help, stderr := runVigil("help")
	if code != exitOK {
		t.Fatalf("vigil help: exit %d, %s", code, stderr)
	}
	code, _, usage := runVigil("-h")
	if code != exitOK || usage != help {
		t.Errorf("vigil -h (exit %d) does not print what vigil help prints:\n%s", code, usage)
	}
	code, roff, stderr := runVigil("help", "--man", "8")
	if code != exitOK {
		t.Fatalf("vigil help --man 8: exit %d, %s", code, stderr)
	}
	for _, name := range registeredFlags(t) {
		dash := "--"
		if len(name) == 1 {
			dash = "-"
		}
		// A flag in the text stands alone: "-t," or "--watch DURATION".
		if !regexp.MustCompile(`(^|[\s,\[])` + regexp.QuoteMeta(dash+name) + `([\s,\]]|$)`).MatchString(help) {
			t.Errorf("vigil help does not list %s%s", dash, name)
		}
		if !strings.Contains(roff, `\fB`+strings.ReplaceAll(dash+name, "-", `\-`)) {
			t.Errorf("vigil.8 does not list %s%s", dash, name)
		}
	}
	if strings.Contains(help, "same as") {
		t.Errorf("an alias is listed on its own instead of beside its flag:\n%s", help)
	}
	if strings.Contains(help, "role") {
		t.Errorf("the internal --role flag is in the help")
	}
}

// TestHelpCoversSubcommands: every subcommand that run() dispatches on has its entry in the
// manual, with the flags its -h prints. Fails when a subcommand is added to run() only.
func TestHelpCoversSubcommands(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range subcommands() {
		names = append(names, c.name)
	}
	for _, m := range regexp.MustCompile(`args\[0\] == "([a-z][a-z-]*)"`).FindAllStringSubmatch(string(src), -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("run() dispatches %q, which subcommands() in help.go does not describe", m[1])
		}
	}
	code, roff, _ := runVigil("help", "--man", "8")
	if code != exitOK {
		t.Fatal("vigil help --man 8 failed")
	}
	for _, c := range subcommands() {
		code, out, stderr := runVigil("help", c.name)
		if code != exitOK || !strings.HasPrefix(out, "vigil "+c.synopsis+"\n") {
			t.Errorf("vigil help %s: exit %d, %q %s", c.name, code, out, stderr)
		}
		flags := subcommandFlags(c)
		if c.run != nil && len(flags) == 0 {
			t.Errorf("vigil %s -h printed no flags that the manual could read", c.name)
		}
		for _, f := range flags {
			if !strings.Contains(out, f.Term()) || !strings.Contains(roff, strings.ReplaceAll(f.Names[0], "-", `\-`)) {
				t.Errorf("vigil help %s or vigil.8 lacks %s", c.name, f.Term())
			}
		}
	}
}

func TestHelpTopics(t *testing.T) {
	for _, topic := range []string{"all", "flags", "exit-codes", "signals", "files", "environment", "config", "unsupported"} {
		code, out, stderr := runVigil("help", topic)
		if code != exitOK || out == "" {
			t.Errorf("vigil help %s: exit %d, %q, %s", topic, code, out, stderr)
		}
	}
	if code, _, stderr := runVigil("help", "nosuch"); code != exitUsage || !strings.Contains(stderr, "signals") {
		t.Errorf("vigil help nosuch: exit %d, %s; want a usage error listing the topics", code, stderr)
	}
	if code, _, _ := runVigil("help", "--man", "1"); code != exitUsage {
		t.Errorf("vigil help --man 1: exit %d, want %d", code, exitUsage)
	}
}

// TestManPagesRender: groff, as man-db runs it, formats both pages with every warning on
// (-ww) and prints none; man -l shows them. Debian's groff-base and man-db (.ci/deps.sh).
func TestManPagesRender(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed (Debian: groff-base, installed by .ci/deps.sh)")
	}
	for _, sec := range []string{"8", "5"} {
		code, roff, stderr := runVigil("help", "--man", sec)
		if code != exitOK {
			t.Fatalf("vigil help --man %s: exit %d, %s", sec, code, stderr)
		}
		page := t.TempDir() + "/vigil." + sec
		if err := os.WriteFile(page, []byte(roff), 0o644); err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", page)
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil || errb.Len() > 0 {
			t.Errorf("groff -man -Tutf8 -ww on the section %s page: %v\n%s", sec, err, errb.String())
		}
		man, err := exec.LookPath("man")
		if err != nil {
			t.Logf("man not installed (Debian: man-db); groff alone checked the page")
			continue
		}
		// Terminals differ: a long keyword that fits one width may not fit the next.
		for _, width := range []string{"60", "80", "132"} {
			errb.Reset()
			cmd = exec.Command(man, "--warnings", "-l", page)
			cmd.Env = append(os.Environ(), "MANWIDTH="+width, "MANPAGER=cat", "PAGER=cat")
			cmd.Stderr = &errb
			out, err := cmd.Output()
			if err != nil || errb.Len() > 0 || !strings.Contains(string(out), "SEE ALSO") {
				t.Errorf("man -l at %s columns on the section %s page: %v\n%s\n%s", width, sec, err, errb.String(), out)
			}
		}
	}
}

// TestPackagedConfig: the /etc/vigil/vigil.conf that make install and the .deb ship passes
// vigil -t without a warning, on any host (its interface is lo). packaging/test-deb.sh checks
// it again in a fresh Debian; this catches a change to the parser that breaks it at once.
func TestPackagedConfig(t *testing.T) {
	code, _, stderr := runVigil("-t", "-f", "../../packaging/vigil.conf")
	if code != exitOK || !strings.Contains(stderr, "configuration OK (0 warning(s))") {
		t.Errorf("vigil -t on packaging/vigil.conf: exit %d\n%s", code, stderr)
	}
}
