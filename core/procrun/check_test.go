package procrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckOneRunAtATime: a Check run while the previous one is under way starts nothing and
// says why; once that run is over, the next starts.
func TestCheckOneRunAtATime(t *testing.T) {
	dir := t.TempDir()
	started, stop := filepath.Join(dir, "started"), filepath.Join(dir, "stop")
	c := NewCheck("/bin/sh", []string{"/bin/sh", "-c", "echo run >> " + started + "; while [ ! -e " + stop + " ]; do sleep 0.05; done"}, CheckOptions{})
	first := make(chan Result)
	go func() { first <- c.Run(context.Background()) }()
	waitFile(t, started)
	// The deadline only bounds a second copy, were one started: it would wait for stop.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r := c.Run(ctx); r.Outcome != NotStarted || !errors.Is(r.Err, ErrBusy) {
		t.Errorf("second run beside the first: %s, %v; want not started, %v", r.Outcome, r.Err, ErrBusy)
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-first; !r.Success() {
		t.Errorf("first run: %s", r.Describe())
	}
	if r := c.Run(context.Background()); !r.Success() {
		t.Errorf("run after the first ended: %s", r.Describe())
	}
	if b, _ := os.ReadFile(started); string(b) != "run\nrun\n" {
		t.Errorf("the command ran %q, want twice", b)
	}
}

// TestCheckDiscardStderr: the option keeps standard error out of the output; by default both
// are kept.
func TestCheckDiscardStderr(t *testing.T) {
	argv := []string{"/bin/sh", "-c", "echo err >&2; echo out"}
	for _, tc := range []struct {
		discard bool
		want    string
	}{{false, "err\nout\n"}, {true, "out\n"}} {
		r := NewCheck("/bin/sh", argv, CheckOptions{DiscardStderr: tc.discard}).Run(context.Background())
		if !r.Success() || string(r.Output) != tc.want {
			t.Errorf("DiscardStderr %v: %s, output %q; want exit 0, %q", tc.discard, r.Describe(), r.Output, tc.want)
		}
	}
}
