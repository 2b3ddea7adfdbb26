// Package watch tells vigil when the content of its configuration files changes, so that it
// can reload on its own.
//
// It watches the directories of the files rather than the files themselves: editors that write
// a temporary file and rename it over the original, atomic writers, and symlink swaps such as a
// Kubernetes ConfigMap's (vigil.conf -> ..data/vigil.conf, ..data -> ..2026_xx, updated by
// renaming a new ..data_tmp symlink over ..data) all replace the inode a file watch would be
// on. Events are filtered by name, so the other files of a busy directory such as /etc cost
// nothing, and debounced, so a burst of writes gives one reload after the last one. After the
// debounce each file's content is fingerprinted (SHA-256 of the bytes read through the path,
// following symlinks) and the reload is called only when a fingerprint differs from the last
// one seen: a touch, or a rewrite with the same bytes, does not reload.
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/opfile"
)

// Watcher calls for a reload when the content of any of its files changes.
type Watcher struct {
	log      hclog.Logger
	debounce time.Duration
	fsw      *fsnotify.Watcher

	mu      sync.Mutex
	files   []string                   // absolute and clean, in the order given
	seen    map[string]fingerprint     // the content last seen, per file
	missing map[string]bool            // files that did not resolve last time, to log changes only
	names   map[string]map[string]bool // directory -> names in it whose events matter
	dirs    map[string]bool            // the directories this watcher added to fsw
	// patterns are include patterns (conf.d/*.conf): a file that starts or stops matching one
	// changes the configuration, though no file of the set changed. globbed is what each
	// matched last; patternDirs the directory and base pattern of each, for events.
	patterns    []string
	globbed     map[string]string
	patternDirs map[string][]string
	running     bool
	closed      bool
}

// New watches files (relative names are made absolute against the working directory now) and
// calls for a reload once they have been quiet for debounce after a change. Call it before
// reading the configuration, then SetFiles with the files it included: a change made while
// the configuration is read then still gives a reload. A file or directory that does not exist
// is not an error: its nearest existing parent is watched, for it to appear.
func New(files []string, debounce time.Duration, log hclog.Logger) (*Watcher, error) {
	if debounce <= 0 {
		return nil, fmt.Errorf("watch: debounce must be positive, not %v", debounce)
	}
	abs, err := absFiles(files)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{
		log:      log,
		debounce: debounce,
		fsw:      fsw,
		files:    abs,
		seen:     map[string]fingerprint{},
		missing:  map[string]bool{},
		dirs:     map[string]bool{},
		globbed:  map[string]string{},
	}
	for _, f := range abs {
		w.seen[f] = fingerprintOf(f)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rewatch()
	return w, nil
}

// Run follows the files until ctx ends or Close is called, and calls reload, from Run's own
// goroutine, after each debounced change of content. reload may call SetFiles. Run closes the
// watcher when it returns; a Watcher runs once.
func (w *Watcher) Run(ctx context.Context, reload func()) {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		w.log.Error("watch: Run called twice; the second call does nothing")
		return
	}
	w.running = true
	w.mu.Unlock()
	defer w.Close()

	// A pending check waits on this timer; every event that matters pushes it back, so a burst
	// gives one check, debounce after its last event.
	timer := time.NewTimer(w.debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.matters(ev) {
				timer.Reset(w.debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were dropped, maybe ours: look at the files anyway.
				w.log.Warn("configuration watch lost events; checking the files", "error", err)
				timer.Reset(w.debounce)
				continue
			}
			w.log.Warn("configuration watch error", "error", err)
		case <-timer.C:
			if w.check() {
				reload()
			}
		}
	}
}

// SetFiles replaces the set of files, typically with the configuration's files after a
// successful reload: directories are watched and unwatched to match, files still in the set
// keep the fingerprint last seen (a change not yet reloaded still reloads), new ones are
// fingerprinted now.
func (w *Watcher) SetFiles(files []string) error {
	abs, err := absFiles(files)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch: set files: %w", fsnotify.ErrClosed)
	}
	seen := make(map[string]fingerprint, len(abs))
	for _, f := range abs {
		if fp, ok := w.seen[f]; ok {
			seen[f] = fp
		} else {
			seen[f] = fingerprintOf(f)
		}
	}
	for f := range w.missing {
		if !slices.Contains(abs, f) {
			delete(w.missing, f)
		}
	}
	w.files, w.seen = abs, seen
	w.rewatch()
	return nil
}

