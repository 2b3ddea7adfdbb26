package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// includeKind carries keepalived's include variants: which problems are errors.
type includeKind struct {
	name      string
	readable  bool // an unreadable file is an error
	match     bool // a pattern matching nothing is an error
	wildcard  bool // each wildcard alternative must match something
	braceEach bool // each brace alternative must match something
}

// includeDirective recognises "include", "includer", "includem", "includew", "includeb" and
// "includea" followed by a blank.
func includeDirective(s string) (includeKind, string, bool) {
	word, rest, ok := strings.Cut(s, " ")
	if w, r, ok2 := strings.Cut(s, "\t"); ok2 && len(w) < len(word) {
		word, rest, ok = w, r, true
	}
	if !ok {
		return includeKind{}, "", false
	}
	k := includeKind{name: word}
	switch word {
	case "include":
	case "includer":
		k.readable = true
	case "includem":
		k.readable, k.match = true, true
	case "includew":
		k.readable, k.match, k.wildcard = true, true, true
	case "includeb":
		k.readable, k.braceEach = true, true
	case "includea":
		k.readable, k.match, k.wildcard, k.braceEach = true, true, true, true
	default:
		return includeKind{}, "", false
	}
	return k, strings.TrimSpace(rest), true
}

// include resolves an include line relative to the including file's directory and reads the
// matching files in order.
func (p *preprocessor) include(l srcLine, k includeKind, pattern string) {
	if p.opts.DisableIncludes {
		p.sink.errorf(l.pos, "include is disabled here")
		return
	}
	if pattern == "" {
		p.sink.errorf(l.pos, "%s needs a file name or pattern", k.name)
		return
	}
	if words, err := splitCommand(pattern); err == nil && len(words) == 1 {
		pattern = words[0]
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(p.pwd(), pattern)
	}
	alts, err := expandBraces(pattern)
	if err != nil {
		p.sink.errorf(l.pos, "%s %q: %v", k.name, pattern, err)
		return
	}
	for _, alt := range alts {
		if !slices.Contains(p.includes, alt) {
			p.includes = append(p.includes, alt)
		}
	}
	var files []string
	wildFile := map[string]bool{} // files matched by a wildcard, not named outright
	for _, alt := range alts {
		matches, err := filepath.Glob(alt)
		if err != nil {
			p.sink.errorf(l.pos, "%s %q: bad pattern: %v", k.name, alt, err)
			continue
		}
		wild := strings.ContainsAny(alt, "*?[")
		if len(matches) == 0 && ((k.braceEach && len(alts) > 1) || (k.wildcard && wild)) {
			p.sink.errorf(l.pos, "%s: %q matches no file", k.name, alt)
		}
		for _, m := range matches {
			if !slices.Contains(files, m) {
				files = append(files, m)
				wildFile[m] = wild
			}
		}
	}
	if len(files) == 0 {
		msg := fmt.Sprintf("%s %q matches no file", k.name, pattern)
		switch {
		case k.match || p.opts.StrictIncludes:
			p.sink.errorf(l.pos, "%s", msg).Hint = "check the path; relative paths are resolved from the including file's directory"
		case !k.braceEach:
			p.sink.warnf(l.pos, "%s", msg).Hint = "use includem, or run with --strict-includes, to make this an error"
		}
		return
	}
	// Plain include keeps keepalived's leniency: an unreadable match is reported but does not
	// stop the configuration, nor does a wildcard match that is not a regular file (keepalived
	// skips a conf.d subdirectory the same way). A file named outright that is a directory, a
	// device or a FIFO is an error though, where keepalived only warns: nobody means to include
	// /dev/zero, and a configuration missing what the include should have given is the worse
	// surprise on the day it reloads.
	for _, f := range files {
		lenient := includeStrict
		if !k.readable && !p.opts.StrictIncludes {
			lenient = includeUnreadable
			if wildFile[f] {
				lenient = includeSkipSpecial
			}
		}
		p.readFileAs(f, l.pos, lenient)
	}
}

// expandBraces expands csh-style braces: "a{b,c{d,e}}f" gives abf, acdf, acef.
func expandBraces(s string) ([]string, error) {
	const maxAlternatives = 1024
	out := []string{""}
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			for j := range out {
				out[j] += s[i : i+2]
			}
			i += 2
			continue
		}
		if c != '{' {
			for j := range out {
				out[j] += string(c)
			}
			i++
			continue
		}
		end, parts, ok := braceGroup(s, i)
		if !ok {
			for j := range out {
				out[j] += string(c)
			}
			i++
			continue
		}
		var expanded []string
		for _, part := range parts {
			sub, err := expandBraces(part)
			if err != nil {
				return nil, err
			}
			expanded = append(expanded, sub...)
		}
		var next []string
		for _, prefix := range out {
			for _, e := range expanded {
				next = append(next, prefix+e)
				if len(next) > maxAlternatives {
					return nil, fmt.Errorf("brace expansion gives more than %d names", maxAlternatives)
				}
			}
		}
		out = next
		i = end + 1
	}
	return out, nil
}

// braceGroup finds the '}' matching the '{' at s[i] and the comma-separated parts between
// them (commas in nested braces do not split). A group with no comma is not expanded.
func braceGroup(s string, i int) (int, []string, bool) {
	depth := 0
	start := i + 1
	var parts []string
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				parts = append(parts, s[start:j])
				return j, parts, len(parts) > 1
			}
		case ',':
			if depth == 1 {
				parts = append(parts, s[start:j])
				start = j + 1
			}
		}
	}
	return 0, nil, false
}
