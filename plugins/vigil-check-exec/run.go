package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/script"
	"github.com/vigil-ha/vigil/sdk/check"
)

// command is one configured command.
type command struct {
	argv    []string
	path    string // argv[0] resolved
	mode    mode
	dynamic bool
	cred    *syscall.Credential // nil: run as the plugin's user
}

// maxOutput bounds what is kept of a command's output: only its first line is used.
const maxOutput = 4096

// run runs the command once, in its own process group so that a timeout kills everything it
// started and not only the shell, and reads its exit status by the mode.
func (c *command) run(ctx context.Context) check.CheckResponse {
	start := time.Now()
	cmd := exec.CommandContext(ctx, c.path, c.argv[1:]...)
	cmd.Args[0] = c.argv[0]
	// SIGKILL if the plugin dies mid-probe (vigil killed it, or vigil died): the command's
	// own group is not the plugin's, so killing the plugin's group would not reach it. (Its
	// children, in that group, run on to their end, as under keepalived; vigil.service's
	// KillMode ends them with the service.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the output pipe open must not hold the probe past its end.
	cmd.WaitDelay = 100 * time.Millisecond
	out := &script.Limited{Max: maxOutput}
	cmd.Stdout = out
	if c.mode != modeNagios {
		cmd.Stderr = out // Nagios plugins print their answer on stdout; keep stderr out of it
	}
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited 0 but its output pipe outlived WaitDelay: a child it left
		// holding the pipe, or a machine too loaded to finish copying the output in time.
		// The exit status is the answer (keepalived never reads a script's output), and
		// counting this as a failure made succeeding scripts fail under load.
		err = nil
	}
	// Whatever the command left running in its group goes with it, as keepalived does.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	metrics := map[string]float64{"run_seconds": time.Since(start).Seconds()}
	line := script.FirstLine(out.Bytes())
	if ctx.Err() != nil {
		return check.CheckResponse{Status: check.Critical, Message: "timed out; killed its process group", Metrics: metrics}
	}
	status := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return check.CheckResponse{Status: check.Critical, Message: err.Error(), Metrics: metrics}
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return check.CheckResponse{Status: check.Critical, Message: "killed by " + ws.Signal().String(), Metrics: metrics}
		}
		status = ee.ExitCode()
	}
	resp := c.read(status, line)
	for k, v := range metrics {
		if resp.Metrics == nil {
			resp.Metrics = map[string]float64{}
		}
		resp.Metrics[k] = v
	}
	return resp
}

// read turns an exit status and the first line of output into an outcome.
func (c *command) read(status int, line string) check.CheckResponse {
	msg := func(def string) string {
		if line != "" {
			return line
		}
		return def
	}
	switch c.mode {
	case modeNagios:
		text, perf, _ := strings.Cut(line, "|")
		resp := check.CheckResponse{Message: strings.TrimSpace(text), Metrics: perfdata(perf)}
		switch status {
		case 0:
			resp.Status = check.OK
		case 1:
			resp.Status = check.Warning
		case 2:
			resp.Status = check.Critical
		default:
			resp.Status = check.Unknown
		}
		if resp.Message == "" {
			resp.Message = fmt.Sprintf("exit status %d", status)
		}
		return resp
	case modeMisc:
		if c.dynamic && status >= 2 {
			w := status - 2
			return check.CheckResponse{Status: check.OK, Message: msg(fmt.Sprintf("exit status %d: weight %d", status, w)), Weight: &w}
		}
	}
	if status == 0 {
		return check.CheckResponse{Status: check.OK, Message: line}
	}
	return check.CheckResponse{Status: check.Critical, Message: msg(fmt.Sprintf("exit status %d", status))}
}

// perfdata reads Nagios performance data, "label=value[UOM];warn;crit;min;max ...", into
// metrics by label. Labels may be quoted with '; values that are not numbers are skipped.
func perfdata(s string) map[string]float64 {
	var out map[string]float64
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		var label string
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return out
			}
			label, s = s[1:1+end], s[2+end:]
		} else {
			i := strings.IndexByte(s, '=')
			if i < 0 {
				return out
			}
			label, s = s[:i], s[i:]
		}
		if !strings.HasPrefix(s, "=") {
			return out
		}
		s = s[1:]
		field, rest, _ := strings.Cut(s, " ")
		s = rest
		value, _, _ := strings.Cut(field, ";")
		value = strings.TrimRight(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%")
		if v, err := strconv.ParseFloat(value, 64); err == nil && label != "" {
			if out == nil {
				out = map[string]float64{}
			}
			out[label] = v
		}
	}
	return out
}
