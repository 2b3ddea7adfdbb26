package kerneltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/vm"
)

// samplesDir finds keepalived's samples in a shared/keepalived-samples folder beside the
// repository (they are not the project's to copy), or "".
func samplesDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(dir, "shared", "keepalived-samples")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// dropped are the blocks taken out of a file before both daemons read it: VRRP (the
// comparison is of the load balancer, and keepalived runs with -C), global_defs (mail
// servers and the like), and the checkers: with no checker a real server is alive in both,
// so the table compared is the file's own, not the outcome of probes that would take half a
// minute to fail against backends that do not exist.
var dropped = map[string]bool{
	"global_defs": true, "vrrp_instance": true, "vrrp_sync_group": true, "vrrp_script": true,
	"vrrp_track_file": true, "static_ipaddress": true, "static_routes": true, "static_rules": true,
	"HTTP_GET": true, "SSL_GET": true, "TCP_CHECK": true, "MISC_CHECK": true, "SMTP_CHECK": true,
	"DNS_CHECK": true, "PING_CHECK": true, "UDP_CHECK": true, "BFD_CHECK": true, "FILE_CHECK": true,
}

var (
	ipv4Re = regexp.MustCompile(`\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.(\d{1,3})\b`)
	docNet = []string{"192.0.2", "198.51.100", "203.0.113"}
)

// prepare is the file both daemons read: comments and dropped blocks out, and each /24 of
// the sample's IPv4 addresses (the last byte kept, so ranges stay ranges) and its IPv6
// prefix ae00:: moved to documentation prefixes.
func prepare(text string) (string, error) {
	var out []string
	skip := 0
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexAny(line, "!#"); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = line[:i]
		}
		f := strings.Fields(line)
		opens, closes := strings.Count(line, "{"), strings.Count(line, "}")
		if skip > 0 {
			skip += opens - closes
			continue
		}
		if len(f) > 0 && dropped[f[0]] && opens > 0 {
			skip = opens - closes
			continue
		}
		if len(f) > 0 {
			out = append(out, strings.TrimRight(line, " \t"))
		}
	}
	nets := map[string]string{}
	var err error
	s := ipv4Re.ReplaceAllStringFunc(strings.Join(out, "\n")+"\n", func(a string) string {
		m := ipv4Re.FindStringSubmatch(a)
		if strings.HasPrefix(m[1], "255.") || m[1] == "0.0.0" {
			return a // masks
		}
		n, ok := nets[m[1]]
		if !ok {
			if len(nets) == len(docNet) {
				err = fmt.Errorf("more than %d /24 networks", len(docNet))
				return a
			}
			n = docNet[len(nets)]
			nets[m[1]] = n
		}
		return n + "." + m[2]
	})
	s = strings.ReplaceAll(s, "ae00::", "2001:db8::")
	return s, err
}

// ipvsTable is ipvsadm -Ln without its header and connection counts: each service line
// with its destinations in the kernel's order, the services sorted (their order in the
// listing is the kernel's hash order, which differs between namespaces).
func ipvsTable(out string) []string {
	var svcs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || f[0] == "IP" || f[0] == "Prot" || f[1] == "RemoteAddress:Port":
		case f[0] == "->" && len(svcs) > 0 && len(f) >= 4:
			svcs[len(svcs)-1] += "\n  -> " + strings.Join(f[1:4], " ")
		default:
			svcs = append(svcs, strings.Join(f, " "))
		}
	}
	slices.Sort(svcs)
	return svcs
}

// settled reads ipvsadm -Ln in ns until two reads in a row agree, and are not empty
// unless 15 s went by (a file whose services all fail to program).
func settled(t *testing.T, ns netns, exited func() bool) []string {
	t.Helper()
	start := time.Now()
	var last []string
	same := 0
	waitFor(t, 90*time.Second, "the table settles in "+string(ns), func() bool {
		out, err := ns.try("ipvsadm", "-Ln")
		if err != nil {
			return false
		}
		tab := ipvsTable(out)
		if slices.Equal(tab, last) {
			same++
		} else {
			last, same = tab, 0
		}
		time.Sleep(200 * time.Millisecond)
		return same >= 1 && (len(tab) > 0 || time.Since(start) > 15*time.Second || exited())
	})
	return last
}

