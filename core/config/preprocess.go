package config

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/opfile"
)

// Limits that keep a hostile or mistaken file from exhausting the daemon. They are above what
// a real configuration needs: keepalived's own documentation shows a ~SEQ generating 65024
// instances (about a million lines, 30 MB), which stays inside them.
const (
	defaultMaxInputBytes   = 64 << 20
	defaultMaxIncludeDepth = 16
	defaultMaxLines        = 1_200_000
	maxExpandedBytes       = 96 << 20
	maxExpansionDepth      = 64
	maxLineBytes           = 64 << 10
	maxSeqIterations       = 1 << 20
)

// definition is a $NAME parameter: a value (one or several lines) or a function for the
// predefined ${_RANDOM}, ${_ENV VAR} and friends.
type definition struct {
	lines   []string
	fn      func(args []string) (string, error)
	minArgs int
	maxArgs int
}

func (d *definition) multiline() bool { return len(d.lines) > 1 }

type preprocessor struct {
	opts  Options
	sink  *diagSink
	defs  map[string]*definition
	out   []srcLine
	files []string
	// includes are the include lines' patterns, absolute, braces expanded.
	includes []string
	stack    []string // files being read, innermost last, for include cycles and ${_PWD}
	bytes    int64
	rnd      *rand.Rand
	// pending is the multi-line $NAME= definition whose continuation lines are being collected.
	pending *definition
	stopped bool
	// steps counts lines processed, emitted or not, so that generators that expand to
	// nothing (a ~SEQ of definitions, nested a million deep) still end.
	steps int
	// outBytes is what the emitted lines hold, with a rough per-line overhead, so that a
	// short file cannot expand into gigabytes.
	outBytes int
}

func newPreprocessor(opts Options, sink *diagSink) *preprocessor {
	seed := opts.RandomSeed
	if seed == 0 {
		// Like keepalived: different on every node and run unless a seed is asked for.
		seed = uint64(time.Now().UnixNano())
	}
	p := &preprocessor{opts: opts, sink: sink, defs: map[string]*definition{}, rnd: rand.New(rand.NewPCG(seed, seed))}
	p.defs["_PWD"] = &definition{fn: func([]string) (string, error) { return p.pwd(), nil }}
	p.defs["_INSTANCE"] = &definition{lines: []string{opts.ConfigID}}
	p.defs["_HASH"] = &definition{lines: []string{"#"}}
	p.defs["_BANG"] = &definition{lines: []string{"!"}}
	p.defs["_RANDOM"] = &definition{maxArgs: 2, fn: p.random}
	p.defs["_ENV"] = &definition{minArgs: 1, maxArgs: 1, fn: func(a []string) (string, error) {
		v, _ := opts.lookupEnv(a[0])
		return v, nil
	}}
	return p
}

