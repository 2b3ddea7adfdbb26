package config

import (
	"fmt"
	"strings"
	"testing"
)

// lvsFile is a load balancer's file as bench/lvsbench writes it: vs virtual servers of rs
// real servers, each with a TCP_CHECK.
func lvsFile(vs, rs int) []byte {
	var b strings.Builder
	for i := range vs {
		fmt.Fprintf(&b, "virtual_server 192.0.2.100 %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", 80+i)
		for j := range rs {
			fmt.Fprintf(&b, "    real_server 198.51.100.%d %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", 11+j, 8000+i)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// BenchmarkParseLVS: every reload parses the file in core and again in each child, so a
// thousand real servers' file is parsed three times per reload.
func BenchmarkParseLVS(b *testing.B) {
	src := lvsFile(10, 100)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ds := Parse("lvs.conf", src, Options{DisableIncludes: true}); ds.HasErrors() {
			b.Fatal(ds.Errors())
		}
	}
}

// BenchmarkParseManyVS is the other shape of a large load balancer: many services of few real
// servers each, where the virtual_server blocks themselves are what the parse reads most.
func BenchmarkParseManyVS(b *testing.B) {
	src := lvsFile(500, 2)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ds := Parse("lvs.conf", src, Options{DisableIncludes: true}); ds.HasErrors() {
			b.Fatal(ds.Errors())
		}
	}
}
