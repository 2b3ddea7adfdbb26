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

func TestFalseDowns(t *testing.T) {
	vigil := "x [INFO]  vigil.check.vigil: check changed: check=a up=false detail=\"plugin tcp: timed out\"\n" +
		"x [INFO]  vigil.check.vigil: check changed: check=a up=true\nx [INFO] something else up=false\n"
	if n := falseDowns("vigil", []byte(vigil)); n != 1 {
		t.Errorf("vigil: %d downs, want 1", n)
	}
	ka := "Removing service [198.51.100.11]:tcp:8000 to VS [192.0.2.100]:tcp:80\n" +
		"Shutting down service [198.51.100.11]:tcp:8000 from VS [192.0.2.100]:tcp:80\n"
	if n := falseDowns("keepalived", []byte(ka)); n != 1 {
		t.Errorf("keepalived: %d downs, want 1", n)
	}
}
