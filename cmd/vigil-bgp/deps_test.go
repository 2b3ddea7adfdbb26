package main

import (
	"os/exec"
	"strings"
	"testing"
)

// GoBGP stays out of the vigil binary (core/bgp's package doc says why): only vigil-bgp links
// it. The check on vigil-bgp itself shows the test sees GoBGP where it is.
func TestOnlyVigilBGPLinksGoBGP(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot list dependencies")
	}
	for pkg, want := range map[string]bool{
		"github.com/vigil-ha/vigil/cmd/vigil":     false,
		"github.com/vigil-ha/vigil/cmd/vigil-bgp": true,
	} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		var gobgp []string
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, "github.com/osrg/gobgp") {
				gobgp = append(gobgp, p)
			}
		}
		if has := len(gobgp) > 0; has != want {
			t.Errorf("%s links GoBGP: %v (packages %v); want %v", pkg, has, gobgp, want)
		}
	}
}
