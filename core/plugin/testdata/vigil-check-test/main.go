// Command vigil-check-test is the host's test plugin. Each configured check has a mode:
//
//	ok     answers OK with the check's name
//	crash  exits the process in the middle of the probe
//	hang   never answers the probe, but the process keeps answering pings
//	stop   starts a sleeper child (its pid goes to the file in param pidfile), then stops
//	       itself with SIGSTOP: the process answers nothing any more
//
// An answer carries the plugin's pid as metric "pid" and a dynamic weight: param weight, or 7.
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
	mu     sync.Mutex
	checks map[string]map[string]string
}

func (t *tester) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "test", Version: "1.0.0", Params: []check.ParamSpec{
		{Name: "mode", Type: check.TypeString, Required: true, Description: "ok, crash, hang or stop"},
		{Name: "pidfile", Type: check.TypeString},
		{Name: "weight", Type: check.TypeInt},
	}}, nil
}

func (t *tester) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	ps := map[string]string{}
	for _, p := range req.Params {
		ps[p.Key] = p.Value()
	}
	switch ps["mode"] {
	case "ok", "crash", "hang", "stop":
	default:
		return check.ConfigureResponse{}, fmt.Errorf("mode %q: want ok, crash, hang or stop", ps["mode"])
	}
	t.mu.Lock()
	t.checks[req.Name] = ps
	t.mu.Unlock()
	slog.Info("configured", "check", req.Name, "mode", ps["mode"])
	return check.ConfigureResponse{}, nil
}

func (t *tester) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	t.mu.Lock()
	ps, ok := t.checks[req.Name]
	t.mu.Unlock()
	if !ok {
		return check.CheckResponse{}, fmt.Errorf("%s is not configured", req.Name)
	}
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
	}
	w := 7
	if v, ok := ps["weight"]; ok {
		w, _ = strconv.Atoi(v)
	}
	return check.CheckResponse{Status: check.OK, Message: req.Name, Weight: &w, Metrics: map[string]float64{"pid": float64(os.Getpid())}}, nil
}

func main() { check.Serve(&tester{checks: map[string]map[string]string{}}) }
