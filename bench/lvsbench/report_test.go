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

// parseReport reads perf report's children column; a symbol listed twice (two comms) keeps
// its larger share.
func TestParseReport(t *testing.T) {
	text := `# Samples: 28K of event 'cpu-clock:ppp'
#
# Children      Self  Symbol
# ........  ........  ......
#
    25.48%     0.06%  [k] do_syscall_64
    24.27%     0.34%  [.] internal/runtime/syscall/linux.Syscall6
    11.71%     0.02%  [k] __x64_sys_connect
     6.95%     0.04%  [k] __fput
     2.32%     0.01%  [k] __x64_sys_socket
     1.10%     0.01%  [k] __x64_sys_socket
`
	k := parseReport(text)
	want := kernelShare{Connect: 11.71, Close: 6.95, Socket: 2.32}
	if k != want {
		t.Fatalf("parseReport = %+v; want %+v", k, want)
	}
	if got := k.probeCalls(); got < 20.97 || got > 20.99 {
		t.Errorf("probeCalls = %v; want 20.98", got)
	}
}
