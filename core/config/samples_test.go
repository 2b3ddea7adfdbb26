package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// samplesDir finds keepalived's sample configurations in the shared/ folder that sits beside
// the repository (they are keepalived's files: read there, never copied in).
func samplesDir(t testing.TB) string {
	t.Helper()
	dir, err := findSamples()
	if err != nil {
		t.Skip("keepalived samples not found: expected a shared/keepalived-samples folder beside the repository")
	}
	return dir
}

func sampleFiles(t testing.TB) (string, []string) {
	dir := samplesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "keepalived.conf*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	return dir, files
}

// TestKeepalivedSamples reads every sample keepalived ships and compares vigil's verdict with
// the expected one in testdata/samples: no panic, every keyword understood or reported as not
// supported, and nothing else.
func TestKeepalivedSamples(t *testing.T) {
	dir, files := sampleFiles(t)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			cfg, ds := Load(f, Options{ConfigID: "high", InterfaceExists: hostInterfaces})
			if cfg == nil {
				t.Fatalf("no model: %v", ds)
			}
			for _, d := range ds {
				if strings.Contains(d.Msg, "unknown keyword") && !keepalivedRejects(name) {
					t.Errorf("keepalived accepts %s but vigil reports: %s", name, d)
				}
			}
			checkGolden(t, filepath.Join("testdata", "samples", name+".want"), render(ds, dir))
		})
	}
}

// keepalivedRejects lists samples with keywords keepalived itself reports as unknown.
func keepalivedRejects(name string) bool {
	return name == "keepalived.conf.vrrp.lvs_syncd" // instance names outside group { }
}

// TestSamplesAgainstKeepalived runs Debian's keepalived as the judge: a sample that
// keepalived -t accepts must give vigil no errors.
func TestSamplesAgainstKeepalived(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed (make test installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("keepalived -t needs root")
	}
	_, files := sampleFiles(t)
	accepted := 0
	for _, f := range files {
		out, err := exec.Command(bin, "-t", "-f", f, "-i", "high").CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("running keepalived: %v", err)
		}
		if err != nil {
			continue // keepalived rejects it too (often: interfaces missing on this host)
		}
		accepted++
		_, ds := Load(f, Options{ConfigID: "high"})
		if ds.HasErrors() {
			t.Errorf("keepalived accepts %s (%s) but vigil reports errors:\n%s", filepath.Base(f), strings.TrimSpace(string(out)), ds.Errors())
		}
	}
	if accepted == 0 {
		t.Fatal("keepalived accepted no sample; the comparison tested nothing")
	}
	t.Logf("%d samples accepted by keepalived, all accepted by vigil", accepted)
}

// TestSeedConfiguration reads the configuration from the tutorial vigil grew from
// (testdata/seed, copied as written there) and expects one precise message per mistake.
func TestSeedConfiguration(t *testing.T) {
	cfg, ds := Load("testdata/seed/keepalived.conf", Options{ConfigID: "node1", InterfaceExists: hostInterfaces})
	if cfg == nil {
		t.Fatal("no model")
	}
	checkGolden(t, "testdata/seed/keepalived.conf.want", render(ds, "testdata/seed"))
	// The mistakes a reader of the tutorial makes, each of which must be named.
	for _, want := range []string{
		`keepalived.conf:10:1: error: block "vrrp_sync_group VG_1" opened here is not closed`,
		`keepalived.conf:15:9: error: unknown keyword "netify_backup" in vrrp_sync_group; did you mean "notify_backup"?`,
		`keepalived.conf:16:22: warning: script "path/xx.shVG_1" is a relative path`,
		`keepalived.conf:32:1: error: "<IPADDR>" is not an IP address`,
		`keepalived.conf:33:27: error: unknown address option "deveth1"; did you mean "dev eth1"?`,
		`keepalived.conf:34:28: error: unknown address option "deveth2"; did you mean "dev eth2"?`,
		`keepalived.conf:36:5: error: unknown keyword "sorry_server" in vrrp_instance; "sorry_server" belongs in virtual_server`,
		`keepalived.conf:43:5: error: unknown keyword "nat_mask" in virtual_server`,
		`keepalived.conf:46:17: error: "192.168.201.100443" is not an IP address; did you mean "192.168.201.100 443"?`,
		`keepalived.conf:56:21: error: digest "ff20ad" is not an MD5 digest`,
		`keepalived.conf:59:12: warning: "nb_get_retry" is deprecated; use "retry"`,
	} {
		if !strings.Contains(render(ds, "testdata/seed"), want) {
			t.Errorf("missing diagnostic %q", want)
		}
	}
}

// TestMigratingListsUnsupported: every keepalived feature the samples use that vigil does not
// support is listed in docs/migrating.md, so operators can see it before they migrate.
func TestMigratingListsUnsupported(t *testing.T) {
	page, err := os.ReadFile("../../docs/migrating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(page), "## keepalived features vigil does not support")
	if !ok {
		t.Fatal("docs/migrating.md has no section on unsupported keepalived features")
	}
	_, files := sampleFiles(t)
	re := regexp.MustCompile(`"([^"]+)" is not supported`)
	checked := 0
	for _, f := range files {
		_, ds := Load(f, Options{ConfigID: "high"})
		for _, d := range ds {
			if !d.Unsupported {
				continue
			}
			m := re.FindStringSubmatch(d.Msg)
			if m == nil {
				continue
			}
			checked++
			if !strings.Contains(section, "`"+m[1]+"`") {
				t.Errorf("%s: docs/migrating.md does not list %q among unsupported features", d.Pos, m[1])
			}
		}
	}
	if checked == 0 {
		t.Fatal("no unsupported keyword found in the samples; the test checked nothing")
	}
}
