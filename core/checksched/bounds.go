package checksched

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a check's result may carry. A plugin, or a check child that runs them, is code that
// vigil does not trust to be bug-free: whatever it answers, what vigil keeps of it, logs,
// forwards to the vrrp process and shows in `vigil status` stays within these bounds.
const (
	// MaxWeight bounds a dynamic weight either way, as keepalived bounds a tracked script's
	// weight: more cannot move a VRRP priority (1..254) any further.
	MaxWeight = 253
	// MaxMessage is the most bytes of a probe's message that are kept ("short and on one
	// line", says the SDK); the rest is cut, and the cut is marked.
	MaxMessage = 1024
	// MaxMetrics is the most metrics of one probe that are kept, and MaxMetricName the
	// longest name.
	MaxMetrics    = 64
	MaxMetricName = 128
)

// ValidWeight reports whether w is a weight a check may report.
func ValidWeight(w int64) bool { return w >= -MaxWeight && w <= MaxWeight }

// Weight converts a check's dynamic weight from the integer type one shape of its result
// carries to the next one's: nil (the check reported none) stays nil, and the value is
// copied, never shared between shapes. Every shape on the way bounds the weight by
// ValidWeight where it comes from code vigil does not trust, so no conversion truncates.
//
// A check result, on its way from a check plugin to the VRRP state machine:
//
//  1. sdk/check.CheckResponse (Weight *int), in the plugin, crosses the plugin's gRPC
//     connection as the SDK's own message (*int32) and is a CheckResponse again in the
//     check child (the SDK owns that leg).
//  2. core/plugin answer: a Result (Weight *int), bounded (status, weight, message,
//     metrics), for the scheduler. A probe that could not run is a Result too (NoResult).
//  3. core/checksched: a Change (Weight *int) when rise or fall is crossed or the dynamic
//     weight changes; Result is per probe, Change per threshold crossing.
//  4. core/child, checkServer.forward: a childpb.CheckState (Weight *int32, numbered by
//     epoch and sequence) to core, and an lvs.Result (*int) for a real server's checker.
//  5. core/supervisor: admitted (bounded again), kept for replays and `vigil status`
//     (CheckStatus, *int32) and forwarded unchanged to the vrrp child's SetCheck.
//  6. core/child, vrrpServer.SetCheck: admitted (tracked, newer, bounded) and handed to
//     core/vrrp's Engine.SetCheck as a name, up and a dynamic weight (*int).
//  7. core/vrrp, Engine.SetCheck: the check index gives each instance that tracks the
//     check its weight and direction, and the state becomes that instance's fsm.Tracker
//     (upDown), the one shape the state machine's priority is computed from: the unit
//     turns its trackers into PriorityChanged and FaultChanged events (fsm.Effective).
func Weight[To, From ~int | ~int32 | ~int64](w *From) *To {
	if w == nil {
		return nil
	}
	v := To(*w)
	return &v
}

// Message returns s as vigil keeps a probe's message: valid UTF-8, on one line (control
// characters, which could also move a terminal's cursor in `vigil status`, become spaces),
// and at most MaxMessage bytes, a cut one ending with "…".
func Message(s string) string {
	if len(s) <= MaxMessage && clean(s) {
		return s // the usual case: nothing to copy
	}
	// Only a prefix is worth cleaning: no byte becomes more than 3 (U+FFFD).
	long := len(s) > 4*MaxMessage
	if long {
		s = s[:4*MaxMessage]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= MaxMessage && !long {
		return s
	}
	const mark = "…"
	n := min(len(s), MaxMessage-len(mark))
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// clean reports whether s is valid UTF-8 without control characters.
func clean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Metrics returns the metrics vigil keeps of m: those with a finite value and a name of at
// most MaxMetricName bytes of clean text (see Message), and of those at most MaxMetrics, the
// first by name. A value that is not finite cannot be written as JSON (`vigil status`); it
// says nothing anyway. It returns m itself when everything in it may stay.
func Metrics(m map[string]float64) map[string]float64 {
	if len(m) <= MaxMetrics {
		ok := true
		for k, v := range m {
			if !validMetric(k, v) {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
	}
	names := make([]string, 0, min(len(m), 4*MaxMetrics))
	for k, v := range m {
		if validMetric(k, v) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	out := make(map[string]float64, min(len(names), MaxMetrics))
	for _, k := range names[:min(len(names), MaxMetrics)] {
		out[k] = m[k]
	}
	return out
}

func validMetric(name string, v float64) bool {
	return name != "" && len(name) <= MaxMetricName && clean(name) && !math.IsNaN(v) && !math.IsInf(v, 0)
}