func (p *preprocessor) pwd() string {
	dir := "."
	if len(p.stack) > 0 {
		dir = filepath.Dir(p.stack[len(p.stack)-1])
	}
	// keepalived changes into the file's directory and asks getcwd: an absolute path.
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func (p *preprocessor) random(args []string) (string, error) {
	lo, hi := int64(0), int64(32767)
	var err error
	if len(args) > 0 {
		if lo, err = strconv.ParseInt(args[0], 10, 64); err != nil {
			return "", fmt.Errorf("${_RANDOM}: minimum %q is not a number", args[0])
		}
	}
	if len(args) > 1 {
		if hi, err = strconv.ParseInt(args[1], 10, 64); err != nil {
			return "", fmt.Errorf("${_RANDOM}: maximum %q is not a number", args[1])
		}
	}
	if lo < 0 || hi < lo {
		return "", fmt.Errorf("${_RANDOM %d %d}: the range must be 0 <= MIN <= MAX", lo, hi)
	}
	return strconv.FormatInt(lo+p.rnd.Int64N(hi-lo+1), 10), nil
}

// readFile reads one file and feeds its lines through the preprocessor. from is the place of
// the include that asked for it (zero for the main file).
func (p *preprocessor) readFile(path string, from Pos) { p.readFileAs(path, from, includeStrict) }

// includeLeniency says which problems with a file are only warnings.
type includeLeniency int

const (
	// includeStrict: every problem is an error.
	includeStrict includeLeniency = iota
	// includeUnreadable: a file that cannot be opened is a warning (keepalived's plain include).
	includeUnreadable
	// includeSkipSpecial: as includeUnreadable, and a match of a wildcard that is not a regular
	// file (a subdirectory of conf.d) is skipped with a warning, as keepalived does.
	includeSkipSpecial
)

// readFileAs is readFile where lenient makes some problems warnings.
func (p *preprocessor) readFileAs(path string, from Pos, lenient includeLeniency) {
	if p.stopped {
		return
	}
	if len(p.stack) >= p.opts.maxIncludeDepth() {
		p.sink.errorf(from, "includes nested deeper than %d levels at %q", p.opts.maxIncludeDepth(), path).Hint =
			"flatten the include chain"
		return
	}
	abs, _ := filepath.Abs(path)
	for _, open := range p.stack {
		if o, _ := filepath.Abs(open); o == abs {
			p.sink.errorf(from, "include cycle: %s includes itself through %s", path, strings.Join(p.stack, " -> ")).Hint =
				"remove one of the include lines"
			return
		}
	}
	// Read no more than what is left of the total budget, plus one byte to know it is exceeded:
	// an include of /dev/zero or of a huge log must fail at the limit, not after filling memory.
	limit := max(p.opts.maxInputBytes()-p.bytes, 0)
	data, err := opfile.Read(path, limit)
	if err != nil {
		where := from
		if where.File == "" {
			where = Pos{File: path}
		}
		switch {
		case errors.Is(err, opfile.ErrTooLarge):
			p.sink.errorf(where, "%v: the configuration may hold at most %d bytes in total", err, p.opts.maxInputBytes()).Hint =
				"include only configuration files; is a binary or log file being included?"
			p.stopped = true
		case errors.Is(err, opfile.ErrNotRegular) && lenient == includeSkipSpecial:
			p.sink.warnf(from, "%v; skipped", err).Hint = "keepalived skips it too; narrow the pattern to the configuration files"
		case errors.Is(err, opfile.ErrNotRegular):
			d := p.sink.errorf(where, "%v", err)
			if from.File == "" {
				d.Hint = "give -f the path of the configuration file"
			} else {
				d.Hint = "include only regular files holding configuration"
			}
		case from.File == "":
			p.sink.errorf(where, "cannot read configuration: %v", err).Hint = "check the path given with -f"
		case lenient != includeStrict:
			p.sink.warnf(from, "cannot read included file: %v", err).Hint = "use includer to make this an error"
		default:
			p.sink.errorf(from, "cannot read included file: %v", err)
		}
		return
	}
	p.readData(path, data, from)
}

func (p *preprocessor) readData(name string, data []byte, from Pos) {
	p.bytes += int64(len(data))
	if p.bytes > p.opts.maxInputBytes() {
		where := from
		if where.File == "" {
			where = Pos{File: name}
		}
		p.sink.errorf(where, "configuration is larger than %d bytes in total", p.opts.maxInputBytes()).Hint =
			"is a binary or log file being included?"
		p.stopped = true
		return
	}
	if bytes.IndexByte(data, 0) >= 0 {
		p.sink.errorf(Pos{File: name, Line: 1 + bytes.Count(data[:bytes.IndexByte(data, 0)], []byte{'\n'})},
			"file contains a NUL byte").Hint = "is a binary file being read as configuration?"
		return
	}
	p.files = append(p.files, name)
	p.stack = append(p.stack, name)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()

	if len(p.stack) == 1 {
		// Most lines of the main file become one line of output each.
		p.out = slices.Grow(p.out, bytes.Count(data, []byte{'\n'})+1)
	}
	// One copy of the whole file rather than one per line: the lines, and the words cut
	// from them, are parts of it.
	rest := string(data)
	lineNo := 0
	for len(rest) > 0 && !p.stopped {
		var raw string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			raw, rest = rest[:i], rest[i+1:]
		} else {
			raw, rest = rest, ""
		}
		lineNo++
		raw = strings.TrimRight(raw, "\r")
		if len(raw) > maxLineBytes {
			p.sink.errorf(Pos{File: name, Line: lineNo}, "line longer than %d bytes; ignored", maxLineBytes)
			continue
		}
		text, lead, cont, brace := decomment(raw)
		if p.pending != nil {
			if text == "" && !cont {
				p.pending = nil
				continue
			}
			if text != "" {
				p.pending.lines = append(p.pending.lines, text)
			}
			if !cont {
				p.pending = nil
			}
			continue
		}
		if text == "" {
			continue
		}
		l := srcLine{pos: Pos{File: name, Line: lineNo, Col: lead + 1}, text: text, exact: len(text), braceInComment: brace}
		l.fallback = l.pos.Col
		if len(p.stack) == 1 && lineNo <= len(p.opts.Places) {
			// A resolved text from core: the line stands for a statement of the operator's.
			l.pos, l.exact, l.fallback = p.opts.Places[lineNo-1], 0, p.opts.Places[lineNo-1].Col
		}
		p.line(l, cont, 0)
	}
	p.pending = nil // a definition continued past the end of its file ends with the file
}

