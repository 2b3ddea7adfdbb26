package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/vigil-ha/vigil/sdk"
)

// DefaultDir is where installed plugins live.
const DefaultDir = "/usr/lib/vigil/plugins"

// ResolveDir is the plugin directory to use for the configured one (plugin_dir; empty for
// none). An installed vigil uses DefaultDir. When that is what is asked for but it does not
// exist, and the running vigil binary sits beside plugins, as bin/ of a development tree does
// after `make build`, that directory is used instead, so that ./bin/vigil finds ./bin's
// plugins with no plugin_dir; failing that, PREFIX/lib/vigil/plugins of a binary installed as
// PREFIX/sbin/vigil (`make install PREFIX=/usr/local`). Any other configured directory is
// used as it is.
func ResolveDir(configured string) string {
	_, err := os.Stat(DefaultDir)
	exe, _ := os.Executable()
	return resolveDir(configured, err == nil, exe)
}

func resolveDir(configured string, defaultExists bool, exe string) string {
	if configured != "" && configured != DefaultDir {
		return configured
	}
	if defaultExists || exe == "" {
		return DefaultDir
	}
	dir := filepath.Dir(exe)
	if holdsPlugins(dir) {
		return dir
	}
	if prefixed := filepath.Join(filepath.Dir(dir), "lib", "vigil", "plugins"); holdsPlugins(prefixed) {
		return prefixed
	}
	return DefaultDir
}

// holdsPlugins reports whether dir has a file named like a plugin, or the BGP speaker
// (SpeakerFile), which lives beside them.
func holdsPlugins(dir string) bool {
	for _, kind := range []sdk.Kind{sdk.KindCheck, sdk.KindNotify} {
		if m, _ := filepath.Glob(filepath.Join(dir, Executable(kind, "*"))); len(m) > 0 {
			return true
		}
	}
	_, err := os.Stat(filepath.Join(dir, SpeakerFile))
	return err == nil
}

// SpeakerFile is the BGP speaker's executable (cmd/vigil-bgp) in the plugin directory.
const SpeakerFile = "vigil-bgp"

var (
	// ErrNotFound: no plugin of that kind and name in the plugin directory.
	ErrNotFound = errors.New("plugin not found")
	// ErrInsecure: the plugin or a directory above it can be changed by someone else.
	ErrInsecure = errors.New("plugin is not safe to run")
	// ErrChecksum: the plugin's SHA-256 is not the one the configuration pins.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrProtocol: the plugin speaks no protocol version this vigil speaks.
	ErrProtocol = errors.New("plugin protocol version mismatch")
)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Executable is the file name of a plugin: vigil-check-mysql.
func Executable(kind sdk.Kind, name string) string { return "vigil-" + string(kind) + "-" + name }

// find returns the path of a plugin, checked for safety and, when pinned, its checksum.
func find(dir string, kind sdk.Kind, name string, sums map[string]string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("%w: %q is not a plugin name (lower-case letters, digits, '-', '_', '.')", ErrNotFound, name)
	}
	return FindFile(dir, Executable(kind, name), string(kind)+" plugin "+name, sums)
}

// FindFile returns the path of the executable file in the plugin directory, checked as a
// plugin is (CheckSecure, and its checksum when plugin_sha256 pins it); what names it in
// messages ("check plugin mysql", "BGP speaker"). vigil-bgp is found this way.
func FindFile(dir, file, what string, sums map[string]string) (string, error) {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w: no %s: %s does not exist", ErrNotFound, what, path)
	}
	if err := CheckSecure(path); err != nil {
		return "", err
	}
	if want, ok := sums[file]; ok {
		got, err := sha256File(path)
		if err != nil {
			return "", err
		}
		if !strings.EqualFold(got, want) {
			return "", fmt.Errorf("%w: %s: %s has SHA-256 %s, but plugin_sha256 %s in global_defs expects %s: reinstall it, or pin the new checksum if you changed it on purpose", ErrChecksum, what, path, got, file, strings.ToLower(want))
		}
	}
	return path, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CheckSecure refuses a plugin that someone other than root or vigil's own user could
// change: the file itself (after symlinks) and every directory up to /. A writable directory
// with the sticky bit (like /tmp) is accepted, since others can neither rename nor delete
// what is below it; the next path element is then checked for its owner.
func CheckSecure(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file (mode %s)", ErrInsecure, real, fi.Mode())
	}
	if err := checkOwner(real, fi, "plugin "+real); err != nil {
		return err
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInsecure, err)
		}
		if err := checkOwner(dir, di, "directory "+dir+" above plugin "+real); err != nil {
			return err
		}
		if dir == "/" {
			return nil
		}
	}
}

func checkOwner(path string, fi os.FileInfo, what string) error {
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 && !(fi.IsDir() && fi.Mode()&os.ModeSticky != 0) {
		return fmt.Errorf("%w: %s is group- or world-writable (mode %04o): run chmod go-w %s", ErrInsecure, what, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not root or vigil's user: run chown root %s", ErrInsecure, what, st.Uid, path)
	}
	return nil
}

// Found is one plugin that List found, with its description or why it could not be read.
type Found struct {
	Path string
	Kind sdk.Kind
	Name string
	Info sdk.Info
	Err  error
}

// List starts every plugin in opts.Dir once, asks it to describe itself and stops it: what
// `vigil plugins` prints. A plugin that cannot run is listed with its error.
func List(ctx context.Context, opts Options) ([]Found, error) {
	opts = opts.withDefaults()
	entries, err := os.ReadDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("plugin directory: %w", err)
	}
	h := New(opts)
	defer h.Close()
	var out []Found
	for _, e := range entries {
		for _, kind := range []sdk.Kind{sdk.KindCheck, sdk.KindNotify} {
			name, ok := strings.CutPrefix(e.Name(), "vigil-"+string(kind)+"-")
			if !ok {
				continue
			}
			f := Found{Path: filepath.Join(opts.Dir, e.Name()), Kind: kind, Name: name}
			f.Info, f.Err = h.Describe(ctx, kind, name)
			h.stop(kind, name)
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
