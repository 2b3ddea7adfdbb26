// Package manual holds a manual page as data (sections of paragraphs, definition lists and
// examples) and writes it both as the plain text of `vigil help` and as man(7) roff, so that
// the help a terminal shows and the installed man pages are one text and cannot drift apart.
//
// Inline markup is one convention only: `code` is set in bold in roff and printed without
// the backquotes as text. Terms of a definition list are code throughout; words in them that
// are all capitals (FILE, DURATION) are metavariables and set in italics in roff.
package manual

import (
	"cmp"
	"flag"
	"slices"
	"strings"
)

// Page is one manual page.
type Page struct {
	Name    string // vigil, vigil.conf
	Section string // 8, 5
	// Summary is the NAME line's text after the dash.
	Summary string
	// Source and Manual are the centre and left footer of a man page (vigil VERSION,
	// "System Administration").
	Source, Manual string
	Sections       []Section
}

// Section is a man page's section (NAME and the footer are made from the Page).
type Section struct {
	Title  string // OPTIONS, EXIT STATUS
	Topic  string // the `vigil help TOPIC` that prints it alone; empty for none
	Blocks []Block
}

// Block is a paragraph, a definition list or a preformatted example.
type Block interface{ isBlock() }

// Para is a filled paragraph with `code` spans.
type Para string

// List is a definition list: a term and what it means.
type List []Item

// Item is one entry of a List.
type Item struct {
	Term string // code: "-f, --use-file FILE"
	Text string // a paragraph with `code` spans
}

// Sub is a subsection: a title (.SS in roff) and its blocks.
type Sub struct {
	Title  string // code, as a List's term
	Blocks []Block
}

// Example is preformatted text, printed as it is (indented as text, .EX/.EE in roff).
type Example string

func (Para) isBlock()    {}
func (List) isBlock()    {}
func (Example) isBlock() {}
func (Sub) isBlock()     {}

// Topic returns the section with the given help topic.
func (p *Page) Topic(topic string) (Section, bool) {
	for _, s := range p.Sections {
		if s.Topic == topic {
			return s, true
		}
	}
	return Section{}, false
}

// Topics are the help topics of the page's sections, in order.
func (p *Page) Topics() []string {
	var out []string
	for _, s := range p.Sections {
		if s.Topic != "" {
			out = append(out, s.Topic)
		}
	}
	return out
}

// Flag is one command-line flag and its aliases, as a definition list shows it.
type Flag struct {
	Names []string // without dashes, the short one first: t, config-test
	Arg   string   // metavariable, empty for a boolean: FILE, DURATION
	Usage string
	// Default is the default value when it says something (not false, 0 or empty).
	Default string
}

// Term is how a list shows the flag: "-t, --config-test" or "-f, --use-file FILE". One-letter
// names take one dash and the others two, as the usage of keepalived and GNU tools shows them
// (Go's flag package takes either).
func (f Flag) Term() string {
	var names []string
	for _, n := range f.Names {
		if len(n) == 1 {
			names = append(names, "-"+n)
		} else {
			names = append(names, "--"+n)
		}
	}
	t := strings.Join(names, ", ")
	if f.Arg != "" {
		t += " " + f.Arg
	}
	return t
}

// Hidden is the prefix of a usage string that keeps its flag out of the manual: flags that
// vigil passes to itself (the children's --role), not for operators.
const Hidden = "internal:"

// Flags reads the flags registered on fs. Flags that set the same variable (-f and
// --use-file) are one entry, under the usage of the first one registered that does not just
// say "same as -X". The flags named in first (by any of their names) come first, in that
// order, and the others follow sorted by their long name, as man pages list options. meta
// names the metavariable of a flag by any of its names; a flag that takes a value and is not
// in meta gets its type's name in capitals.
func Flags(fs *flag.FlagSet, meta map[string]string, first ...string) []Flag {
	type group struct {
		f     Flag
		value flag.Value
	}
	var groups []*group
	fs.VisitAll(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Usage, Hidden) {
			return
		}
		for _, g := range groups {
			// Aliases share the variable: the flag package's Values are pointers to it,
			// so the interfaces compare equal.
			if sameValue(g.value, fl.Value) {
				g.f.Names = append(g.f.Names, fl.Name)
				if strings.HasPrefix(g.f.Usage, "same as ") {
					g.f.Usage = fl.Usage
				}
				return
			}
		}
		g := &group{value: fl.Value, f: Flag{Names: []string{fl.Name}, Usage: fl.Usage}}
		if !isBool(fl) {
			name, _ := flag.UnquoteUsage(fl)
			g.f.Arg = argName(name)
		}
		switch fl.DefValue {
		case "", "false", "0", "0s":
		default:
			g.f.Default = fl.DefValue
		}
		groups = append(groups, g)
	})
	out := make([]Flag, 0, len(groups))
	for _, g := range groups {
		if strings.HasPrefix(g.f.Usage, "same as ") {
			g.f.Usage = "" // only aliases of a hidden flag; nothing to say
		}
		out = append(out, g.f)
	}
	return arrange(out, meta, first)
}

