// Package nspawn boots a throwaway Debian system with systemd as its PID 1, for the tests that
// need the real service manager: `systemctl start` waiting for vigil's READY=1, the .deb's
// maintainer scripts enabling and starting the unit. The test machine itself does not run
// systemd as init, so `systemd-run` and `systemctl` cannot be used on it; systemd-nspawn can
// still boot a container from a directory.
//
// The root file system is Debian bookworm from debootstrap (minbase, plus systemd and
// iproute2), built once and cached as a tarball; each Boot unpacks a fresh copy, so every test
// starts from the same clean machine. The container has a private network (only lo until the
// test adds interfaces inside it), so nothing a test does there reaches the host's network.
package nspawn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Suite and Packages make the cached root file system; changing either makes a new cache.
const Suite = "bookworm"

// Packages are installed beside debootstrap's minbase: systemd as init, D-Bus for systemctl,
// and iproute2 to give the container interfaces and addresses.
var Packages = []string{"systemd", "systemd-sysv", "dbus", "iproute2"}

// CacheDir holds the root file system tarballs; a fresh machine builds one in about 2.5
// minutes (debootstrap from the machine's Debian mirror), later runs unpack it in seconds.
const CacheDir = "/var/cache/vigil-test"

// Available says why containers cannot be booted here, or nil when they can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("booting a container with systemd-nspawn needs root")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (Debian packages systemd-container, debootstrap, util-linux, tar; .ci/deps.sh installs them)", tool)
		}
	}
	return nil
}

// Rootfs returns the path of the cached root file system tarball, building it when it is
// missing. Concurrent callers (test packages run in parallel) wait for one build: the build
// holds an exclusive lock on a file beside the tarball.
func Rootfs(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("rootfs cache: %w", err)
	}
	sum := sha256.Sum256([]byte(Suite + " " + strings.Join(Packages, ",")))
	tarball := filepath.Join(CacheDir, fmt.Sprintf("debian-%s-systemd-%s.tar", Suite, hex.EncodeToString(sum[:4])))
	lock, err := os.OpenFile(tarball+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("rootfs cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("rootfs cache lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	build, err := os.MkdirTemp(CacheDir, "build-")
	if err != nil {
		return "", fmt.Errorf("rootfs build: %w", err)
	}
	defer os.RemoveAll(build)
	root := filepath.Join(build, "root")
	start := time.Now()
	logf("building the %s root file system with debootstrap (once per machine, about 2.5 min)", Suite)
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase",
		"--include="+strings.Join(Packages, ","), Suite, root, mirror()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("debootstrap %s: %w\n%s", Suite, err, tail(out, 20))
	}
	// No getty on the console: the test never logs in, and nspawn's console is a log file.
	_ = os.Remove(filepath.Join(root, "etc/systemd/system/getty.target.wants/getty@tty1.service"))
	tmp := tarball + ".tmp"
	if out, err := exec.CommandContext(ctx, "tar", "-C", root, "--numeric-owner", "-cf", tmp, ".").CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("rootfs tarball: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", fmt.Errorf("rootfs tarball: %w", err)
	}
	logf("root file system built in %s: %s", time.Since(start).Round(time.Second), tarball)
	return tarball, nil
}

