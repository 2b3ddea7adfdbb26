package opfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A FIFO with nobody writing would block open(2) for ever, /dev/zero would never end.
	for path, kind := range map[string]string{"/dev/zero": "character device", dir: "directory", fifo: "FIFO"} {
		_, err := Read(path, 1<<20)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path+" is a "+kind+", not a regular file") {
			t.Errorf("Read(%s) = %v, want it refused as a %s", path, err, kind)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadStopsAtTheLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	_, err := Read(p, 9)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p+" is larger than 9 bytes") {
		t.Errorf("over the limit: %v", err)
	}
}

func TestCheckFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo, reg := filepath.Join(dir, "fifo"), filepath.Join(dir, "reg")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckFIFO(fifo); !ok || err != nil {
		t.Errorf("FIFO: %v %v", ok, err)
	}
	if ok, err := CheckFIFO(filepath.Join(dir, "absent")); ok || err != nil {
		t.Errorf("absent: %v %v", ok, err)
	}
	for path, kind := range map[string]string{reg: "regular file", dir: "directory", "/dev/null": "character device"} {
		if _, err := CheckFIFO(path); err == nil || !strings.Contains(err.Error(), "is a "+kind+", not a FIFO") {
			t.Errorf("CheckFIFO(%s) = %v", path, err)
		}
	}
}
