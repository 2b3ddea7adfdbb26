package config

import (
	"iter"
	"slices"
)

// Extension documents one keyword that vigil adds to keepalived.conf: the text of
// vigil.conf(5) and `vigil help config`. TestExtensionsDocumented keeps the list in step with
// the parser: every keyword it accepts that keepalived does not know has an entry, and every
// entry is a keyword it accepts.
type Extension struct {
	// Context is the block the keyword stands in, as knownKeepalived names it: "" for the
	// top level, "global_defs", "vrrp_instance", "virtual_server/real_server".
	Context string
	Keyword string
	Args    string // NAME { ... }, DIR; empty for none
	Text    string // with `code` spans
}

// Extensions are vigil's additions to keepalived.conf, in the order a manual explains them.
func Extensions() []Extension {
	return []Extension{
		{"global_defs", "plugin_dir", "DIR", "Where the plugins live: executables named `vigil-check-NAME` and `vigil-notify-NAME`. Default `/usr/lib/vigil/plugins`. Every plugin, and each directory above it, must be owned by root (or vigil's user) and writable by no one else."},
		{"global_defs", "plugin_sha256", "FILE HEX", "Pin a plugin: `FILE` is its executable's name in `plugin_dir` (`vigil-check-mysql`), `HEX` its SHA-256 as `sha256sum` prints it. vigil refuses to start that plugin when the file's checksum differs, naming both checksums. One line per pinned plugin; the others run unchecked."},
		{"global_defs", "metrics_listen", "HOST:PORT", "Serve Prometheus metrics (`/metrics`) and a read-only view (`/status`, `/healthz`, `/readyz`) on this address, from the core process; `--metrics-listen` overrides it. Off when absent (the default). It has no authentication: bind it to loopback or firewall it (vigil warns at start when it is not loopback). Changing it takes effect at the next restart."},

		{"", "vrrp_check", "NAME { ... }", "A named check served by a check plugin. Instances and sync groups track it by name in `track_script`, as they track a `vrrp_script`; a `PLUGIN_CHECK` of a real server can use it too."},
		{"vrrp_check", "plugin", "NAME", "Required: the check plugin that runs the check, `vigil-check-NAME` in `plugin_dir` (mysql, tcp, http, exec, or a third party's)."},
		{"vrrp_check", "params", "{ ... }", "The plugin's parameters, one `key value...` per line, nested blocks allowed. The plugin validates them when `vigil -t` runs; secrets can stay in files it reads (`password_file`, `secret_file`)."},
		{"vrrp_check", "interval", "SECONDS", "Time between probes (default 1)."},
		{"vrrp_check", "timeout", "SECONDS", "Time one probe may take (default: the interval)."},
		{"vrrp_check", "rise", "N", "Successful probes before a down check is up again (default 1)."},
		{"vrrp_check", "fall", "N", "Failed probes before an up check is down (default 1)."},
		{"vrrp_check", "weight", "N [reverse]", "As for a `vrrp_script`: 0 puts the tracking instances in FAULT while the check is down; a non-zero weight changes their priority instead. While the check is up, a weight the plugin reports with its probes takes the place of the configured one (within \u00b1253)."},
		{"vrrp_check", "init_fail", "", "The check starts down rather than up."},

		{"", "vrrp_notify", "NAME { ... }", "A named notify action served by a notify plugin, run by the instances and sync groups that name it in `notify_action`."},
		{"vrrp_notify", "plugin", "NAME", "Required: the notify plugin, `vigil-notify-NAME` in `plugin_dir` (webhook, exec, email, or a third party's)."},
		{"vrrp_notify", "params", "{ ... }", "The plugin's parameters, validated by the plugin when `vigil -t` runs."},
		{"vrrp_notify", "timeout", "SECONDS", "Time one delivery may take (default 10)."},

		{"vrrp_instance", "notify_action", "NAME...", "Run these `vrrp_notify` actions on every state change, beside any `notify_*` scripts."},
		{"vrrp_sync_group", "notify_action", "NAME...", "As in `vrrp_instance`, for the group's state changes."},
		{"vrrp_sync_group", "notify_deleted", "SCRIPT", "As in `vrrp_instance`: run when a reload removes the group."},
		{"vrrp_sync_group", "notify_master_rx_lower_pri", "SCRIPT", "As in `vrrp_instance`: run when the group's master hears an advert of lower priority."},
		{"vrrp_instance", "garp_interval", "SECONDS", "`vrrp_garp_interval` of `global_defs` for this instance alone: the gap between gratuitous ARPs."},
		{"vrrp_instance", "gna_interval", "SECONDS", "`vrrp_gna_interval` of `global_defs` for this instance alone: the gap between unsolicited neighbour advertisements."},

		{"virtual_server/real_server", "PLUGIN_CHECK", "{ ... }", "A real server's health check run by a check plugin. It takes `TCP_CHECK`'s connection and retry keywords (`connect_ip`, `connect_port`, `connect_timeout`, `retry`, `delay_before_retry`, `delay_loop`, ...) and either `check` or `plugin` with `params`."},
		{"virtual_server/real_server/PLUGIN_CHECK", "check", "NAME", "Use the `vrrp_check` NAME, its plugin and params included."},
		{"virtual_server/real_server/PLUGIN_CHECK", "plugin", "NAME", "The check plugin, for a check defined here rather than by a `vrrp_check`."},
		{"virtual_server/real_server/PLUGIN_CHECK", "params", "{ ... }", "The parameters of `plugin`, as in a `vrrp_check`."},
	}
}

// everyContext opens every block the parser reads with a keyword table, so that
// AcceptedKeywords sees them all.
const everyContext = `
global_defs {
}
vrrp_script s {
}
track_file f {
}
vrrp_check c {
}
vrrp_notify n {
}
vrrp_instance VI {
    authentication {
    }
}
vrrp_sync_group G {
}
virtual_server 192.0.2.2 80 {
    real_server 192.0.2.3 80 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
            }
        }
        SSL_GET {
            url {
            }
        }
        MISC_CHECK {
        }
        PLUGIN_CHECK {
        }
    }
}
`

// AcceptedKeywords are the keywords the parser takes, by block context (named as
// knownKeepalived names them). The tables are read off the parser itself, so that the
// manual's lists of extensions and of what vigil does not support cannot drift from it.
func AcceptedKeywords() map[string][]string {
	sink := &diagSink{}
	pp := newPreprocessor(Options{}, sink)
	pp.readData("keywords.conf", []byte(everyContext), Pos{})
	tree := buildTree(pp.out, sink)
	seen := map[string][]string{}
	b := &builder{sink: sink, opts: pp.opts, cfg: &Config{Tree: tree}, onWalk: func(ctx string, names iter.Seq[string]) {
		for n := range names {
			if !slices.Contains(seen[ctx], n) {
				seen[ctx] = append(seen[ctx], n)
			}
		}
	}}
	b.top(tree)
	for _, ks := range seen {
		slices.Sort(ks)
	}
	return seen
}

// Unsupported are the keywords keepalived knows in each block that vigil reads (its
// contexts in AcceptedKeywords) and does not implement: `vigil -t` warns about them and the
// daemon ignores them. Blocks that vigil does not read at all are listed by their opening
// keyword in the enclosing block.
func Unsupported(accepted map[string][]string) map[string][]string {
	out := map[string][]string{}
	for ctx, ks := range accepted {
		for _, k := range knownKeepalived[ctx] {
			if !slices.Contains(ks, k) {
				out[ctx] = append(out[ctx], k)
			}
		}
		slices.Sort(out[ctx])
	}
	return out
}