// TestVMSameTable runs keepalived 2.2.7 (-C, its checker process only) and then vigil on
// the same file, each in a namespace of its own, and compares their IPVS tables: the seed's
// virtual_server block, a service under ha_suspend whose address is not here, and every
// keepalived sample with a virtual_server (from the shared folder beside the repository;
// skipped, saying so, where there is none).
func TestVMSameTable(t *testing.T) {
	vm.Guest(t)
	// Each test has namespaces (and so IPVS tables) of its own: they overlap their waits.
	t.Parallel()
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed: apt-get install keepalived")
	}
	files := []string{"testdata/seed.conf", "testdata/ha_suspend.conf"}
	if dir := samplesDir(); dir != "" {
		m, _ := filepath.Glob(filepath.Join(dir, "keepalived.conf*"))
		files = append(files, m...)
	} else {
		t.Log("keepalived's samples not found (a shared/keepalived-samples folder beside the repository): only testdata is compared")
	}
	var (
		mu     sync.Mutex
		report []string
	)
	note := func(format string, args ...any) {
		mu.Lock()
		report = append(report, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// A few files at a time: the VM has two CPUs and 1 GiB, and each vigil is three processes.
	sem := make(chan struct{}, 4)
	t.Run("files", func(t *testing.T) {
		for i, file := range files {
			name := filepath.Base(file)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`(?m)^\s*virtual_server\s`).Match(b) {
				continue
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				text, err := prepare(string(b))
				if err != nil {
					note("%-38s not compared: %v", name, err)
					t.Skipf("%s: %v", name, err)
				}
				work := t.TempDir()
				conf := filepath.Join(work, "keepalived.conf")
				if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				tag := fmt.Sprintf("st%d", i)
				kns, vns := newNS(t, tag+"k"), newNS(t, tag+"v")
				// keepalived -t fails on what it only warns about when it runs (an unknown
				// keyword, a protocol on a fwmark service): say what it says, compare anyway.
				warn := ""
				if out, err := kns.try(ka, "-t", "-f", conf); err != nil {
					warn = "; keepalived -t: " + firstLine(out)
				}
				kt := runKeepalived(t, kns, ka, conf, work)
				if len(kt) == 0 {
					note("%-38s keepalived programs nothing%s", name, warn)
					return
				}
				d := startVigilFile(t, vns, conf)
				vt := settled(t, vns, func() bool { return d.exited() })
				if slices.Equal(kt, vt) {
					note("%-38s identical, %d services%s", name, len(kt), warn)
					t.Logf("identical:\n%s", strings.Join(kt, "\n"))
					return
				}
				note("%-38s DIFFERENT%s", name, warn)
				t.Errorf("the tables differ for %s\nfile:\n%s\nkeepalived:\n%s\nvigil:\n%s", name, text, strings.Join(kt, "\n"), strings.Join(vt, "\n"))
			})
		}
	})
	slices.Sort(report)
	t.Logf("keepalived 2.2.7 and vigil on the same file:\n%s", strings.Join(report, "\n"))
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// runKeepalived runs keepalived's checker process on conf in ns until its table settles,
// and returns the table; keepalived is stopped (its process group killed) before vigil
// runs.
func runKeepalived(t *testing.T, ns netns, ka, conf, work string) []string {
	t.Helper()
	logf, err := os.Create(filepath.Join(work, "keepalived.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", string(ns), ka, "-n", "-l", "-C", "-f", conf,
		"-p", filepath.Join(work, "keepalived.pid"), "-c", filepath.Join(work, "checkers.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	exited := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "keepalived.log"))
			t.Logf("keepalived's log:\n%s", b)
		}
	}()
	return settled(t, ns, exited)
}
