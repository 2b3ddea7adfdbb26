package example

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// TestMain runs the host's tests, then boots one VM with ip_vs loaded and runs the TestVM
// tests in it. Whatever the VM tests need from the host (binaries from go build, say) is made
// by Prepare, which runs only when the VM boots; the directory of the test binary is shared
// with the guest (go test removes it afterwards), so Prepare writes there.
func TestMain(m *testing.M) {
	vm.Main(m, "^TestVM", vm.Config{Modules: []string{"ip_vs"}, Prepare: prepare})
}

func prepare() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(filepath.Dir(exe), "made-on-host"), []byte("made on the host\n"), 0o644)
}

// What Prepare made on the host is there in the VM.
func TestVMPrepared(t *testing.T) {
	vm.Guest(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(exe), "made-on-host"))
	if err != nil || string(b) != "made on the host\n" {
		t.Errorf("read %q, %v; want what Prepare wrote", b, err)
	}
}

// An ordinary test: it runs on the host only.
func TestHost(t *testing.T) {
	if vm.InGuest() {
		t.Fatal("a host test ran inside the VM")
	}
}

// IPVS is there in the VM, and ipvsadm from the host's root drives it.
func TestVMIPVS(t *testing.T) {
	vm.Guest(t)
	b, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		t.Fatalf("ip_vs was loaded by vm.Config.Modules: %v", err)
	}
	t.Logf("/proc/net/ip_vs:\n%s", b)
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		t.Skip("ipvsadm not found: apt-get install ipvsadm")
	}
	for _, args := range [][]string{
		{"-A", "-t", "192.0.2.1:80", "-s", "rr"},
		{"-a", "-t", "192.0.2.1:80", "-r", "192.0.2.11:80", "-m", "-w", "2"},
	} {
		if out, err := exec.Command("ipvsadm", args...).CombinedOutput(); err != nil {
			t.Fatalf("ipvsadm %v: %v: %s", args, err, out)
		}
	}
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v: %s", err, out)
	}
	for _, want := range []string{"TCP  192.0.2.1:80 rr", "-> 192.0.2.11:80", "Masq    2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, out)
		}
	}
}

// internal/lab's namespaces work in the VM as on the host: two nodes on a bridge reach each other.
func TestVMLab(t *testing.T) {
	vm.Guest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.New(ctx, "vmex", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := l.Nodes[0].Exec(ctx, "ping", "-c", "1", "-W", "10", l.Nodes[1].Addr4.Addr().String())
	if err != nil {
		t.Fatalf("ping n1 -> n2: %v\n%s", err, out)
	}
}