// arrange puts each flag's short name first and names its value from meta, then orders the
// flags: those in first by its order, the others by their long name.
func arrange(flags []Flag, meta map[string]string, first []string) []Flag {
	for i := range flags {
		f := &flags[i]
		slices.SortStableFunc(f.Names, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
		for _, name := range f.Names {
			if m, ok := meta[name]; ok && f.Arg != "" {
				f.Arg = m
			}
		}
	}
	rank := func(f Flag) int {
		for i, name := range first {
			if slices.Contains(f.Names, name) {
				return i
			}
		}
		return len(first)
	}
	slices.SortStableFunc(flags, func(a, b Flag) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return cmp.Compare(strings.ToLower(a.Names[len(a.Names)-1]), strings.ToLower(b.Names[len(b.Names)-1]))
	})
	return flags
}

// argName is the metavariable for a flag's value from the name flag.UnquoteUsage gives it.
func argName(typ string) string {
	switch typ {
	case "":
		return "VALUE"
	case "string", "value":
		return "VALUE"
	case "int", "uint", "int64", "uint64", "float":
		return "N"
	}
	return strings.ToUpper(typ)
}

func sameValue(a, b flag.Value) (same bool) {
	// A Value of a type that is not comparable panics on ==; such flags have no aliases.
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// FlagList is the definition list of flags: the usage, and the default when the usage does
// not already name it.
func FlagList(flags []Flag) List {
	var l List
	for _, f := range flags {
		text := f.Usage
		if f.Default != "" && !strings.Contains(text, "default") {
			text += " (default `" + f.Default + "`)"
		}
		l = append(l, Item{Term: f.Term(), Text: text})
	}
	return l
}

// ParseDefaults reads the flags back from what flag.FlagSet.PrintDefaults printed, for
// commands that only show their flags through -h: "  -name type\n    \tusage" or, for a
// one-letter boolean, "  -x\tusage". A flag whose usage is "same as -X" is taken as an alias
// of -X. meta and first are as for Flags.
func ParseDefaults(text string, meta map[string]string, first ...string) []Flag {
	var all []Flag
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			head, usage, _ := strings.Cut(strings.TrimPrefix(line, "  -"), "\t")
			name, typ, hasArg := strings.Cut(strings.TrimSpace(head), " ")
			f := Flag{Names: []string{name}, Usage: usage}
			if hasArg {
				f.Arg = argName(strings.TrimSpace(typ))
			}
			all = append(all, f)
		case strings.HasPrefix(line, "    \t") && len(all) > 0:
			f := &all[len(all)-1]
			f.Usage = strings.TrimSpace(f.Usage + " " + strings.TrimPrefix(line, "    \t"))
		}
	}
	// PrintDefaults appends the default to every usage, an alias's "same as -X" too.
	aliasOf := func(f Flag) string {
		u, _, _ := strings.Cut(f.Usage, " (default ")
		target, _ := strings.CutPrefix(u, "same as -")
		if target == u {
			return ""
		}
		return target
	}
	var out []Flag
	for _, f := range all {
		if target := aliasOf(f); target != "" {
			if i := slices.IndexFunc(all, func(g Flag) bool { return g.Names[0] == target }); i >= 0 {
				continue // joined below
			}
		}
		for _, a := range all {
			if aliasOf(a) == f.Names[0] {
				f.Names = append(f.Names, a.Names[0])
			}
		}
		f.Usage = strings.TrimSpace(f.Usage)
		out = append(out, f)
	}
	return arrange(out, meta, first)
}
