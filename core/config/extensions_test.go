package config

import (
	"slices"
	"strings"
	"testing"
)

// TestExtensionsDocumented keeps Extensions (vigil.conf(5), `vigil help config`) in step
// with the parser: every keyword a block takes that keepalived does not know has an entry,
// and every entry is a keyword of its block that keepalived does not know. Fails when a
// keyword is added to a table in vrrp.go or lvs.go without a line in extensions.go.
func TestExtensionsDocumented(t *testing.T) {
	accepted := AcceptedKeywords()
	documented := map[string][]string{}
	for _, e := range Extensions() {
		documented[e.Context] = append(documented[e.Context], e.Keyword)
		if !slices.Contains(accepted[e.Context], e.Keyword) {
			t.Errorf("extensions.go documents %q in %q, which the parser does not take there", e.Keyword, e.Context)
		}
		if slices.Contains(knownKeepalived[e.Context], e.Keyword) {
			t.Errorf("extensions.go documents %q in %q as vigil's, but it is keepalived's (keepalived_keywords.go)", e.Keyword, e.Context)
		}
		if e.Text == "" {
			t.Errorf("%q in %q has no text", e.Keyword, e.Context)
		}
	}
	for ctx, ks := range accepted {
		for _, k := range ks {
			if slices.Contains(knownKeepalived[ctx], k) || slices.Contains(documented[ctx], k) {
				continue
			}
			// PLUGIN_CHECK takes TCP_CHECK's keywords; its entry says so.
			if strings.HasSuffix(ctx, "/PLUGIN_CHECK") && slices.Contains(accepted["virtual_server/real_server/TCP_CHECK"], k) {
				continue
			}
			t.Errorf("the parser takes %q in %q, which keepalived does not know: add it to Extensions in extensions.go (it is the text of vigil.conf(5))", k, ctxName(ctx))
		}
	}
}

// TestAcceptedKeywordsSeesEveryBlock: everyContext opens every block whose keywords the
// parser reads, so that Unsupported lists all that vigil does not implement. Fails when a
// block is added (or everyContext loses one) and AcceptedKeywords does not walk it.
func TestAcceptedKeywordsSeesEveryBlock(t *testing.T) {
	accepted := AcceptedKeywords()
	if len(accepted[""]) == 0 || len(accepted["global_defs"]) == 0 {
		t.Fatalf("AcceptedKeywords read nothing: %v", accepted)
	}
	// vrrp_track_file is keepalived's older name of track_file, read with its table.
	alias := map[string]string{"vrrp_track_file": "track_file"}
	for ctx, ks := range knownKeepalived {
		if ks == nil { // a block of data lines, not of keywords
			continue
		}
		parent, opener := "", ctx
		if i := strings.LastIndex(ctx, "/"); i >= 0 {
			parent, opener = ctx[:i], ctx[i+1:]
		}
		if _, walked := accepted[parent]; !walked || !slices.Contains(accepted[parent], opener) {
			continue // vigil does not read the block at all: Unsupported lists its opener
		}
		if a, ok := alias[ctx]; ok {
			ctx = a
		}
		if _, ok := accepted[ctx]; !ok {
			t.Errorf("AcceptedKeywords did not walk %q: add the block to everyContext", ctx)
		}
	}
	un := Unsupported(accepted)
	for _, want := range [][2]string{{"global_defs", "enable_snmp_vrrp"}, {"", "bfd_instance"}, {"virtual_server/real_server", "SMTP_CHECK"}} {
		if !slices.Contains(un[want[0]], want[1]) {
			t.Errorf("Unsupported()[%q] lacks %q", want[0], want[1])
		}
	}
	for ctx, ks := range un {
		for _, k := range ks {
			if slices.Contains(accepted[ctx], k) {
				t.Errorf("%q in %q is both accepted and unsupported", k, ctx)
			}
		}
	}
}

func ctxName(ctx string) string {
	if ctx == "" {
		return "the top level"
	}
	return ctx
}