// line runs one logical line through conditionals, definitions, generators, substitution and
// includes, in keepalived's order, and emits what is left.
func (p *preprocessor) line(l srcLine, cont bool, depth int) {
	if p.stopped {
		return
	}
	p.steps++
	if p.steps > 4*p.opts.maxLines() {
		p.sink.errorf(l.pos, "configuration needs more than %d expansion steps", 4*p.opts.maxLines()).Hint =
			"check ~SEQ/~LST ranges and recursive $NAME definitions"
		p.stopped = true
		return
	}
	if depth > maxExpansionDepth {
		p.sink.errorf(l.pos, "parameter expansion nested deeper than %d levels", maxExpansionDepth).Hint =
			"a $NAME definition probably refers to itself"
		return
	}
	for pass := 0; ; pass++ {
		if pass > maxExpansionDepth {
			p.sink.errorf(l.pos, "parameter substitution does not settle after %d rounds", maxExpansionDepth).Hint =
				"a $NAME definition probably refers to itself"
			return
		}
		if strings.HasPrefix(l.text, "@") {
			keep, rest, ok := p.conditional(l.text)
			if !ok || !keep {
				return
			}
			l = l.advance(len(l.text) - len(rest))
		}
		if name, value, ok := parseDefinition(l.text); ok {
			d := &definition{}
			if cont {
				if value != "" {
					d.lines = append(d.lines, value)
				}
				// A definition continued with '\' but never given a line still counts as
				// multi-line, so "$X= \" followed by lines builds X from those lines.
				p.pending = d
			} else {
				d.lines = []string{value}
			}
			p.defs[name] = d
			return
		}
		if strings.HasPrefix(l.text, "~SEQ") || strings.HasPrefix(l.text, "~LST") {
			p.generator(l, depth)
			return
		}
		if cont {
			p.sink.warnf(l.posAt(len(l.text)), "a trailing '\\' continues only $NAME= definitions; it is ignored here")
			cont = false
		}
		if strings.HasPrefix(l.text, "~") {
			break
		}
		if !strings.Contains(l.text, "$") {
			break
		}
		nl, rest, changed := p.substitute(l)
		if !changed {
			break
		}
		if len(nl.text) > maxLineBytes {
			p.sink.errorf(l.pos, "line grows past %d bytes after parameter substitution", maxLineBytes)
			return
		}
		if rest != nil {
			p.line(nl, false, depth+1)
			for _, r := range rest {
				p.line(srcLine{pos: Pos{File: l.pos.File, Line: l.pos.Line, Col: nl.fallback}, text: r, fallback: nl.fallback}, false, depth+1)
			}
			return
		}
		l = nl
	}
	if kind, pattern, ok := includeDirective(l.text); ok {
		p.include(l, kind, pattern)
		return
	}
	p.outBytes += len(l.text) + 64
	if p.outBytes > maxExpandedBytes {
		p.sink.errorf(l.pos, "configuration expands to more than %d MB", maxExpandedBytes>>20).Hint =
			"check ~SEQ/~LST ranges and multi-line $NAME definitions"
		p.stopped = true
		return
	}
	if len(p.out) >= p.opts.maxLines() {
		p.sink.errorf(l.pos, "configuration expands to more than %d lines", p.opts.maxLines()).Hint =
			"check ~SEQ/~LST ranges and recursive $NAME definitions"
		p.stopped = true
		return
	}
	p.out = append(p.out, l)
}

