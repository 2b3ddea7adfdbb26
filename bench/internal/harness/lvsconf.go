package harness

import (
	"fmt"
	"strings"
)

// The real-server checkers of the load-balancer CPU benchmarks (bench/lvsbench in the VM,
// bench/checkcpu on the host), as both vigil and keepalived read them.
const (
	TCPCheck  = "TCP_CHECK {\n            connect_timeout 1\n        }"
	HTTPCheck = "HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            connect_timeout 1\n        }"
)

// LVSConf is the load-balancer benchmarks' file: vs virtual servers 192.0.2.100 on ports
// 80... (delay_loop 1, rr, NAT), each with rs real servers 198.51.100.11... on port 8000+i,
// the first with extra more, every one checked by checker. pluginDir, when set, is vigil's
// plugin_dir (keepalived's file leaves it out).
func LVSConf(vs, rs, extra int, checker, pluginDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "! %d virtual servers x %d real servers, %s every second\n", vs, rs, strings.Fields(checker)[0])
	if pluginDir != "" {
		fmt.Fprintf(&b, "global_defs {\n    plugin_dir %s\n}\n", pluginDir)
	}
	for i := range vs {
		fmt.Fprintf(&b, "virtual_server 192.0.2.100 %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", 80+i)
		n := rs
		if i == 0 {
			n += extra
		}
		for j := range n {
			fmt.Fprintf(&b, "    real_server 198.51.100.%d %d {\n        weight 1\n        %s\n    }\n", 11+j, 8000+i, checker)
		}
		b.WriteString("}\n")
	}
	return b.String()
}
