package sdk

import (
	"strings"
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{"": true, "yes": true, "On": true, "1": true, "TRUE": true, "no": false, "off": false, "0": false, "False": false} {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := (Param{Key: "tls_verify", Values: []string{"maybe"}}).Bool(); err == nil || !strings.HasPrefix(err.Error(), `tls_verify: "maybe"`) {
		t.Errorf("Bool of maybe: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"2": 2 * time.Second, "0.5": 500 * time.Millisecond, "500ms": 500 * time.Millisecond, "1m": time.Minute, "0": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "-2s", "soon", ""} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
	if _, err := (Param{Key: "timeout", Values: []string{"x"}}).Duration(); err == nil || !strings.HasPrefix(err.Error(), "timeout: ") {
		t.Errorf("Duration of x: %v", err)
	}
}
