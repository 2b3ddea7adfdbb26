package vm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needVM skips (or, when Required, fails) a test that boots a VM where none can start.
func needVM(t *testing.T) {
	t.Helper()
	if r := SkipReason(); r != "" {
		t.Skip(r)
	}
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("a VM cannot start here: %v", err)
		}
		t.Skipf("a VM cannot start here: %v", err)
	}
}

// logWriter passes the console to t.Log line by line, so it shows with -v and on failure.
type logWriter struct {
	t    *testing.T
	mu   sync.Mutex
	part []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.t.Log("console: " + string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

// One boot checks what every user of the package relies on: the module the test asks for is
// loaded and modprobe works inside, /proc/net/ip_vs exists, a namespace and a veth pair pass
// traffic, a share is written through to the host, the command's output reaches the console,
// and its exit status comes back.
func TestVMRun(t *testing.T) {
	needVM(t)
	work := t.TempDir() // under /tmp, which the guest covers with its own tmpfs
	script := `set -e
modprobe ip_vs
grep -q '^ip_vs_rr ' /proc/modules
cat /proc/net/ip_vs
ip netns add vmtest
ip link add vm0 type veth peer name vm1 netns vmtest
ip addr add 192.0.2.1/24 dev vm0
ip link set vm0 up
ip -n vmtest addr add 192.0.2.2/24 dev vm1
ip -n vmtest link set vm1 up
ip netns exec vmtest ping -c 1 -W 10 192.0.2.1
echo "$GREETING" > "$WORK/out"
pwd
exit 7
`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Shares: []string{work}, Modules: []string{"ip_vs_rr"}, Dir: work, Console: &logWriter{t: t}},
		[]string{"/bin/sh", "-c", script}, []string{"WORK=" + work, "GREETING=hello from the guest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot %v, whole VM %v", res.Boot, res.Elapsed)
	if res.ExitCode != 7 {
		t.Errorf("exit code %d, want 7 (the script's own)", res.ExitCode)
	}
	out := string(res.Output)
	for _, want := range []string{"IP Virtual Server version", "1 packets transmitted, 1 received", "\n" + work + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(out, "\r") {
		t.Error("console output keeps carriage returns")
	}
	if res.Boot <= 0 || res.Boot > res.Elapsed {
		t.Errorf("boot time %v not within the VM's %v: the start marker was not seen", res.Boot, res.Elapsed)
	}
	b, err := os.ReadFile(filepath.Join(work, "out"))
	if err != nil || string(b) != "hello from the guest\n" {
		t.Errorf("share: %q, %v; want the guest's line", b, err)
	}
}

// A module that cannot be loaded is the VM's failure, not the command's.
func TestVMRunMissingModule(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: one boot is enough")
	}
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Modules: []string{"no_such_module"}}, []string{"true"}, nil)
	if err == nil || !strings.Contains(err.Error(), "modprobe no_such_module failed") {
		t.Fatalf("err = %v, want the modprobe failure; console:\n%s", err, res.Output)
	}
}

// Cancelling the context kills qemu at once; Run says why.
func TestVMRunCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: one boot is enough")
	}
	needVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Cancel as soon as the command has started, so the VM is surely up and busy.
	w := &cancelOn{marker: []byte(startedMarker), cancel: cancel}
	start := time.Now()
	_, err := Run(ctx, Config{Console: w}, []string{"sleep", "3600"}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	t.Logf("returned %v after start", time.Since(start))
}

type cancelOn struct {
	mu     sync.Mutex
	buf    []byte
	marker []byte
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if bytes.Contains(c.buf, c.marker) {
		c.cancel()
	}
	return len(p), nil
}

func TestQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `a "b" $c $(d) \e`, "new\nline", "'''"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+quote(s)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != s {
			t.Errorf("quote(%q) reads back as %q", s, out)
		}
	}
}

