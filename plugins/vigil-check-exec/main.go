// Command vigil-check-exec is vigil's check plugin for commands and scripts: keepalived's
// vrrp_script and MISC_CHECK run through it, and so does any Nagios-style check binary. It
// is the one check that forks a process per probe, by its nature. See README.md.
package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/vigil-ha/vigil/core/script"
	"github.com/vigil-ha/vigil/sdk/check"
)

func main() { check.Serve(newExecer()) }

// execer keeps the configured commands by check name; vigil calls it concurrently.
type execer struct {
	checks check.Configured[*command]
}

var _ check.Checker = (*execer)(nil)

func newExecer() *execer { return &execer{} }

// mode says how an exit status reads.
type mode string

const (
	// modeScript is keepalived's vrrp_script: 0 is success, anything else failure.
	modeScript mode = "vrrp_script"
	// modeMisc is keepalived's MISC_CHECK: 0 success, anything else failure; with dynamic
	// (misc_dynamic), 1 is failure and 2..255 success with weight status-2.
	modeMisc mode = "misc_check"
	// modeNagios is the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
	// the first line of output the message, perfdata after "|" the metrics.
	modeNagios mode = "nagios"
)

func (x *execer) Describe(context.Context) (check.Info, error) {
	return check.Info{
		Name:        "exec",
		Version:     "0.1.0",
		Description: "runs a command per probe and reads its exit status (vrrp_script, MISC_CHECK, Nagios plugins)",
		Params: []check.ParamSpec{
			{Name: "command", Type: check.TypeList, Required: true, Description: "the program and its arguments, one word each; a program without a slash is looked up in PATH"},
			{Name: "mode", Type: check.TypeString, Default: string(modeScript), Description: "how the exit status reads: vrrp_script, misc_check or nagios"},
			{Name: "dynamic", Type: check.TypeBool, Default: "no", Description: "misc_check only: exit status 2..255 is success with weight status-2 (keepalived's misc_dynamic)"},
			{Name: "user", Type: check.TypeList, Description: "run as USER [GROUP] (keepalived's script_user); default: the plugin's own user"},
			{Name: "secure", Type: check.TypeBool, Default: "no", Description: "refuse a program that, or whose directories, others can change (keepalived's enable_script_security)"},
		},
	}, nil
}

func (x *execer) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	c, warnings, err := parse(req.Params)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	x.checks.Keep(req, c)
	return check.ConfigureResponse{Warnings: warnings}, nil
}

func (x *execer) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	c, err := x.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	// Stop the command a little before the probe's deadline, so that the answer saying so
	// (and not a bare deadline error) reaches vigil in time. A command that traps the TERM
	// holds its answer up to procrun's grace longer; vigil then counts the probe as timed
	// out all the same.
	if dl, ok := ctx.Deadline(); ok {
		margin := min(50*time.Millisecond, time.Until(dl)/10)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		defer cancel()
	}
	return c.run(ctx), nil
}

// parse reads and checks the params of one configured command.
func parse(params []check.Param) (*command, []string, error) {
	c := &command{mode: modeScript}
	var secure bool
	var warnings []string
	for _, p := range params {
		switch p.Key {
		case "command":
			c.argv = p.Values
		case "mode":
			switch m := mode(p.Value()); m {
			case modeScript, modeMisc, modeNagios:
				c.mode = m
			default:
				return nil, nil, fmt.Errorf("mode %q: use vrrp_script, misc_check or nagios", p.Value())
			}
		case "dynamic":
			b, err := p.Bool()
			if err != nil {
				return nil, nil, err
			}
			c.dynamic = b
		case "user":
			cred, err := script.LookupUserWords(p.Values)
			if err != nil {
				return nil, nil, err
			}
			c.cred = cred
		case "secure":
			b, err := p.Bool()
			if err != nil {
				return nil, nil, err
			}
			secure = b
		default:
			return nil, nil, fmt.Errorf("unknown param %q (known: command, mode, dynamic, user, secure)", p.Key)
		}
	}
	if len(c.argv) == 0 || c.argv[0] == "" {
		return nil, nil, fmt.Errorf("command is required: the program to run and its arguments")
	}
	if c.dynamic && c.mode != modeMisc {
		return nil, nil, fmt.Errorf("dynamic applies to mode misc_check only")
	}
	path, err := exec.LookPath(c.argv[0])
	if err != nil {
		// keepalived keeps such a script and lets it fail; a node may get the file later.
		warnings = append(warnings, fmt.Sprintf("%s: %v; every probe fails until it exists", c.argv[0], err))
		path = c.argv[0]
	} else if secure {
		if err := script.CheckSecureFor(path, c.cred); err != nil {
			return nil, nil, err
		}
	}
	c.path = path
	c.newCheck(0)
	return c, warnings, nil
}
