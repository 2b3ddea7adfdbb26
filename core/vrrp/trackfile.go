package vrrp

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/opfile"
	"github.com/vigil-ha/vigil/core/vrrp/fsm"
)

// readTrackFile reads the number in a track_file the way keepalived does: a missing, empty
// or non-numeric file counts as 0; the number may be decimal, 0x hex or 0 octal.
func readTrackFile(path string) int {
	// A track file holds one number; a device or a FIFO is refused.
	b, err := opfile.Read(path, opfile.LineLimit)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, " \t\n"); i >= 0 {
		s = s[:i]
	}
	v, err := strconv.ParseInt(s, 0, 32)
	if err != nil {
		return 0
	}
	return int(v)
}

// trackFileUser is an instance tracking a file, with the weight that applies to it.
type trackFileUser struct {
	in      *instance
	weight  int
	reverse bool
}

// trackFileUsers lists the instances tracking each file, by path.
func (e *Engine) trackFileUsers() map[string][]trackFileUser {
	e.rw.RLock() // a reload restarts the watcher on the new instances
	defer e.rw.RUnlock()
	byPath := map[string][]trackFileUser{}
	files := map[string]*config.TrackFile{}
	for _, f := range e.cfg.TrackFiles {
		files[f.Name] = f
	}
	for _, in := range e.instances {
		for _, r := range in.cfg.TrackFiles {
			f := files[r.Name]
			if f == nil {
				continue
			}
			// The value posted is the file's as read: reverse is applied once, by
			// fsm.Effective.
			u := trackFileUser{in: in}
			u.weight, u.reverse = r.Apply(f.Weight, f.Reverse)
			p := filepath.Clean(f.File)
			byPath[p] = append(byPath[p], u)
		}
	}
	return byPath
}

// watchTrackFiles sets the initial value of every tracked file and follows changes until ctx
// ends. It watches the files' directories, so editors' rename-and-replace and files that do
// not exist yet are seen too.
func (e *Engine) watchTrackFiles(ctx context.Context) {
	byPath := e.trackFileUsers()
	if len(byPath) == 0 {
		return
	}
	post := func(path string) {
		v := readTrackFile(path)
		for _, u := range byPath[path] {
			u.in.post(ctx, trackerEvent{key: "file:" + path, state: trackerState{Tracker: fsm.Tracker{Kind: fsm.TrackFile, Value: v, Weight: u.weight, Reverse: u.reverse}}})
		}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		e.log.Error("cannot watch track_file files; their values are read once", "error", err)
		for p := range byPath {
			post(p)
		}
		return
	}
	defer w.Close()
	dirs := map[string]bool{}
	for p := range byPath {
		if d := filepath.Dir(p); !dirs[d] {
			dirs[d] = true
			if err := w.Add(d); err != nil {
				e.log.Warn("cannot watch track_file directory; changes there are not seen", "dir", d, "error", err)
			}
		}
		post(p)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if _, tracked := byPath[filepath.Clean(ev.Name)]; tracked {
				post(filepath.Clean(ev.Name))
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.log.Warn("track_file watch error", "error", err)
		}
	}
}
