// Command vigil-check-test is the host's test plugin. Each configured check has a mode:
//
//	ok       answers OK with the check's name
//	crash    exits the process in the middle of the probe
//	hang     never answers the probe, but the process keeps answering pings
//	stop     starts a sleeper child (its pid goes to the file in param pidfile), then stops
//	         itself with SIGSTOP: the process answers nothing any more
//	barrier  answers OK only once param count probes of the check are inside Check at the
//	         same moment; a probe whose context ends before that fails, saying how many
//	         were there. It proves that the probes of one process run concurrently.
//
// Two files beside the executable make it misbehave while it uses the CPU, for the start's
// bounds: with NAME.spin-start it spins forever before it shakes hands, with
// NAME.spin-configure every Configure spins forever (one at a time: one CPU is enough).
//
// An answer carries the plugin's pid as metric "pid" and a dynamic weight: param weight, or 7.
// Param warn makes Configure log its value at Warn level (with the check's name), so that a
// test can follow a plugin's log line into the host's log.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/vigil-ha/vigil/sdk/check"
)

type tester struct {
	checks check.Configured[conf]
	exe    string // this executable, for its spin-* files
	spin   sync.Mutex
}

// spinning reports whether the file exe.what exists.
func spinning(exe, what string) bool {
	if exe == "" {
		return false
	}
	_, err := os.Stat(exe + "." + what)
	return err == nil
}

// spin uses the CPU forever.
func spin() {
	for n := 0; ; n++ {
	}
}

// conf is one configured check: its params, and its barrier in mode barrier.
type conf struct {
	ps   map[string]string
	gate *barrier
}

// barrier lets probes through once count of them wait at the same time.
type barrier struct {
	count   int
	mu      sync.Mutex
	waiting int
	release chan struct{} // closed when count probes waited together; then replaced
}

// wait blocks until count probes (this one included) wait at the same moment, or ctx ends.
func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	ch := b.release
	b.waiting++
	if b.waiting == b.count {
		close(ch)
		b.waiting, b.release = 0, make(chan struct{})
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-ch: // released after all, while this probe gave up
		return nil
	default:
	}
	n := b.waiting
	b.waiting--
	return fmt.Errorf("barrier: %d of %d probes inside Check at once when the context ended: %w", n, b.count, ctx.Err())
}

func (t *tester) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "test", Version: "1.0.0", Params: []check.ParamSpec{
		{Name: "mode", Type: check.TypeString, Required: true, Description: "ok, crash, hang, stop or barrier"},
		{Name: "pidfile", Type: check.TypeString},
		{Name: "weight", Type: check.TypeInt},
		{Name: "count", Type: check.TypeInt, Description: "barrier: the probes to wait for"},
		{Name: "warn", Type: check.TypeString, Description: "a line to log at Warn level on Configure"},
	}}, nil
}

func (t *tester) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	if spinning(t.exe, "spin-configure") {
		t.spin.Lock()
		spin()
	}
	ps := map[string]string{}
	for _, p := range req.Params {
		ps[p.Key] = p.Value()
	}
	c := conf{ps: ps}
	switch ps["mode"] {
	case "ok", "crash", "hang", "stop":
	case "barrier":
		n, err := strconv.Atoi(ps["count"])
		if err != nil || n < 1 {
			return check.ConfigureResponse{}, fmt.Errorf("mode barrier: count %q: want a positive number", ps["count"])
		}
		c.gate = &barrier{count: n, release: make(chan struct{})}
	default:
		return check.ConfigureResponse{}, fmt.Errorf("mode %q: want ok, crash, hang, stop or barrier", ps["mode"])
	}
	t.checks.Keep(req, c)
	slog.Info("configured", "check", req.Name, "mode", ps["mode"])
	if w := ps["warn"]; w != "" {
		slog.Warn(w, "check", req.Name)
	}
	return check.ConfigureResponse{}, nil
}

func (t *tester) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	c, err := t.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	ps := c.ps
	switch ps["mode"] {
	case "crash":
		os.Exit(3)
	case "hang":
		select {}
	case "stop":
		sleeper := exec.Command("sleep", "300")
		if err := sleeper.Start(); err != nil {
			return check.CheckResponse{}, err
		}
		if err := os.WriteFile(ps["pidfile"], []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
			return check.CheckResponse{}, err
		}
		// Another thread may still run for a moment after SIGSTOP: never answer anyway.
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		select {}
	case "barrier":
		if err := c.gate.wait(ctx); err != nil {
			return check.CheckResponse{}, err
		}
	}
	w := 7
	if v, ok := ps["weight"]; ok {
		w, _ = strconv.Atoi(v)
	}
	return check.CheckResponse{Status: check.OK, Message: req.Name, Weight: &w, Metrics: map[string]float64{"pid": float64(os.Getpid())}}, nil
}

func main() {
	exe, _ := os.Executable()
	if spinning(exe, "spin-start") {
		spin()
	}
	check.Serve(&tester{exe: exe})
}
