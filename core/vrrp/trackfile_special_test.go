package vrrp

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReadTrackFileNotRegular: a track_file path holding a FIFO or a device reads as 0 at
// once; before, a FIFO blocked the reader in open(2) and /dev/zero was read without end.
func TestReadTrackFileNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan int, 1)
		go func() { done <- readTrackFile(path) }()
		select {
		case got := <-done:
			if got != 0 {
				t.Errorf("readTrackFile(%s) = %d, want 0", path, got)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("readTrackFile(%s) has not returned after 60 s", path)
		}
	}
}
