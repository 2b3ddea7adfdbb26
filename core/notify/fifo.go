package notify

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/core/script"
	sdk "github.com/vigil-ha/vigil/sdk/notify"
)

// Line is keepalived's notify FIFO line for an event: `INSTANCE "VI_1" MASTER 100` or
// `GROUP "G1" BACKUP 0` (a group's priority is always 0), newline-terminated.
func Line(ev sdk.Event) string {
	if ev.Instance == "" {
		return fmt.Sprintf("GROUP \"%s\" %s 0\n", ev.Group, ev.NewState)
	}
	// The name between plain double quotes, unescaped, as keepalived writes it: readers
	// written for keepalived split on the quotes.
	return fmt.Sprintf("INSTANCE \"%s\" %s %d\n", ev.Instance, ev.NewState, ev.Priority)
}

// fifoSet is the notify FIFOs of global_defs (notify_fifo, vrrp_notify_fifo,
// lvs_notify_fifo), written without ever blocking: VRRP's lines go to notify_fifo and
// vrrp_notify_fifo, the load balancer's to notify_fifo and lvs_notify_fifo, as keepalived
// writes them.
//
// Each FIFO is opened read-write and non-blocking, as keepalived does: holding a read end
// ourselves means that a reader that went away never makes a write fail or raise SIGPIPE,
// and a reader may come and go; when nobody reads for long enough that the pipe's buffer
// (64 KiB) fills up, lines are dropped and the drop is logged, rather than VRRP's notify
// path waiting. Lines are far shorter than PIPE_BUF, so each is written whole or not at all.
// The fd is used with raw system calls: an *os.File would park the writer in the runtime's
// poller on a full pipe, which is the blocking this avoids.
type fifoSet struct {
	log hclog.Logger

	mu      sync.Mutex
	fifos   []*fifo
	scripts []*exec.Cmd
}

type fifo struct {
	path      string
	fd        int
	vrrp, lvs bool // which lines it gets
	dropped   int  // lines dropped since the last one that went through
}

func openFIFOs(g config.Global, log hclog.Logger) *fifoSet {
	s := &fifoSet{log: log}
	seen := map[string]*fifo{}
	for _, w := range []struct {
		f         *config.FIFO
		vrrp, lvs bool
	}{{g.NotifyFIFO, true, true}, {g.VRRPNotifyFIFO, true, false}, {g.LVSNotifyFIFO, false, true}} {
		f := w.f
		if f == nil || f.Path == "" {
			continue
		}
		if o := seen[f.Path]; o != nil {
			// One FIFO named twice is opened and read once, and gets both kinds of lines.
			o.vrrp, o.lvs = o.vrrp || w.vrrp, o.lvs || w.lvs
			continue
		}
		fd, err := openFIFO(f.Path)
		if err != nil {
			log.Error("notify FIFO not written", "fifo", f.Path, "error", err)
			seen[f.Path] = &fifo{} // not opened: not tried again
			continue
		}
		ff := &fifo{path: f.Path, fd: fd, vrrp: w.vrrp, lvs: w.lvs}
		seen[f.Path] = ff
		s.fifos = append(s.fifos, ff)
		if f.Script != nil {
			s.startReader(g, f)
		}
	}
	return s
}

// openFIFO opens path, creating the FIFO when nothing is there.
func openFIFO(path string) (int, error) {
	exists, err := opfile.CheckFIFO(path)
	if err != nil {
		return -1, fmt.Errorf("notify FIFO: %w", err)
	}
	if !exists {
		if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, syscall.EEXIST) {
			return -1, fmt.Errorf("create FIFO %s: %w", path, err)
		}
	}
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open FIFO %s: %w", path, err)
	}
	// Whatever was swapped in since the check, a FIFO is what gets written.
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		syscall.Close(fd)
		return -1, fmt.Errorf("notify FIFO: %s was replaced by something that is not a FIFO: remove it or name another path", path)
	}
	return fd, nil
}

// startReader runs the FIFO's script with the FIFO's path appended, as keepalived runs
// notify_fifo_script, as script_user; it lives until Close.
func (s *fifoSet) startReader(g config.Global, f *config.FIFO) {
	user, group := f.Script.User, f.Script.Group
	if user == "" {
		user, group = g.ScriptUser, g.ScriptGroup
	}
	var cred *syscall.Credential
	if user != "" {
		c, err := script.LookupUser(user, group)
		if err != nil {
			s.log.Error("notify FIFO script not started", "fifo", f.Path, "error", err)
			return
		}
		cred = c
	}
	if g.EnableScriptSecurity {
		// As every other script: one that others could change is not run.
		if err := script.CheckCommand(f.Script.Argv[0], cred); err != nil {
			s.log.Error("notify FIFO script not started", "fifo", f.Path, "error", err)
			return
		}
	}
	argv := append(append([]string{}, f.Script.Argv...), f.Path)
	cmd := exec.Command(argv[0], argv[1:]...)
	// SIGTERM if core dies, so that a restarted vigil does not find an old reader on the
	// FIFO beside its new one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred, Pdeathsig: syscall.SIGTERM}
	started := make(chan error)
	go func() {
		// The parent-death signal belongs to the thread that started the process: keep
		// that thread for as long as the script runs, or its end would kill the script.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		s.log.Error("notify FIFO script not started", "fifo", f.Path, "error", err)
		return
	}
	s.scripts = append(s.scripts, cmd)
}

func (s *fifoSet) write(ev sdk.Event) { s.writeLine(Line(ev), false) }

// writeLine writes one line to the FIFOs of VRRP's lines, or of the load balancer's (lvs).
func (s *fifoSet) writeLine(text string, lvs bool) {
	line := []byte(text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.fifos {
		if (lvs && !f.lvs) || (!lvs && !f.vrrp) {
			continue
		}
		_, err := syscall.Write(f.fd, line)
		if err != nil {
			f.dropped++
			// One line per burst of drops: the first says why, the recovery says how many.
			if f.dropped == 1 {
				s.log.Warn("notify FIFO is full or failing (is its reader running?); dropping lines", "fifo", f.path, "error", err)
			}
			continue
		}
		if f.dropped > 0 {
			s.log.Info("notify FIFO is written again", "fifo", f.path, "dropped", strconv.Itoa(f.dropped))
			f.dropped = 0
		}
	}
}

func (s *fifoSet) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, f := range s.fifos {
		if err := syscall.Close(f.fd); err != nil {
			errs = append(errs, fmt.Errorf("close FIFO %s: %w", f.path, err))
		}
	}
	s.fifos = nil
	for _, c := range s.scripts {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	s.scripts = nil
	return errors.Join(errs...)
}
