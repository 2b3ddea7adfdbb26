// Package vm boots a throwaway Linux virtual machine for tests that need a kernel feature the
// machine running them lacks, IPVS above all: this machine's kernel has no ip_vs and cannot
// load modules, so the load-balancer tests run in a kernel of their own.
//
// The VM is qemu-system-x86_64 with TCG (no /dev/kvm is needed) booting Debian's generic
// kernel (linux-image-amd64; the cloud flavour has no 9p). Its root file system is the host's
// own root, exported read-only over virtio-9p, so keepalived, ipvsadm, iproute2, nft and the
// test binaries run in it unchanged and the kernel's modules come from the host's
// /lib/modules. A small initramfs, written by this package for each boot from busybox-static
// and the modules that mount 9p, puts tmpfs over what must be writable and mounts the
// directories the caller names, writable, at the same paths. The VM has no network device at
// all: tests build their networks from namespaces inside it.
//
// TCG on two cores is slow (seconds to boot, and every instruction emulated): boot once per test
// binary and run many cases in it. Main does that for a test binary: see its comment.
package vm

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes one boot. The zero value is usable.
type Config struct {
	// Shares are host directories mounted writable at the same path in the guest, e.g. the
	// test's work directory; what the command writes there is on the host when Run returns.
	Shares []string
	// Modules are loaded with modprobe before the command runs (e.g. "ip_vs"); a module that
	// fails to load fails Run. Modules a command needs later (veth, nf_tables) load on demand.
	Modules []string
	// Tmpfs are directories of the root to cover with a fresh tmpfs, beyond the defaults
	// (/tmp, /run, /var/tmp, /var/log, /root).
	Tmpfs []string
	// Dir is the command's working directory in the guest; default "/".
	Dir string
	// Console receives the console as it comes (the kernel's and the command's output, with
	// carriage returns removed); nil discards it. Result.Output keeps it all anyway.
	Console io.Writer
	// Memory in MiB (default 1024) and CPUs (default 2, fewer if the host has fewer).
	Memory int
	CPUs   int
	// Prepare is for Main only: it runs on the host just before the boot, once Main knows the
	// VM will start (a VM test is selected, a VM can start here, not a race build). Build what
	// the VM tests need there, into one of Shares: building under TCG is many times slower.
	Prepare func() error
	// Kernel is a bzImage whose modules are in /lib/modules/VERSION (VERSION from its name,
	// vmlinuz-VERSION); default: the newest in /boot that can mount a 9p root.
	Kernel string
}

// Result is what a boot produced.
type Result struct {
	ExitCode int           // the command's exit status (128+N when killed by signal N)
	Output   []byte        // the whole console, carriage returns removed
	Boot     time.Duration // from starting qemu until the command started
	Elapsed  time.Duration // from starting qemu until it exited
}

// guestEnv is set in the command's environment, so code can tell it runs inside the VM.
const guestEnv = "VIGIL_VM"

// InGuest reports whether this process runs inside a VM that this package booted.
func InGuest() bool { return os.Getenv(guestEnv) == "1" }

// defaultTmpfs are the directories of the read-only root that programs expect to write.
var defaultTmpfs = []string{"/tmp", "/run", "/var/tmp", "/var/log", "/root"}

// host is what a boot needs from the machine, as found by probe.
type host struct {
	qemu    string
	busybox string
	kernel  kernel
}

// Available says why a VM cannot be booted here, with the package to install, or nil.
func Available() error {
	_, err := probe("")
	return err
}

func probe(kernelImage string) (host, error) {
	var h host
	var missing []string
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return h, fmt.Errorf("the VM runs on linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if os.Geteuid() != 0 {
		// qemu exports the whole root over 9p with the host's permissions, and the guest
		// runs as root: without root here it could neither read nor write what tests need.
		return h, errors.New("the VM needs root (qemu exports the host's root file system to a guest running as root)")
	}
	q, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		missing = append(missing, "qemu-system-x86_64 not found: apt-get install qemu-system-x86")
	}
	h.qemu = q
	bb, err := staticBusybox()
	if err != nil {
		missing = append(missing, err.Error())
	}
	h.busybox = bb
	if kernelImage != "" {
		v := strings.TrimPrefix(filepath.Base(kernelImage), "vmlinuz-")
		h.kernel = kernel{Version: v, Image: kernelImage, Modules: filepath.Join("/lib/modules", v)}
	} else if h.kernel, err = findKernel("/boot", "/lib/modules"); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		return h, errors.New(strings.Join(missing, "; "))
	}
	return h, nil
}

