package main

import (
	"testing"
	"time"
)

// TestStatOfNotConverged: a reload that did not converge (-1) counts as the longest, so
// that the median of [-1, 13 s] is "> 2 min", not 13 s.
func TestStatOfNotConverged(t *testing.T) {
	s := statOf([]time.Duration{-1, 13 * time.Second, 2 * time.Second})
	if s.med != 13*time.Second || s.lo != 2*time.Second || s.hi != -1 {
		t.Fatalf("%+v", s)
	}
	if s := statOf([]time.Duration{-1, 13 * time.Second}); s.med != -1 || s.lo != 13*time.Second {
		t.Fatalf("%+v", s)
	}
}