// SetPatterns replaces the include patterns (absolute, as config.Config.Includes lists them):
// their directories are watched, and a reload is called for when the set of files a pattern
// matches changes (a new conf.d/*.conf file, or one removed). What each matches now is the
// baseline. Wildcards are followed in the last path element only; a pattern with one in a
// directory part is watched through the files it matched.
func (w *Watcher) SetPatterns(patterns []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("watch: set patterns: %w", fsnotify.ErrClosed)
	}
	globbed := map[string]string{}
	for _, p := range patterns {
		if g, ok := w.globbed[p]; ok {
			globbed[p] = g
		} else {
			globbed[p] = globOf(p)
		}
	}
	w.patterns, w.globbed = slices.Clone(patterns), globbed
	w.rewatch()
	return nil
}

// globOf is what a pattern matches, as one comparable string.
func globOf(pattern string) string {
	m, err := filepath.Glob(pattern)
	if err != nil {
		return "bad pattern: " + err.Error()
	}
	slices.Sort(m)
	return strings.Join(m, "\n")
}

// Close releases the watches; Run does it when it returns, so it is needed only when Run is
// never called.
func (w *Watcher) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	if err := w.fsw.Close(); err != nil {
		return fmt.Errorf("watch: close: %w", err)
	}
	return nil
}

// matters tells whether an event can change what one of the files reads.
func (w *Watcher) matters(ev fsnotify.Event) bool {
	// A change of mode or times alone (touch) leaves the content as it was.
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	w.mu.Lock()
	defer w.mu.Unlock()
	// A watched directory's own removal or move comes under its own name.
	if w.names[filepath.Dir(name)][filepath.Base(name)] || w.dirs[name] {
		return true
	}
	for _, base := range w.patternDirs[filepath.Dir(name)] {
		if ok, _ := filepath.Match(base, filepath.Base(name)); ok {
			return true
		}
	}
	return false
}

// check updates the watches (a symlink may now lead elsewhere, a directory may have come or
// gone) and then the fingerprints, in that order so that no change falls between the two, and
// tells whether a fingerprint changed.
func (w *Watcher) check() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.rewatch()
	var changed []string
	for _, f := range w.files {
		fp := fingerprintOf(f)
		if fp != w.seen[f] {
			changed = append(changed, f)
			w.seen[f] = fp
		}
	}
	for _, p := range w.patterns {
		if g := globOf(p); g != w.globbed[p] {
			changed = append(changed, p)
			w.globbed[p] = g
		}
	}
	if len(changed) == 0 {
		w.log.Debug("configuration files touched, content unchanged")
		return false
	}
	w.log.Info("configuration changed", "files", changed)
	return true
}

// maxAddRounds bounds rewatch's retries when a directory disappears between its lookup and its
// watch.
const maxAddRounds = 3

// rewatch makes fsw watch the directories that hold each file, each symlink met on the way to
// it, and their parents. A parent's watch sees its directory removed and created again, and
// the directory's watch is then added back here; a path that does not resolve stops at its
// first missing component, whose directory exists and is watched for it to appear.
// w.mu is held.
func (w *Watcher) rewatch() {
	for round := 1; ; round++ {
		vanished := w.rewatchOnce()
		if !vanished || round == maxAddRounds {
			return
		}
	}
}

// rewatchOnce does one round of rewatch and tells whether a directory vanished before it could
// be watched.
func (w *Watcher) rewatchOnce() (vanished bool) {
	names := map[string]map[string]bool{}
	want := func(dir, base string) {
		if names[dir] == nil {
			names[dir] = map[string]bool{}
		}
		names[dir][base] = true
	}
	for _, f := range w.files {
		chain, err := resolve(f)
		switch {
		case err != nil && !w.missing[f]:
			w.missing[f] = true
			w.log.Warn("configuration file does not resolve; watching for it to appear", "file", f, "error", err)
		case err == nil && w.missing[f]:
			delete(w.missing, f)
			w.log.Info("configuration file is back", "file", f)
		}
		for _, n := range chain {
			dir := filepath.Dir(n)
			want(dir, filepath.Base(n))
			if dir != "/" {
				want(filepath.Dir(dir), filepath.Base(dir))
			}
		}
	}
	w.names = names
	w.patternDirs = map[string][]string{}
	for _, p := range w.patterns {
		dir, base := filepath.Dir(p), filepath.Base(p)
		if strings.ContainsAny(dir, "*?[") {
			continue
		}
		w.patternDirs[dir] = append(w.patternDirs[dir], base)
		if names[dir] == nil {
			names[dir] = map[string]bool{}
		}
		if dir != "/" {
			want(filepath.Dir(dir), filepath.Base(dir)) // its parent sees it come and go
		}
	}

	// fsnotify forgets a watch whose directory was removed or moved: its list, not w.dirs, says
	// what is watched now.
	live := map[string]bool{}
	for _, d := range w.fsw.WatchList() {
		live[d] = true
	}
	for d := range w.dirs {
		if !live[d] {
			// Gone, so no file resolves through it now: the file's own warning says so, and
			// the parent's watch sees it come back.
			w.log.Debug("watched configuration directory is gone", "dir", d)
			delete(w.dirs, d)
		}
	}
	for d := range names {
		if live[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				vanished = true
				continue
			}
			w.log.Warn("cannot watch configuration directory; changes there are not seen", "dir", d, "error", err)
			continue
		}
		w.log.Debug("watching configuration directory", "dir", d)
		w.dirs[d] = true
	}
	for d := range w.dirs {
		if names[d] == nil {
			if err := w.fsw.Remove(d); err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) {
				w.log.Warn("cannot stop watching configuration directory", "dir", d, "error", err)
			}
			w.log.Debug("no longer watching configuration directory", "dir", d)
			delete(w.dirs, d)
		}
	}
	return vanished
}