// staticBusybox finds busybox and checks that it is the static build: the initramfs has no C
// library for a dynamic one to load.
func staticBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", errors.New("busybox not found: apt-get install busybox-static")
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", fmt.Errorf("busybox: %w", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("busybox %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: apt-get install busybox-static", p)
		}
	}
	return p, nil
}

// Run boots a VM, runs argv in it with exactly the environment env (PATH defaults to the
// usual one; VIGIL_VM=1 is added), and powers it off when the command exits. A command that
// fails is not an error: its status is in Result.ExitCode. Run fails when the VM could not
// boot, or ended without reporting the status (a kernel panic, a module that did not load),
// or when ctx ended first; qemu is then killed and Result.Output says what the console showed.
func Run(ctx context.Context, cfg Config, argv, env []string) (Result, error) {
	var res Result
	if len(argv) == 0 {
		return res, errors.New("vm: no command")
	}
	if strings.Contains(argv[0], "=") {
		return res, fmt.Errorf("vm: command %q: a name with '=' would be taken for a variable", argv[0])
	}
	h, err := probe(cfg.Kernel)
	if err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	mods, err := readModules(h.kernel.Modules)
	if err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	load, err := mods.loadOrder(rootModules)
	if err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	shares := make([]string, 0, len(cfg.Shares))
	for _, s := range cfg.Shares {
		abs, err := filepath.Abs(s)
		if err != nil {
			return res, fmt.Errorf("vm: share %s: %w", s, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return res, fmt.Errorf("vm: share %s is not a directory", s)
		}
		shares = append(shares, abs)
	}
	var tmpfs []string
	for _, d := range append(append([]string{}, defaultTmpfs...), cfg.Tmpfs...) {
		// The guest's root is this root: a directory missing here is missing there.
		if _, err := os.Lstat(d); err == nil {
			tmpfs = append(tmpfs, filepath.Clean(d))
		}
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "/"
	}
	env = guestEnvironment(env)

	// The control directory holds the initramfs and stage 2, and receives the status; the
	// guest sees it at guestCtl.
	ctl, err := os.MkdirTemp("", "vigil-vm-")
	if err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(ctl)
	stage2 := stage2Script(h.busybox, cfg.Modules, dir, argv, env)
	if err := os.WriteFile(filepath.Join(ctl, "stage2"), []byte(stage2), 0o755); err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	irPath := filepath.Join(ctl, "initramfs.cpio")
	irFile, err := os.Create(irPath)
	if err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}
	ir := initramfs{Busybox: h.busybox, Modules: load, Init: initScript(load, tmpfs, shares, h.busybox)}
	if err := ir.write(irFile); err != nil {
		irFile.Close()
		return res, fmt.Errorf("vm: %w", err)
	}
	if err := irFile.Close(); err != nil {
		return res, fmt.Errorf("vm: %w", err)
	}

	args := qemuArgs(h.kernel.Image, irPath, ctl, shares, cfg.Memory, cfg.CPUs)
	console := &consoleWriter{out: cfg.Console, marker: []byte(startedMarker + "\n")}
	cmd := exec.CommandContext(ctx, h.qemu, args...)
	cmd.Stdout = console
	cmd.Stderr = console
	// If the test binary dies, the VM must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	console.start = start
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("vm: starting qemu: %w", err)
	}
	waitErr := cmd.Wait()
	res.Elapsed = time.Since(start)
	res.Output = console.bytes()
	res.Boot = console.startedAfter()

	if ctx.Err() != nil {
		return res, fmt.Errorf("vm: %w (qemu killed after %v)", ctx.Err(), res.Elapsed.Round(time.Millisecond))
	}
	if b, err := os.ReadFile(filepath.Join(ctl, "setup-failed")); err == nil {
		return res, fmt.Errorf("vm: %s", strings.TrimSpace(string(b)))
	}
	b, err := os.ReadFile(filepath.Join(ctl, "status"))
	if err != nil {
		return res, fmt.Errorf("vm: the VM ended without the command's exit status (qemu: %v); console:\n%s", waitErr, tail(res.Output, 40))
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return res, fmt.Errorf("vm: bad status %q", b)
	}
	res.ExitCode = code
	return res, nil
}

