package checksched

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// verifyingPlugins is recPlugins whose plugin files can turn unsafe (PluginVerifier).
type verifyingPlugins struct {
	recPlugins
	unsafe map[string]error
}

func (v *verifyingPlugins) VerifyCheck(name string) error { return v.unsafe[name] }

// TestReloadVerifiesPlugins: a reload looks at the file of every plugin its checks keep; the
// checks of a plugin that is no longer safe to run are not reused, nor configured on it, but
// fail with the plugin host's reason and have no Key (the next reload looks again). The
// checks of the other plugins are reused as before.
func TestReloadVerifiesPlugins(t *testing.T) {
	ctx := context.Background()
	p := &verifyingPlugins{unsafe: map[string]error{}}
	first, err := FromConfig(ctx, parseConf(t, -10, "monitor", "/health", 3), p)
	if err != nil {
		t.Fatal(err)
	}
	why := errors.New("check plugin mysql: plugin is not safe to run: plugin /usr/lib/vigil/plugins/vigil-check-mysql is group- or world-writable (mode 0777): run chmod go-w /usr/lib/vigil/plugins/vigil-check-mysql")
	p.unsafe["mysql"] = why
	p.calls = nil
	again, err := FromConfigReusing(ctx, parseConf(t, -10, "monitor", "/health", 3), p, specMap(first))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.calls) != 0 {
		t.Errorf("the reload configured %v", p.calls)
	}
	for i, sp := range again {
		switch sp.Name {
		case "chk_db":
			r := sp.Prober.Probe(ctx)
			if sp.Key != "" || r.OK || r.Msg != why.Error() || !sp.InitFail || !strings.Contains(sp.Note, why.Error()) {
				t.Errorf("chk_db on an unsafe plugin: key %q, probe %+v, init_fail %v, note %q", sp.Key, r, sp.InitFail, sp.Note)
			}
		case "192.0.2.100:80/192.0.2.11:80/PLUGIN_CHECK":
		default:
			if sp.Prober != first[i].Prober {
				t.Errorf("%s was not reused", sp.Name)
			}
		}
	}
}
