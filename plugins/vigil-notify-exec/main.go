// Command vigil-notify-exec is vigil's notify plugin for scripts: keepalived's notify_master,
// notify_backup, notify_fault, notify_stop, notify_deleted and the generic notify script run
// through it, with keepalived's arguments, as script_user. See README.md.
package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"github.com/vigil-ha/vigil/core/script"
	"github.com/vigil-ha/vigil/sdk/notify"
)

func main() { notify.Serve(newExecer()) }

// execer keeps the configured scripts by notifier name; vigil calls it concurrently.
type execer struct {
	scripts notify.Configured[*command]
}

var _ notify.Notifier = (*execer)(nil)

func newExecer() *execer { return &execer{} }

// command is one configured script.
type command struct {
	argv    []string
	generic bool
	states  []string            // empty: every state
	cred    *syscall.Credential // nil: the plugin's own user
}

var knownStates = []string{"MASTER", "BACKUP", "FAULT", "STOP", "DELETED"}

func (x *execer) Describe(context.Context) (notify.Info, error) {
	return notify.Info{
		Name:        "exec",
		Version:     "0.1.0",
		Description: "runs a program per event: keepalived's notify scripts, or any command",
		Params: []notify.ParamSpec{
			{Name: "command", Type: notify.TypeList, Required: true, Description: "the program and its arguments, one word each"},
			{Name: "generic", Type: notify.TypeBool, Default: "no", Description: "append keepalived's TYPE NAME STATE PRIORITY arguments (the generic notify script)"},
			{Name: "states", Type: notify.TypeList, Description: "run only for these new states (MASTER BACKUP FAULT STOP DELETED); default: all"},
			{Name: "user", Type: notify.TypeList, Description: "run as USER [GROUP] (keepalived's script_user); default: the plugin's own user"},
			{Name: "secure", Type: notify.TypeBool, Default: "no", Description: "refuse a program that, or whose directories, others can change (keepalived's enable_script_security)"},
		},
	}, nil
}

func (x *execer) Configure(_ context.Context, req notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	c, warnings, err := parse(req.Params)
	if err != nil {
		return notify.ConfigureResponse{}, err
	}
	x.scripts.Keep(req, c)
	return notify.ConfigureResponse{Warnings: warnings}, nil
}

func (x *execer) Notify(ctx context.Context, req notify.NotifyRequest) (notify.NotifyResponse, error) {
	c, err := x.scripts.Lookup(req.Name)
	if err != nil {
		return notify.NotifyResponse{}, err
	}
	if len(c.states) > 0 && !slices.Contains(c.states, req.Event.NewState) {
		return notify.NotifyResponse{}, nil
	}
	err = script.Run(ctx, script.Args(c.argv, c.generic, req.Event), c.cred, script.Env(req.Event))
	return notify.NotifyResponse{}, err
}

func parse(params []notify.Param) (*command, []string, error) {
	c := &command{}
	var secure bool
	var warnings []string
	for _, p := range params {
		switch p.Key {
		case "command":
			c.argv = p.Values
		case "generic":
			b, err := p.Bool()
			if err != nil {
				return nil, nil, err
			}
			c.generic = b
		case "states":
			for _, s := range p.Values {
				s = strings.ToUpper(s)
				if !slices.Contains(knownStates, s) {
					return nil, nil, fmt.Errorf("states: %q is not a state (use %s)", s, strings.Join(knownStates, ", "))
				}
				c.states = append(c.states, s)
			}
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
			return nil, nil, fmt.Errorf("unknown param %q (known: command, generic, states, user, secure)", p.Key)
		}
	}
	if len(c.argv) == 0 || c.argv[0] == "" {
		return nil, nil, fmt.Errorf("command is required: the program to run and its arguments")
	}
	path, err := exec.LookPath(c.argv[0])
	if err != nil {
		// keepalived keeps such a script and lets it fail; a node may get the file later.
		warnings = append(warnings, fmt.Sprintf("%s: %v; every event fails until it exists", c.argv[0], err))
	} else if secure {
		if err := script.CheckSecureFor(path, c.cred); err != nil {
			return nil, nil, err
		}
	}
	return c, warnings, nil
}
