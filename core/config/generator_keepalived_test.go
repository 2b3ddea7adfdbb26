package config

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

// TestGeneratorAloneAgainstKeepalived: a ~SEQ, ~SEQx or ~LST with nothing after ')', followed
// by a vrrp_instance block over several lines, gives the instances keepalived 2.2.7 gives:
// keepalived runs in a namespace with -d and its dump of the VRRP instances is the judge.
// (keepalived -t says nothing about which instances it made.) It reads the block once, with
// the variable at its last value; vigil used to refuse the file ("no text to repeat"). A
// multi-line $DEFINITION after ')' is what repeats a block, in both.
func TestGeneratorAloneAgainstKeepalived(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed (make test installs it)")
	}
	if err := lab.Available(); err != nil {
		t.Skipf("skipping namespace test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	l, err := lab.New(ctx, "cfgseq", 1, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	node := l.Nodes[0]

	block := "vrrp_instance VI_${n} {\n    interface eth0\n    virtual_router_id 1${n}\n    priority 100\n" +
		"    virtual_ipaddress {\n        192.0.2.1${n}/32\n    }\n}\n"
	tests := []struct {
		name, src string
		want      []string
		warn      bool
	}{
		{"seq", "~SEQ(n,1,1,3)\n" + block, []string{"VI_3"}, true},
		{"seqx", "~SEQx(n,8,1,0xa)\n" + strings.NewReplacer("1${n}", "10").Replace(block), []string{"VI_a"}, true},
		{"lst", "~LST(n,5,7,6)\n" + block, []string{"VI_6"}, true},
		{"definition", "$BLOCK= \\\n" + strings.ReplaceAll(strings.TrimSuffix(block, "\n"), "\n", " \\\n") + "\n~SEQ(n,1,1,3) $BLOCK\n",
			[]string{"VI_1", "VI_2", "VI_3"}, false},
	}
	dumped := regexp.MustCompile(`VRRP Instance = (\S+)`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(dir, tt.name+".conf")
			src := "global_defs {\n    router_id r1\n}\n" + tt.src
			if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-t", "-f", conf).CombinedOutput(); err != nil {
				t.Fatalf("keepalived -t refuses the file: %v\n%s", err, out)
			}
			p, err := node.Start(bin, "-n", "-l", "-D", "-d", "-G", "-f", conf,
				"-p", filepath.Join(dir, tt.name+".pid"), "-r", filepath.Join(dir, tt.name+"-vrrp.pid"), "-c", filepath.Join(dir, tt.name+"-check.pid"))
			if err != nil {
				t.Fatal(err)
			}
			// The dump lists the VRRP instances, then the interfaces.
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(p.Output(), "------< Interfaces >------") && time.Now().Before(deadline) && !p.Exited() {
				time.Sleep(50 * time.Millisecond)
			}
			p.Kill()
			out := p.Output()
			var ka []string
			for _, m := range dumped.FindAllStringSubmatch(out, -1) {
				ka = append(ka, m[1])
			}
			if !slices.Equal(ka, tt.want) {
				t.Fatalf("keepalived made instances %v, the test expects %v:\n%s", ka, tt.want, out)
			}

			cfg, ds := Load(conf, Options{})
			if ds.HasErrors() {
				t.Fatalf("vigil refuses what keepalived runs:\n%s", joined(ds))
			}
			var got []string
			for _, in := range cfg.Instances {
				got = append(got, in.Name)
			}
			if !slices.Equal(got, ka) {
				t.Errorf("vigil made instances %v, keepalived %v", got, ka)
			}
			if warned := strings.Contains(joined(ds), "nothing after ')' to repeat"); warned != tt.warn {
				t.Errorf("warning about the generator alone on its line: %v, want %v:\n%s", warned, tt.warn, joined(ds))
			}
		})
	}
}
