// Package opfile opens and reads the files an operator names in the configuration: the
// configuration itself and its includes, track_file, password and secret files, the notify
// FIFO. Each is opened only when it is the kind of file it should be, and read only up to a
// limit, so that a path such as /dev/zero, /dev/tty, a directory or a FIFO cannot make vigil
// read without end or block forever in open(2).
package opfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits for the kinds of small files that operators name. They are far above what such a
// file holds, and far below what would hurt the process reading it.
const (
	// LineLimit is for files holding one value: a number, a password, a secret.
	LineLimit = 64 << 10
	// PEMLimit is for certificates, keys and CA bundles (a distribution's whole CA bundle is
	// about 220 KB).
	PEMLimit = 4 << 20
)

// ErrNotRegular is wrapped by the errors of Open and Read for a path that is not a regular
// file (after symlinks): a directory, a device, a FIFO, a socket.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by Read's error for a file longer than the limit.
var ErrTooLarge = errors.New("file too large")

// Kind names what a mode is, for messages: "directory", "FIFO", "character device".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s is a %s, %w", path, Kind(m), ErrNotRegular)
}

// Open opens path for reading if it is a regular file. It asks stat(2) first, so that opening
// has no side effect on a device and cannot block on a FIFO, and checks the opened file again,
// in case the path was replaced in between.
func Open(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	// O_NONBLOCK: if a FIFO took the file's place since the stat, open returns at once.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

// Read reads the regular file at path, at most limit bytes: a longer file is an error naming
// the file and the limit (wrapping ErrTooLarge), found after reading limit+1 bytes, never more.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, path, limit)
}

// readAtMost reads at most limit bytes from r, which holds the file at path; more is an error
// wrapping ErrTooLarge.
func readAtMost(r io.Reader, path string, limit int64) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes (%w)", path, limit, ErrTooLarge)
	}
	return b, nil
}

// CheckFIFO reports whether path is fit to be a notify FIFO: absent (exists false, the caller
// creates it) or a FIFO. Anything else at that path is an error: writing state lines into a
// regular file, a device or a socket is never what was meant.
func CheckFIFO(path string) (exists bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return true, fmt.Errorf("%s exists and is a %s, not a FIFO: remove it or name another path", path, Kind(fi.Mode()))
	}
	return true, nil
}