// mirror is the Debian mirror the machine's own apt uses, so the container gets the same
// packages the machine would; deb.debian.org when none is found.
func mirror() string {
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:" && strings.HasSuffix(fields[1], "/debian"):
				return fields[1]
			case len(fields) >= 3 && fields[0] == "deb" && strings.HasSuffix(fields[1], "/debian"):
				return fields[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// Machine is a booted container.
type Machine struct {
	Name string
	// Root is the container's root directory on the host: a test puts files there (a binary,
	// a package) before it runs commands that use them.
	Root   string
	Log    string // the container's console: systemd's boot messages
	nspawn *exec.Cmd
	leader int // the container's PID 1, as the host sees it
	exited chan struct{}
}

// Boot unpacks a fresh copy of tarball into dir/root and boots it. name must be unique
// among concurrent tests; the process id is added. Close powers it off.
func Boot(ctx context.Context, tarball, dir, name string) (*Machine, error) {
	m := &Machine{
		Name: fmt.Sprintf("vg-%s-%d", name, os.Getpid()),
		Root: filepath.Join(dir, "root"),
		Log:  filepath.Join(dir, "console.log"),
	}
	if err := os.MkdirAll(m.Root, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "tar", "-C", m.Root, "--numeric-owner", "-xf", tarball).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("unpack %s: %w\n%s", tarball, err, out)
	}
	if err := os.WriteFile(filepath.Join(m.Root, "etc/hostname"), []byte(name+"\n"), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(m.Log)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	// --register=no and --keep-unit: the host has no systemd-machined or service manager to
	// register with. --private-network: the container sees only its own lo.
	m.nspawn = exec.Command("systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
		"--private-network", "--directory", m.Root, "--machine", m.Name, "--boot")
	m.nspawn.Stdout, m.nspawn.Stderr = log, log
	m.nspawn.Stdin = nil
	m.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.nspawn.Start(); err != nil {
		return nil, fmt.Errorf("systemd-nspawn: %w", err)
	}
	m.exited = make(chan struct{})
	go func() { _ = m.nspawn.Wait(); close(m.exited) }()
	if err := m.waitBooted(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// waitBooted finds the container's PID 1 (the child of systemd-nspawn that runs systemd) and
// waits until systemd says start-up is over.
func (m *Machine) waitBooted(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for m.leader == 0 {
		select {
		case <-m.exited:
			return fmt.Errorf("systemd-nspawn exited during boot (console: %s)", m.Log)
		case <-ctx.Done():
			return fmt.Errorf("container %s: no systemd process: %w (console: %s)", m.Name, ctx.Err(), m.Log)
		case <-time.After(50 * time.Millisecond):
		}
		m.leader = childRunning(m.nspawn.Process.Pid, "systemd")
	}
	// is-system-running --wait returns once the boot is over: "running", or "degraded" when
	// a unit of the minimal system failed, which does not matter to the tests.
	// Until systemd's own socket is up, systemctl cannot connect or answers "offline": ask
	// again until the boot's deadline.
	for {
		out, err := m.Run(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(string(out))
		if err == nil || state == "degraded" {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("systemd-nspawn exited during boot (console: %s)", m.Log)
		case <-ctx.Done():
			return fmt.Errorf("container %s did not finish booting: %q: %w (console: %s)", m.Name, state, err, m.Log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// childRunning returns the pid of a child of parent whose command is comm, or 0.
func childRunning(parent int, comm string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(c)) == comm {
			return pid
		}
	}
	return 0
}

// Run runs a command inside the container (all of its namespaces) and returns its combined
// output.
func (m *Machine) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(m.leader), "--all", "--"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("in %s: %s: %w", m.Name, strings.Join(args, " "), err)
	}
	return out.Bytes(), err
}

// Close powers the container off, or kills it when it does not stop within 30 s, and waits
// for systemd-nspawn to exit. The unpacked root stays in its directory (the test's temporary
// directory removes it).
func (m *Machine) Close() {
	if m.nspawn == nil || m.nspawn.Process == nil {
		return
	}
	if m.leader != 0 {
		// SIGRTMIN+4 asks systemd for a clean poweroff, as `systemctl poweroff` would.
		_ = syscall.Kill(m.leader, syscall.Signal(34+4))
	}
	select {
	case <-m.exited:
		return
	case <-time.After(30 * time.Second):
	}
	// Killing the container's PID 1 ends every process in its PID namespace.
	if m.leader != 0 {
		_ = syscall.Kill(m.leader, syscall.SIGKILL)
	}
	_ = syscall.Kill(-m.nspawn.Process.Pid, syscall.SIGKILL)
	<-m.exited
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
