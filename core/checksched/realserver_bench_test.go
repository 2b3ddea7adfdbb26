package checksched

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/core/config"
)

// BenchmarkReloadKeys is what a reload of a thousand real servers' file costs before any
// plugin is asked: core translates every checker and keys it for the running and the new
// configuration (Reconfigured), and the check process does the same for its specs.
func BenchmarkReloadKeys(b *testing.B) {
	var src strings.Builder
	for i := range 10 {
		fmt.Fprintf(&src, "virtual_server 192.0.2.100 %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", 80+i)
		for j := range 100 {
			fmt.Fprintf(&src, "    real_server 198.51.100.%d %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", 11+j, 8000+i)
		}
		src.WriteString("}\n")
	}
	cfg, ds := config.Parse("lvs.conf", []byte(src.String()), config.Options{DisableIncludes: true})
	if ds.HasErrors() {
		b.Fatal(ds.Errors())
	}
	b.ReportAllocs()
	for b.Loop() {
		asked := Reconfigured(cfg, cfg)
		if asked("192.0.2.100:80/198.51.100.11:8000/TCP_CHECK") {
			b.Fatal("an unchanged checker is reconfigured")
		}
	}
}
