package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a configuration file. Line and Col count from 1; Col is a byte column.
// A zero Col means "the whole line" (used when macro expansion moved text around).
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return "<input>"
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity says whether a diagnostic stops the configuration from running.
type Severity int

const (
	// SevError makes the configuration unusable: vigil -t exits non-zero.
	SevError Severity = iota
	// SevWarning is reported but the configuration can run.
	SevWarning
)

func (s Severity) String() string {
	if s == SevWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a configuration, with the place it was found.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Msg      string
	// Hint, when set, tells the operator what to do ("did you mean ...?").
	Hint string
	// Unsupported marks a keyword keepalived accepts that vigil does not implement.
	Unsupported bool
}

// String renders the diagnostic as FILE:LINE:COL: severity: message; hint.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	b.WriteString(d.Msg)
	if d.Hint != "" {
		b.WriteString("; ")
		b.WriteString(d.Hint)
	}
	return b.String()
}

// Diagnostics collects every problem of a load, so that an operator sees all of them at once.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SevError {
			return true
		}
	}
	return false
}

// Errors returns only the diagnostics of error severity.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == SevError {
			out = append(out, d)
		}
	}
	return out
}

// Error makes Diagnostics usable as an error value: one diagnostic per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders diagnostics by file, line and column, keeping the order of equal places.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// maxDiagnostics bounds what one load reports: past it, a file is not a configuration with
// mistakes but something else, and more lines help nobody.
const maxDiagnostics = 500

type diagSink struct {
	list    Diagnostics
	dropped Diagnostic // written to when the list is full, so callers can still set a Hint
	// droppedBy counts what was not listed, by severity, for the closing summary.
	droppedBy [2]int
}

func (s *diagSink) full() bool { return len(s.list) >= maxDiagnostics }

// summarize closes a list that overflowed with one line counting what was left out; it is an
// error when any error was left out, so that HasErrors stays true to the whole file.
func (s *diagSink) summarize(p Pos) {
	errs, warns := s.droppedBy[SevError], s.droppedBy[SevWarning]
	if errs+warns == 0 {
		return
	}
	sev := SevWarning
	if errs > 0 {
		sev = SevError
	}
	s.list = append(s.list, Diagnostic{Pos: p, Severity: sev,
		Msg: fmt.Sprintf("%d more problem(s) not shown (%d error(s), %d warning(s))", errs+warns, errs, warns)})
}

func (s *diagSink) errorf(p Pos, format string, args ...any) *Diagnostic {
	return s.add(p, SevError, format, args...)
}

func (s *diagSink) warnf(p Pos, format string, args ...any) *Diagnostic {
	return s.add(p, SevWarning, format, args...)
}

func (s *diagSink) add(p Pos, sev Severity, format string, args ...any) *Diagnostic {
	if s.full() {
		s.droppedBy[sev]++
		s.dropped = Diagnostic{}
		return &s.dropped
	}
	s.list = append(s.list, Diagnostic{Pos: p, Severity: sev, Msg: fmt.Sprintf(format, args...)})
	return &s.list[len(s.list)-1]
}