// The archive is checked field by field against the newc layout, reading it back.
func TestCPIO(t *testing.T) {
	var b bytes.Buffer
	c := newCPIO(&b)
	c.dir("bin")
	c.chardev("dev/console", 5, 1)
	c.file("init", []byte("#!/bin/sh\n"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name       string
		mode       uint64
		rmaj, rmin uint64
		data       string
	}
	var got []entry
	buf := b.Bytes()
	for len(buf) > 0 {
		if len(buf) < 110 || string(buf[:6]) != "070701" {
			t.Fatalf("bad header at %d", b.Len()-len(buf))
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(buf[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		size, nameSize := int(field(6)), int(field(11))
		name := string(buf[110 : 110+nameSize-1])
		off := (110 + nameSize + 3) &^ 3
		e := entry{name: name, mode: field(1), rmaj: field(9), rmin: field(10), data: string(buf[off : off+size])}
		buf = buf[(off+size+3)&^3:]
		got = append(got, e)
		if name == "TRAILER!!!" {
			break
		}
	}
	if len(buf) != 0 {
		t.Errorf("%d bytes after the trailer: %s", len(buf), hex.EncodeToString(buf))
	}
	want := []entry{
		{"bin", 0o040755, 0, 0, ""},
		{"dev/console", 0o020600, 5, 1, ""},
		{"init", 0o100755, 0, 0, "#!/bin/sh\n"},
		{"TRAILER!!!", 0, 0, 0, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestLoadOrder(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/fs/9p/9p.ko: kernel/fs/fscache/fscache.ko kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/drivers/virtio/virtio.ko kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
`
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	// As in a kernel that builds the legacy virtio_pci device support in.
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci_legacy_dev.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := readModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.loadOrder(append(append([]string{}, rootModules...), "virtio_pci_legacy_dev"))
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, f := range got {
		if !strings.HasPrefix(f, dir+"/kernel/") {
			t.Errorf("%s is not under the modules directory", f)
		}
		n := moduleName(f)
		if _, dup := pos[n]; dup {
			t.Errorf("%s loaded twice", n)
		}
		pos[n] = i
	}
	if len(pos) != 9 {
		t.Errorf("%d modules (%v), want the 9 loadable ones", len(pos), got)
	}
	for name, deps := range m.deps {
		for _, d := range deps {
			if pos[d] > pos[name] {
				t.Errorf("%s comes before its dependency %s", name, d)
			}
		}
	}
	if _, err := m.loadOrder([]string{"ip_vs"}); err == nil {
		t.Error("a module missing from modules.dep loads")
	}
}

func TestFindKernel(t *testing.T) {
	boot, mods := t.TempDir(), t.TempDir()
	write := func(version, dep string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(boot, "vmlinuz-"+version), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(mods, version), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mods, version, "modules.dep"), []byte(dep), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("6.1.0-57-cloud-amd64", "kernel/net/netfilter/ipvs/ip_vs.ko:\n")
	if _, err := findKernel(boot, mods); err == nil || !strings.Contains(err.Error(), "linux-image-amd64") {
		t.Errorf("only a cloud kernel: err = %v, want the package to install", err)
	}
	nineP := "kernel/fs/9p/9p.ko:\nkernel/net/9p/9pnet_virtio.ko:\n"
	write("6.1.0-9-amd64", nineP)
	write("6.1.0-57-amd64", nineP)
	k, err := findKernel(boot, mods)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "6.1.0-57-amd64" {
		t.Errorf("picked %s, want the newest with 9p", k.Version)
	}
}

func TestGuestRun(t *testing.T) {
	names := []string{"TestParse", "TestVMRoundRobin", "TestVMWeights", "TestVMWeightsZero"}
	for _, c := range []struct {
		run, want string
	}{
		{"", "^(TestVMRoundRobin|TestVMWeights|TestVMWeightsZero)$"},
		{"TestParse", ""},
		{"Weights$", "^(TestVMWeights)$"},
		{"Weights/case[/]1/x", "^(TestVMWeights|TestVMWeightsZero)$/case[/]1/x"},
		{"(Parse|Round)", "^(TestVMRoundRobin)$"},
	} {
		got, err := guestRun(names, "^TestVM", c.run)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("-run %q: guest -run %q, want %q", c.run, got, c.want)
		}
	}
	if got, _ := guestRun(nil, "^TestVM", "X/y"); got != "^TestVM/y" {
		t.Errorf("without names: %q", got)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"6.1.0-9-amd64", "6.1.0-57-amd64", true},
		{"6.1.0-57-amd64", "6.1.0-9-amd64", false},
		{"6.1.0-57-amd64", "6.12.0-1-amd64", true},
		{"6.1.0-57-amd64", "6.1.0-57-amd64", false},
	} {
		if got := versionLess(c.a, c.b); got != c.less {
			t.Errorf("versionLess(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

// The generated scripts must at least parse: a syntax error would only show as a VM that
// powers off without a word.
func TestScriptsParse(t *testing.T) {
	scripts := map[string]string{
		"init": initScript([]string{"/lib/modules/x/kernel/fs/9p/9p.ko"}, []string{"/tmp", "/var/run"},
			[]string{"/work/it's here", "/tmp/a b"}, "/usr/bin/busybox"),
		"stage2": stage2Script("/usr/bin/busybox", []string{"ip_vs"}, "/work/x", []string{"/bin/echo", "a'b", "$c"},
			[]string{"A=1", "B=it's"}),
	}
	for name, s := range scripts {
		if out, err := exec.Command("/bin/sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v: %s\n%s", name, err, out, s)
		}
	}
}
