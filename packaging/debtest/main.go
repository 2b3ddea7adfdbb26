// Command debtest installs vigil's Debian package into a fresh Debian 12 and checks it as an
// operator would meet it (make test-package, the last step of make test):
//
//   - without a service manager (a chroot of the unpacked system, as in an image build):
//     check.sh: dpkg -i, every file where the installed daemon looks for it, the conffile, the
//     unit enabled by postinst and nothing started, vigil --version, vigil -t on the packaged
//     /etc/vigil/vigil.conf and an example, vigil plugins finding the packaged plugins, the
//     daemon started with the unit's ExecStart line reaching MASTER and exiting 0 on
//     SIGTERM, a reinstall keeping an edited conffile and a disabled unit, dpkg -r keeping
//     only the conffile, dpkg -P leaving nothing;
//   - under systemd as PID 1 (internal/lab/nspawn): dpkg -i enables and starts vigil.service and
//     returns once vigil is ready, its instance becomes MASTER, man shows the pages, a
//     reinstall (an upgrade) restarts a running vigil and leaves a stopped one stopped, dpkg
//     -r stops it and masks the unit, dpkg -P leaves nothing.
//
// The system is internal/lab/nspawn's: debootstrap --variant=minbase of bookworm (with systemd,
// D-Bus and iproute2) from this machine's Debian mirror, built once and cached as a tarball in
// /var/cache/vigil-test, which cmd/vigil's TestSystemdUnitUnderSystemd shares; each part
// unpacks a fresh copy. Both run in namespaces of their own (the container's private network;
// for the chroot, unshare --net), so nothing reaches the host's network. Without root,
// systemd-nspawn or debootstrap it says why and exits 0, as tests that need root skip.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/nspawn"
)

//go:embed check.sh
var checkScript []byte

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "debtest: FAIL: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: debtest dist/vigil_VERSION_ARCH.deb") }
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	deb, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		return err
	}
	pkg, err := os.ReadFile(deb)
	if err != nil {
		return fmt.Errorf("the package: %w (make package writes it)", err)
	}
	if err := nspawn.Available(); err != nil {
		fmt.Printf("debtest: SKIP: %v\n", err)
		return nil
	}
	// Bounds for a machine that has to debootstrap first (2.5 min) while others load it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	logf := func(format string, args ...any) { fmt.Printf("debtest: "+format+"\n", args...) }
	start := time.Now()
	tarball, err := nspawn.Rootfs(ctx, logf)
	if err != nil {
		return err
	}
	logf("fresh %s root file system ready in %s: %s", nspawn.Suite, time.Since(start).Round(time.Second), tarball)
	dir, err := os.MkdirTemp("/var/tmp", "vigil-debtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	start = time.Now()
	if err := withoutSystemd(ctx, tarball, filepath.Join(dir, "chroot"), pkg); err != nil {
		return fmt.Errorf("without systemd: %w", err)
	}
	logf("without systemd: passed in %s", time.Since(start).Round(time.Second))
	start = time.Now()
	if err := underSystemd(ctx, tarball, filepath.Join(dir, "boot"), pkg, logf); err != nil {
		return fmt.Errorf("under systemd: %w", err)
	}
	logf("under systemd: passed in %s", time.Since(start).Round(time.Second))
	logf("OK")
	return nil
}

// withoutSystemd runs check.sh in a chroot of a fresh copy of the system, in mount, PID and
// network namespaces of its own: lo is brought up by the host's ip before the chroot, the
// proc mount and any process left over end with the namespaces.
func withoutSystemd(ctx context.Context, tarball, dir string, pkg []byte) error {
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "tar", "-C", root, "--numeric-owner", "-xf", tarball).CombinedOutput(); err != nil {
		return fmt.Errorf("unpack %s: %w\n%s", tarball, err, out)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/vigil.deb"), pkg, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/check.sh"), checkScript, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc="+filepath.Join(root, "proc"),
		"bash", "-c", `ip link set lo up && exec chroot "$1" /bin/bash /tmp/check.sh`, "_", root)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// underSystemd boots a fresh copy with systemd as PID 1 and follows the package through