// advance drops n leading bytes (and the blanks after them) from the line, keeping columns right.
func (l srcLine) advance(n int) srcLine {
	rest := l.text[n:]
	trimmed := strings.TrimLeft(rest, " \t")
	n += len(rest) - len(trimmed)
	l.text = trimmed
	if n <= l.exact {
		l.pos.Col += n
		l.exact -= n
		l.fallback = l.pos.Col
	} else {
		l.exact = 0
	}
	return l
}

// conditional evaluates "@id rest" and "@^id rest": keep says whether the line applies to this
// node's config id. A line with nothing after the id is dropped, as keepalived does.
func (p *preprocessor) conditional(s string) (keep bool, rest string, ok bool) {
	neg := strings.HasPrefix(s, "@^")
	id := s[1:]
	if neg {
		id = s[2:]
	}
	i := strings.IndexAny(id, " \t")
	if i < 0 {
		return false, "", false
	}
	match := id[:i] == p.opts.ConfigID
	return match != neg, strings.TrimLeft(id[i:], " \t"), true
}

// parseDefinition recognises "$NAME=value".
func parseDefinition(s string) (name, value string, ok bool) {
	if len(s) < 2 || s[0] != '$' || !(isAlpha(s[1]) || s[1] == '_') {
		return "", "", false
	}
	i := 2
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	// No blank may stand before '=': keepalived reads "$X = 1" as a line, not a definition.
	if i >= len(s) || s[i] != '=' {
		return "", "", false
	}
	return s[1:i], strings.TrimSpace(s[i+1:]), true
}

func isAlpha(c byte) bool    { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isNameChar(c byte) bool { return isAlpha(c) || (c >= '0' && c <= '9') || c == '_' }

// substitute replaces each defined $NAME and ${NAME} once, left to right. A multi-line
// definition may only close a line; its first line joins the text and the others are returned
// in rest to be read as lines of their own.
func (p *preprocessor) substitute(l srcLine) (out srcLine, rest []string, changed bool) {
	s := l.text
	var b strings.Builder
	first := -1
	i := 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		b.WriteString(s[i:j])
		name, args, end, ok := parseReference(s, j)
		d := p.defs[name]
		if !ok || d == nil || (d.multiline() && end != len(s)) {
			b.WriteByte('$')
			i = j + 1
			continue
		}
		if len(args) > 0 && d.fn == nil {
			b.WriteByte('$')
			i = j + 1
			continue
		}
		if first < 0 {
			first = j
		}
		changed = true
		switch {
		case d.fn != nil:
			if len(args) < d.minArgs || len(args) > d.maxArgs {
				p.sink.errorf(l.posAt(j), "${%s} takes %d to %d arguments, got %d", name, d.minArgs, d.maxArgs, len(args))
				break
			}
			v, err := d.fn(args)
			if err != nil {
				p.sink.errorf(l.posAt(j), "%v", err)
			}
			b.WriteString(v)
		case d.multiline():
			b.WriteString(d.lines[0])
			rest = slices.Clone(d.lines[1:])
		case len(d.lines) == 1:
			b.WriteString(d.lines[0])
		}
		i = end
		if rest != nil {
			break
		}
	}
	out = l
	out.text = strings.TrimSpace(b.String())
	if first >= 0 {
		out.fallback = l.colAt(first)
		if first < out.exact {
			out.exact = first
		}
	}
	if rest == nil && changed && strings.TrimSpace(b.String()) == "" {
		// A definition that expands to nothing leaves an empty line, which is simply dropped.
		out.text = ""
	}
	return out, rest, changed
}