// guestEnvironment is env with PATH defaulted and the guest marker set.
func guestEnvironment(env []string) []string {
	out := make([]string, 0, len(env)+2)
	hasPath := false
	for _, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == guestEnv {
			continue
		}
		if k == "PATH" {
			hasPath = true
		}
		out = append(out, e)
	}
	if !hasPath {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return append(out, guestEnv+"=1")
}

// qemuArgs is the machine: no display, no default devices, no network, the console on the
// first serial port streamed to qemu's stdout, and three kinds of 9p export: the root
// (read-only), the control directory and the caller's shares (writable).
func qemuArgs(image, initrd, ctl string, shares []string, memory, cpus int) []string {
	if memory <= 0 {
		memory = 1024
	}
	if cpus <= 0 {
		cpus = min(2, runtime.NumCPU())
	}
	cmdline := strings.Join([]string{
		"console=ttyS0",
		"rdinit=/init",
		"panic=-1", // a panic reboots at once, and -no-reboot turns that into qemu's exit
		"quiet", "loglevel=3",
		"mitigations=off", // nothing to protect in a throwaway VM, and emulated barriers cost
		"8250.nr_uarts=1", // probing 32 legacy UARTs is slow under emulation
		// Without it the guest finds no stable TSC under TCG and reads the clock from the
		// emulated HPET, a system call each time (1.2 µs here, against 0.18 µs through the
		// vDSO): a Go program, which reads the clock far more often than keepalived, paid
		// for it in every benchmark run in the VM. Real hardware has a usable TSC.
		"tsc=reliable", "clocksource=tsc",
	}, " ")
	args := []string{
		"-accel", "tcg",
		"-machine", "pc",
		// la57 off: the race detector's shadow memory assumes 4-level paging (47-bit user
		// addresses); TCG's "max" CPU would otherwise offer 5-level paging to the guest.
		"-cpu", "max,la57=off",
		"-smp", strconv.Itoa(cpus),
		"-m", strconv.Itoa(memory),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-nic", "none",
		"-serial", "stdio",
		"-kernel", image,
		"-initrd", initrd,
		"-append", cmdline,
		"-virtfs", "local,id=root,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,id=ctl,path=" + qemuEscape(ctl) + ",mount_tag=ctl,security_model=passthrough,multidevs=remap",
	}
	for i, s := range shares {
		tag := fmt.Sprintf("share%d", i)
		args = append(args, "-virtfs", "local,id="+tag+",path="+qemuEscape(s)+",mount_tag="+tag+",security_model=passthrough,multidevs=remap")
	}
	return args
}

// qemuEscape doubles commas, qemu's way of putting one in an option value.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// consoleWriter keeps and forwards the console, without the serial line's carriage returns,
// and notes when stage 2's marker line went by.
type consoleWriter struct {
	mu      sync.Mutex
	out     io.Writer
	buf     bytes.Buffer
	marker  []byte
	start   time.Time
	started time.Time
}

func (c *consoleWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := bytes.ReplaceAll(p, []byte("\r"), nil)
	from := max(0, c.buf.Len()-len(c.marker))
	c.buf.Write(clean)
	if c.started.IsZero() && bytes.Contains(c.buf.Bytes()[from:], c.marker) {
		c.started = time.Now()
	}
	if c.out != nil {
		// A console reader that fails must not stop the VM: the output is kept anyway.
		_, _ = c.out.Write(clean)
	}
	return len(p), nil
}

func (c *consoleWriter) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

func (c *consoleWriter) startedAfter() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		return 0
	}
	return c.started.Sub(c.start)
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
