// Package script holds what is keepalived's about running scripts: the user they run as
// (LookupUser), keepalived's enable_script_security (CheckSecure, CheckCommand), and for
// notify scripts the arguments and environment they get (Args, Env) and the error a notify
// reports (Run). The running itself (process group, deadline, output) is core/procrun's. The
// exec check and notify plugins use this package, and so does vigil's core when those
// plugins are not installed, so that a script is judged and run the same way wherever it runs.
package script

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/procrun"
	"github.com/vigil-ha/vigil/sdk/notify"
)

// Type is keepalived's first argument to a generic notify script: INSTANCE for an instance's
// event, GROUP for a sync group's own.
func Type(ev notify.Event) string {
	if ev.Instance == "" {
		return "GROUP"
	}
	return "INSTANCE"
}

// Args is the argument list for ev: argv as configured and, for keepalived's generic
// "notify" script, TYPE NAME STATE PRIORITY appended (each one argument: the program gets the
// name unquoted, whatever it contains). A sync group's priority is 0, as keepalived passes it.
func Args(argv []string, generic bool, ev notify.Event) []string {
	out := append([]string{}, argv...)
	if !generic {
		return out
	}
	name, prio := ev.Instance, ev.Priority
	if name == "" {
		name, prio = ev.Group, 0
	}
	return append(out, Type(ev), name, ev.NewState, strconv.Itoa(prio))
}

// Env is what a script finds in its environment besides PATH: the whole event, for scripts
// written for vigil that want more than keepalived's four arguments.
func Env(ev notify.Event) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"VIGIL_NODE=" + ev.Node,
		"VIGIL_TYPE=" + Type(ev),
		"VIGIL_INSTANCE=" + ev.Instance,
		"VIGIL_GROUP=" + ev.Group,
		"VIGIL_OLD_STATE=" + ev.OldState,
		"VIGIL_STATE=" + ev.NewState,
		"VIGIL_PRIORITY=" + strconv.Itoa(ev.Priority),
		"VIGIL_VIPS=" + strings.Join(ev.VIPs, " "),
		"VIGIL_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
	}
}

// LookupUser turns USER [GROUP] into credentials: the user's uid, the group's gid (default
// the user's primary group) and the user's supplementary groups.
func LookupUser(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("user %s: group %q: %w", name, group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// LookupUserWords is LookupUser for the words of a "user USER [GROUP]" line or param.
func LookupUserWords(words []string) (*syscall.Credential, error) {
	if len(words) == 0 || len(words) > 2 {
		return nil, errors.New("user: want USER [GROUP]")
	}
	group := ""
	if len(words) == 2 {
		group = words[1]
	}
	return LookupUser(words[0], group)
}

// ErrTimeout: the script was still running at its deadline; its process group was killed.
var ErrTimeout = errors.New("notify script timed out; its process group was killed")

// maxOutput bounds what is kept of a script's output, for the error message.
const maxOutput = 2048

// Run runs a notify script once through procrun, with env, as cred when not nil: in its own
// process group, stopped (TERM, then KILL) when ctx ends first, whatever it left in its
// group killed when it ends. It turns the result into the error a notify reports: ErrTimeout
// wrapping ctx's error, or the exit status (or signal) with the first line of output.
func Run(ctx context.Context, argv []string, cred *syscall.Credential, env []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("notify script: empty command")
	}
	r := procrun.Run(ctx, procrun.Cmd{Args: argv, Env: env, Cred: cred, MaxOutput: maxOutput})
	switch r.Outcome {
	case procrun.TimedOut:
		return fmt.Errorf("%s: %w (%w)", argv[0], ErrTimeout, r.Err)
	case procrun.NotStarted:
		return fmt.Errorf("%s: %w", argv[0], r.Err)
	}
	if r.Success() {
		return nil
	}
	if line := r.FirstLine(); line != "" {
		return fmt.Errorf("%s: %s: %s", argv[0], r.Describe(), line)
	}
	return fmt.Errorf("%s: %s", argv[0], r.Describe())
}

// CheckSecureFor is CheckSecure for a program that runs with cred, or as this process's own
// user when cred is nil (a check process that already runs as script_user switches to no one).
func CheckSecureFor(path string, cred *syscall.Credential) error {
	uid := uint32(os.Getuid())
	if cred != nil {
		uid = cred.Uid
	}
	return CheckSecure(path, uid)
}

// CheckCommand is enable_script_security's rule for a script's command: the program argv0
// names (looked up in PATH when it has no '/') must be safe to run as cred (CheckSecureFor).
// A program that does not exist is not this rule's business (the script then fails when it
// runs): CheckCommand returns nil for it. vigil -t, a reload and whatever runs a script all
// ask this, so that they agree.
func CheckCommand(argv0 string, cred *syscall.Credential) error {
	if argv0 == "" {
		return nil
	}
	path, err := exec.LookPath(argv0)
	if err != nil {
		return nil
	}
	return CheckSecureFor(path, cred)
}

// CheckSecure refuses a program that someone other than root, or the user it runs as (uid),
// could replace: the file and every directory above it must be owned by one of them and not
// writable by group or others (sticky directories excepted), as keepalived's
// enable_script_security requires. Both the path as given and, when symbolic links are on the
// way, the file they lead to are checked (keepalived checks both too): whoever can change a
// link or a directory the real file lies in can change what runs.
func CheckSecure(path string, uid uint32) error {
	if err := checkPath(path, path, uid); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if real, err = filepath.Abs(real); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if real == filepath.Clean(path) {
		return nil
	}
	return checkPath(path, real, uid)
}

// checkPath checks file and each directory above it for CheckSecure; path is the program as
// configured, for the message.
func checkPath(path, file string, uid uint32) error {
	p := file
	for {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner information", p)
		}
		what := "the program"
		switch {
		case p == file && file != path:
			what = "the program it leads to, " + file + ","
		case p != file:
			what = "directory " + p + " above it"
		}
		if st.Uid != 0 && st.Uid != uid {
			return fmt.Errorf("%s is not safe to run: %s is owned by uid %d, not root; run chown root %s, or turn off enable_script_security", path, what, st.Uid, p)
		}
		// In a sticky directory (/tmp) others may write, but not replace what they do not own.
		if fi.Mode().Perm()&0o022 != 0 && (p == file || fi.Mode()&os.ModeSticky == 0) {
			return fmt.Errorf("%s is not safe to run: %s is writable by group or others (mode %v); run chmod go-w %s, or turn off enable_script_security", path, what, fi.Mode().Perm(), p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}