// install, upgrade and removal as systemd sees the unit.
func underSystemd(ctx context.Context, tarball, dir string, pkg []byte, logf func(string, ...any)) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m, err := nspawn.Boot(ctx, tarball, dir, "deb")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out, _ := m.Run(context.Background(), "journalctl", "--no-pager", "-n", "60", "-u", "vigil")
			logf("the journal of vigil.service:\n%s", out)
		}
		m.Close()
	}()
	// Not /tmp: the booted container mounts a tmpfs over it.
	if err := os.WriteFile(filepath.Join(m.Root, "root/vigil.deb"), pkg, 0o644); err != nil {
		return err
	}
	sh := func(args ...string) (string, error) {
		out, err := m.Run(ctx, args...)
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) (string, error) {
		logf("under systemd: %s", strings.Join(args, " "))
		out, err := sh(args...)
		if err != nil {
			return out, fmt.Errorf("%w\n%s", err, out)
		}
		return out, nil
	}
	want := func(what, want string, args ...string) error {
		got, _ := sh(args...)
		if got != want {
			return fmt.Errorf("%s: %s says %q, want %q", what, strings.Join(args, " "), got, want)
		}
		return nil
	}
	mainPID := func() string { pid, _ := sh("systemctl", "show", "--property=MainPID", "--value", "vigil"); return pid }

	// dpkg -i: postinst enables and starts the unit; Type=notify makes the start, and so
	// dpkg, return only once vigil is ready.
	if _, err := must("dpkg", "-i", "/root/vigil.deb"); err != nil {
		return err
	}
	if err := errors.Join(
		want("after dpkg -i", "enabled", "systemctl", "is-enabled", "vigil"),
		want("after dpkg -i", "active", "systemctl", "is-active", "vigil"),
	); err != nil {
		return err
	}
	// The instance becomes MASTER after its master-down interval (3 adverts and a skew).
	state := ""
	for range 60 {
		out, _ := sh("vigil", "status", "--json")
		var st struct {
			Instances []struct{ Name, State string } `json:"instances"`
		}
		if json.Unmarshal([]byte(out), &st) == nil {
			for _, in := range st.Instances {
				if in.Name == "VI_EXAMPLE" {
					state = in.State
				}
			}
		}
		if state == "MASTER" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if state != "MASTER" {
		return fmt.Errorf("the packaged configuration's VI_EXAMPLE is %q, not MASTER", state)
	}
	logf("under systemd: vigil status: VI_EXAMPLE is MASTER")
	// The man pages as man-db shows them, with the host's man (the container has no man-db).
	for _, page := range []string{"usr/share/man/man8/vigil.8.gz", "usr/share/man/man5/vigil.conf.5.gz"} {
		cmd := exec.CommandContext(ctx, "man", "-l", filepath.Join(m.Root, page))
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=80")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "SEE ALSO") {
			return fmt.Errorf("man -l %s: %v\n%s", page, err, out)
		}
	}
	logf("under systemd: man -l shows both installed pages")

	// An upgrade (the same package again) restarts a running vigil...
	before := mainPID()
	if _, err := must("dpkg", "-i", "/root/vigil.deb"); err != nil {
		return err
	}
	if after := mainPID(); after == before || after == "0" {
		return fmt.Errorf("an upgrade did not restart the running vigil: MainPID %s before, %s after", before, after)
	}
	if err := want("after an upgrade", "active", "systemctl", "is-active", "vigil"); err != nil {
		return err
	}
	// ... and leaves a stopped one stopped.
	if _, err := must("systemctl", "stop", "vigil"); err != nil {
		return err
	}
	if _, err := must("dpkg", "-i", "/root/vigil.deb"); err != nil {
		return err
	}
	if err := want("after an upgrade of a stopped vigil", "inactive", "systemctl", "is-active", "vigil"); err != nil {
		return err
	}
	if _, err := must("systemctl", "start", "vigil"); err != nil {
		return err
	}

	// dpkg -r stops vigil and masks the unit; the conffile stays.
	if _, err := must("dpkg", "-r", "vigil"); err != nil {
		return err
	}
	if err := errors.Join(
		want("after dpkg -r", "inactive", "systemctl", "is-active", "vigil"),
		want("after dpkg -r", "masked", "systemctl", "is-enabled", "vigil"),
		want("after dpkg -r", "/etc/vigil/vigil.conf", "sh", "-c", "ls /etc/vigil/vigil.conf"),
	); err != nil {
		return err
	}
	// dpkg -P leaves nothing: no configuration, no unit, no mask.
	if _, err := must("dpkg", "-P", "vigil"); err != nil {
		return err
	}
	return errors.Join(
		want("after dpkg -P", "gone", "sh", "-c", "[ ! -e /etc/vigil ] && [ ! -e /etc/systemd/system/vigil.service ] && [ ! -e /etc/systemd/system/multi-user.target.wants/vigil.service ] && echo gone"),
		want("after dpkg -P", "no unit", "sh", "-c", `s=$(systemctl is-enabled vigil 2>&1); case $s in *masked* | enabled | disabled | static) echo "$s" ;; *) echo no unit ;; esac`),
	)
}
