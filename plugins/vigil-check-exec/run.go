package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/procrun"
	"github.com/vigil-ha/vigil/sdk/check"
)

// command is one configured command.
type command struct {
	argv    []string
	path    string // argv[0] resolved
	mode    mode
	dynamic bool
	cred    *syscall.Credential // nil: run as the plugin's user
	// check runs it: procrun owns how a check command is run (its settings, and one run
	// at a time), so that the benches measure what this plugin does.
	check *procrun.Check
}

// newCheck makes c.check from c's settings; grace is procrun's grace, 0: its default.
func (c *command) newCheck(grace time.Duration) {
	c.check = procrun.NewCheck(c.path, c.argv, procrun.CheckOptions{
		Cred: c.cred,
		// Nagios plugins print their answer on stdout; keep stderr out of it.
		DiscardStderr: c.mode == modeNagios,
		Grace:         grace,
	})
}

// run runs the command once through procrun (its own process group, TERM then KILL at the
// deadline, leftovers killed; not beside a previous run still under way) and reads its exit
// status by the mode.
func (c *command) run(ctx context.Context) check.CheckResponse {
	r := c.check.Run(ctx)
	if errors.Is(r.Err, procrun.ErrBusy) {
		// The probe did run, and found the command still stuck: a failure, as keepalived
		// skips the run of a script it is still timing out.
		return check.CheckResponse{Status: check.Critical, Message: r.Err.Error()}
	}
	metrics := map[string]float64{"run_seconds": r.Elapsed.Seconds()}
	switch r.Outcome {
	case procrun.TimedOut, procrun.Signaled:
		return check.CheckResponse{Status: check.Critical, Message: r.Describe(), Metrics: metrics}
	case procrun.NotStarted:
		return check.CheckResponse{Status: check.Critical, Message: r.Err.Error(), Metrics: metrics}
	}
	// Only the exit status and the output count: a child the command left holding its
	// output (procrun kills it) or a loaded machine slow to copy it changes neither.
	resp := c.read(r.ExitCode, r.FirstLine())
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
