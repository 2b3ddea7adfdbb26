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

// parseReport sums the self column by where the samples were: kernel or user space.
func TestParseReport(t *testing.T) {
	text := `# Samples: 12K of event 'cpu-clock:ppp'
#
# Overhead  Symbol
# ........  ......
#
    20.50%  [k] finish_task_switch.isra.0
     3.25%  [.] runtime.mallocgc
     1.25%  [k] __tcp_transmit_skb
     0.50%  [.] 0x000055a160558cc0
`
	k := parseReport(text)
	if k.Kernel != 21.75 || k.User != 3.75 {
		t.Fatalf("parseReport = %+v; want kernel 21.75, user 3.75", k)
	}
}