// parseReference reads "$NAME" or "${NAME args...}" at s[i]. A bare $NAME must be followed by a
// blank, ',', ')' or the end of the line, as in keepalived.
func parseReference(s string, i int) (name string, args []string, end int, ok bool) {
	j := i + 1
	if j < len(s) && s[j] == '{' {
		k := strings.IndexByte(s[j:], '}')
		if k < 0 {
			return "", nil, 0, false
		}
		inner := s[j+1 : j+k]
		fields := strings.Fields(inner)
		if len(fields) == 0 || !validName(fields[0]) || inner != strings.TrimLeft(inner, " \t") {
			return "", nil, 0, false
		}
		return fields[0], fields[1:], j + k + 1, true
	}
	k := j
	for k < len(s) && isNameChar(s[k]) {
		k++
	}
	if !validName(s[j:k]) {
		return "", nil, 0, false
	}
	if k < len(s) && !strings.ContainsRune(" \t,)", rune(s[k])) {
		return "", nil, 0, false
	}
	return s[j:k], nil, k, true
}

func validName(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// generator expands "~SEQ(var, start, step, end) text", "~SEQx(...)" and "~LST(vars, values...)
// text": the text is read once per value with $var set.
func (p *preprocessor) generator(l srcLine, depth int) {
	open := strings.IndexByte(l.text, '(')
	closeIdx := strings.IndexByte(l.text, ')')
	if open < 0 || closeIdx < open {
		p.sink.errorf(l.pos, "malformed %s: expected %s(...) followed by the text to repeat", l.text[:4], l.text[:4])
		return
	}
	head := strings.TrimSpace(l.text[1:open])
	spec := l.text[open+1 : closeIdx]
	if strings.HasPrefix(head, "LST") {
		closeIdx = lstClose(l.text, open)
		if closeIdx < 0 {
			p.sink.errorf(l.pos, "~LST is missing its closing ')'")
			return
		}
		spec = l.text[open+1 : closeIdx]
	}
	body := l.advance(closeIdx + 1)
	// Nothing after ')': keepalived 2.2.7 (lib/parser.c, read_line) still runs through the
	// values, setting the variable to each in turn and producing empty lines, which it skips.
	// So the lines that follow are read once, with the variable at its last value: a
	// vrrp_instance VI_${n} block after ~SEQ(n,1,1,20) gives VI_20 alone. vigil does the same
	// (setting the last value at once), and says so, as that is rarely what was meant.
	empty := strings.TrimSpace(body.text) == ""
	emptyWarning := func(set []string) {
		p.sink.warnf(l.pos, "~%s has nothing after ')' to repeat: as in keepalived, the lines that follow are read once, with %s",
			head, strings.Join(set, ", ")).Hint = "put what is to be repeated after ')' on the same line, e.g. a multi-line $DEFINITION holding the block"
	}
	switch head {
	case "SEQ", "SEQx":
		// The parameters may themselves use $NAME definitions.
		specLine, _, _ := p.substitute(srcLine{pos: l.pos, text: spec})
		vars, vals, err := parseSeq(specLine.text, head == "SEQx")
		if err != nil {
			p.sink.errorf(l.pos, "invalid ~%s(%s): %v", head, spec, err).Hint = "the form is ~SEQ(var, start, step, end); start and step may be left out"
			// The text is still read once, unexpanded, so that a block it opens stays balanced
			// and the rest of the file is checked as usual.
			if !empty {
				p.line(body, false, depth+1)
			}
			return
		}
		if empty {
			if len(vals) > 0 {
				p.defs[vars] = &definition{lines: []string{vals[len(vals)-1]}}
				emptyWarning([]string{"$" + vars + "=" + vals[len(vals)-1]})
			}
			return
		}
		for _, v := range vals {
			p.defs[vars] = &definition{lines: []string{v}}
			p.line(body, false, depth+1)
			if p.stopped {
				return
			}
		}
	case "LST":
		vars, sets, err := parseLst(spec)
		if err != nil {
			p.sink.errorf(l.pos, "invalid ~LST(%s): %v", spec, err).Hint = "the form is ~LST(var, v1, v2, ...) or ~LST({a, b}, {1, 2}, {3, 4})"
			if !empty {
				p.line(body, false, depth+1)
			}
			return
		}
		if empty {
			last := sets[len(sets)-1]
			var set []string
			for i, v := range vars {
				p.defs[v] = &definition{lines: []string{last[i]}}
				set = append(set, "$"+v+"="+last[i])
			}
			emptyWarning(set)
			return
		}
		for _, set := range sets {
			for i, v := range vars {
				p.defs[v] = &definition{lines: []string{set[i]}}
			}
			p.line(body, false, depth+1)
			if p.stopped {
				return
			}
		}
	default:
		p.sink.errorf(l.pos, "unknown generator ~%s", head).Hint = "vigil knows ~SEQ, ~SEQx and ~LST"
	}
}

// lstClose finds the ')' that ends a ~LST specification, skipping the {...} groups inside it.
func lstClose(s string, open int) int {
	depth := 0
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ')':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func parseSeq(spec string, hex bool) (string, []string, error) {
	parts := strings.Split(spec, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if len(parts) < 2 || len(parts) > 4 {
		return "", nil, fmt.Errorf("want 2 to 4 parts, have %d", len(parts))
	}
	name := parts[0]
	if !validName(name) {
		return "", nil, fmt.Errorf("%q is not a variable name", name)
	}
	nums := make([]int64, len(parts)-1)
	for i, s := range parts[1:] {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%q is not a number", s)
		}
		nums[i] = v
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		start, step = 1, 1
		if end < 0 {
			start = -1
		}
		if end < 1 {
			step = -1
		}
	case 2:
		start, end = nums[0], nums[1]
		step = 1
		if start > end {
			step = -1
		}
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
		if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
			return "", nil, fmt.Errorf("step %d never gets from %d to %d", step, start, end)
		}
	}
	if hex && (start < 0 || end < 0) {
		return "", nil, fmt.Errorf("~SEQx takes non-negative numbers only")
	}
	var vals []string
	for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
		if len(vals) >= maxSeqIterations {
			return "", nil, fmt.Errorf("more than %d values", maxSeqIterations)
		}
		if hex {
			vals = append(vals, strconv.FormatInt(v, 16))
		} else {
			vals = append(vals, strconv.FormatInt(v, 10))
		}
	}
	return name, vals, nil
}

