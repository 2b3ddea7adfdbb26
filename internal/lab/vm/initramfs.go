package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The initramfs is an uncompressed cpio archive in the "newc" format, the one the kernel
// unpacks into its first root (Documentation/driver-api/early-userspace/buffer-format.rst).
// It holds only busybox-static, the init script below and the modules that mount the 9p
// root: a few megabytes, written fresh for every boot, so nothing is cached between runs.

// cpioWriter writes newc entries. Inode numbers only need to differ between entries.
type cpioWriter struct {
	w   *bufio.Writer
	ino int
	err error
}

func newCPIO(w io.Writer) *cpioWriter { return &cpioWriter{w: bufio.NewWriter(w)} }

func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor int, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	// 13 eight-digit hex fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with its NUL), check (unused: 0).
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad(len(hdr) + len(name) + 1)
	c.write(data)
	c.pad(len(data))
}

func (c *cpioWriter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

// pad aligns to four bytes: the header plus name, and then the data, each end on a boundary.
func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) dir(name string)                   { c.entry(name, 0o040755, 0, 0, nil) }
func (c *cpioWriter) file(name string, data []byte)     { c.entry(name, 0o100755, 0, 0, data) }
func (c *cpioWriter) chardev(name string, maj, min int) { c.entry(name, 0o020600, maj, min, nil) }

func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

// initramfs is what goes into the archive: busybox, the module files in load order, and the
// init script.
type initramfs struct {
	Busybox string   // host path of a static busybox
	Modules []string // host paths, dependencies first
	Init    string   // the /init script
}

// write builds the archive. /dev/console is there from the start because the kernel opens it
// for init's standard streams before init can mount devtmpfs.
func (ir initramfs) write(w io.Writer) error {
	c := newCPIO(w)
	for _, d := range []string{"bin", "dev", "proc", "sys", "newroot", "lib", "lib/vm"} {
		c.dir(d)
	}
	c.chardev("dev/console", 5, 1)
	bb, err := os.ReadFile(ir.Busybox)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	c.file("bin/busybox", bb)
	for _, m := range ir.Modules {
		data, err := os.ReadFile(m)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		c.file(path.Join("lib/vm", filepath.Base(m)), data)
	}
	c.file("init", []byte(ir.Init))
	return c.close()
}

// quote makes s one word for sh, whatever it contains.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// 9p options. msize is the largest message: the default (8 KiB on 6.1) makes every read of a
// binary a long series of round trips through the emulated PCI device. The read-only root
// caches pages and metadata (cache=loose) since nothing changes it while the VM runs; the
// shares the tests write use cache=mmap, which writes through to the host and still lets
// programs mmap files there (executables included).
const (
	opts9p      = "trans=virtio,version=9p2000.L,msize=512000"
	rootOpts9p  = "ro," + opts9p + ",cache=loose"
	shareOpts9p = opts9p + ",cache=mmap"
)

// Where the VM's control directory (the host's temporary directory with stage 2 and the
// status file) appears in the guest. /run is a tmpfs there, so the mount point can be made.
const guestCtl = "/run/vigil-vm"

// startedMarker is the console line stage 2 prints just before the command: the host takes the
// boot time from it.
const startedMarker = "vigil-vm: command started"

// initScript is stage 1, /init in the initramfs: load the 9p modules, mount the host's root
// read-only with tmpfs over what must be writable, mount the shares, and switch_root into
// stage 2 on that root. Any failure prints why and powers off at once, so the host sees a
// missing status instead of a hung VM.
func initScript(modules []string, tmpfs []string, shares []string, busybox string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("#!/bin/busybox sh")
	w("/bin/busybox --install -s /bin")
	w("export PATH=/bin")
	w(`fail() { echo "vigil-vm: init: $*"; poweroff -f; }`)
	w("mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev || fail mounting proc, sys, dev")
	for _, m := range modules {
		w("insmod %s || fail insmod %s", quote("/lib/vm/"+filepath.Base(m)), quote(filepath.Base(m)))
	}
	// The virtio devices are probed as virtio_pci loads; the retry only covers a slow probe.
	w(`mount9p() { i=0; until mount -t 9p -o "$1" "$2" "$3"; do i=$((i+1)); [ $i -ge 50 ] && return 1; sleep 0.1; done; }`)
	w("mount9p %s root /newroot || fail mounting the host root over 9p", quote(rootOpts9p))
	w("for d in proc sys dev; do mount --move /$d /newroot/$d || fail moving /$d; done")
	w("mkdir -p /newroot/dev/pts /newroot/dev/shm")
	w("mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm")
	for _, d := range tmpfs {
		// A symlink (Debian's /var/run -> /run) already lands on a tmpfs.
		w("[ -L /newroot%[1]s ] || mount -t tmpfs -o mode=1777 tmpfs /newroot%[1]s || fail tmpfs on %[1]s", quote(d))
	}
	w("mkdir -p /newroot%s && mount9p %s ctl /newroot%s || fail mounting the control share", guestCtl, quote(shareOpts9p), guestCtl)
	for i, d := range shares {
		w("mkdir -p /newroot%[1]s && mount9p %[2]s share%[3]d /newroot%[1]s || fail mounting the share %[1]s", quote(d), quote(shareOpts9p), i)
	}
	w("exec switch_root /newroot %s sh %s/stage2", quote(busybox), guestCtl)
	return b.String()
}

// stage2Script runs as PID 1 on the host's root: it brings lo up, loads the modules asked for,
// runs the command with its own environment and working directory, writes the exit status
// into the control share, and powers off.
func stage2Script(busybox string, modules []string, dir string, argv, env []string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	bb := quote(busybox)
	w("export PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	w("setup() { echo \"$*\" > %s/setup-failed; echo \"vigil-vm: $*\"; sync; %s poweroff -f; }", guestCtl, bb)
	w("%s hostname vigil-vm", bb)
	w("%s ip link set lo up || setup bringing lo up failed", bb)
	for _, m := range modules {
		w("modprobe %[1]s || setup modprobe %[1]s failed", quote(m))
	}
	w("cd %s || setup no directory %s", quote(dir), quote(dir))
	w("echo %s", quote(startedMarker))
	var cmd strings.Builder
	fmt.Fprintf(&cmd, "%s env -i", bb)
	for _, e := range env {
		fmt.Fprintf(&cmd, " %s", quote(e))
	}
	for _, a := range argv {
		fmt.Fprintf(&cmd, " %s", quote(a))
	}
	w("%s </dev/null", cmd.String())
	w("echo $? > %s/status", guestCtl)
	w("sync")
	w("%s poweroff -f", bb)
	return b.String()
}