// maxLinks is Linux's own limit on the symlinks followed in one path lookup.
const maxLinks = 40

// resolve follows path component by component, as the kernel does, and returns the names whose
// change can change what path reads: each symlink met and the file reached. Their directories
// hold no symlink, so events in them come under these very names. When path does not resolve,
// the chain ends at the first component missing (or failing), and err says why.
func resolve(path string) (chain []string, err error) {
	resolved := "/"
	todo := path
	links := 0
	for todo != "" {
		var comp string
		comp, todo, _ = strings.Cut(todo, "/")
		switch comp {
		case "", ".":
			continue
		case "..":
			// resolved holds no symlink, so its lexical parent is its real one.
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, comp)
		fi, err := os.Lstat(next)
		if err != nil {
			return append(chain, next), fmt.Errorf("resolve %s: %w", path, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		chain = append(chain, next)
		if links++; links > maxLinks {
			return chain, fmt.Errorf("resolve %s: more than %d symlinks", path, maxLinks)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return chain, fmt.Errorf("resolve %s: %w", path, err)
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		if todo != "" {
			target += "/" + todo
		}
		todo = target
	}
	return append(chain, resolved), nil
}

// fingerprint identifies what reading a file gives: its content's digest, or why it could not
// be read.
type fingerprint struct {
	sum [sha256.Size]byte
	err string
}

// maxFingerprintBytes is above what any configuration may hold (config.Options.MaxInputBytes).
const maxFingerprintBytes = 256 << 20

// fingerprintOf reads path, following symlinks. A file that cannot be read has a fingerprint
// too, so that its disappearance is a change and the reload reports the error.
// Only regular files are opened (a FIFO would block the watcher in open(2)), and only the
// first maxFingerprintBytes are read: past the configuration's own limit the file is refused
// anyway, and /dev/zero or a growing log must not keep the watcher reading.
func fingerprintOf(path string) fingerprint {
	f, err := opfile.Open(path)
	if err != nil {
		return fingerprint{err: errText(err)}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, maxFingerprintBytes)); err != nil {
		return fingerprint{err: errText(err)}
	}
	var fp fingerprint
	h.Sum(fp.sum[:0])
	return fp
}

// errText gives the same text for the same kind of failure.
func errText(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

// absFiles makes the names absolute and clean, without duplicates.
func absFiles(files []string) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("watch: no file to watch")
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Snapshot is what the files and include patterns held at one moment.
type Snapshot struct {
	files    map[string]fingerprint
	patterns map[string]string
}

// Snapshot fingerprints the files and patterns now. A reload that did not come from the
// watcher (SIGHUP, vigil reload) takes one before it reads the configuration and hands it to
// Accept afterwards, so that the watcher does not reload the same content again once its
// debounce ends.
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Snapshot{files: map[string]fingerprint{}, patterns: map[string]string{}}
	for _, f := range w.files {
		s.files[f] = fingerprintOf(f)
	}
	for _, p := range w.patterns {
		s.patterns[p] = globOf(p)
	}
	return s
}

// Accept takes s as the content last reloaded, for the files and patterns in both. A change
// made after s was taken still differs from it, and still reloads.
func (w *Watcher) Accept(s Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for f, fp := range s.files {
		if _, ok := w.seen[f]; ok {
			w.seen[f] = fp
		}
	}
	for p, g := range s.patterns {
		if _, ok := w.globbed[p]; ok {
			w.globbed[p] = g
		}
	}
}