// parseLst reads "var, v1, v2" or "{a, b}, {1, 2}, {3}" (missing values are empty).
func parseLst(spec string) ([]string, [][]string, error) {
	groups, err := splitLstGroups(spec)
	if err != nil {
		return nil, nil, err
	}
	if len(groups) < 2 {
		return nil, nil, fmt.Errorf("no values listed")
	}
	vars := groups[0]
	for _, v := range vars {
		if !validName(v) {
			return nil, nil, fmt.Errorf("%q is not a variable name", v)
		}
	}
	var sets [][]string
	for _, g := range groups[1:] {
		if len(g) > len(vars) {
			return nil, nil, fmt.Errorf("value set %v has more values than the %d variables", g, len(vars))
		}
		set := make([]string, len(vars))
		copy(set, g)
		sets = append(sets, set)
	}
	return vars, sets, nil
}

func splitLstGroups(spec string) ([][]string, error) {
	var groups [][]string
	s := strings.TrimSpace(spec)
	for s != "" {
		if s[0] == '{' {
			k := strings.IndexByte(s, '}')
			if k < 0 {
				return nil, fmt.Errorf("'{' without '}'")
			}
			var g []string
			for _, f := range strings.Split(s[1:k], ",") {
				g = append(g, strings.TrimSpace(f))
			}
			groups = append(groups, g)
			s = strings.TrimSpace(s[k+1:])
		} else {
			k := strings.IndexByte(s, ',')
			if k < 0 {
				k = len(s)
			}
			groups = append(groups, []string{strings.TrimSpace(s[:k])})
			s = s[k:]
		}
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("expected ',' before %q", s)
		}
		s = strings.TrimSpace(s[1:])
		if s == "" {
			return nil, fmt.Errorf("trailing ','")
		}
	}
	return groups, nil
}
