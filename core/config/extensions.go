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

		{"global_defs", "bgp", "{ ... }", "Announce virtual addresses to routers over BGP (docs/bgp.md). The vrrp process runs the speaker, `vigil-bgp` in `plugin_dir`, only when this block is present. Instances choose what to announce with an `announce` block."},
		{"global_defs/bgp", "local_as", "N", "Required: this node's AS number, 1 to 4294967295 (not 23456, AS_TRANS). The same as a neighbor's `remote_as` makes that session iBGP."},
		{"global_defs/bgp", "router_id", "A.B.C.D", "The BGP identifier, an IPv4 address. Default: `router_id` of `global_defs` when that is an IPv4 address; otherwise this line is required."},
		{"global_defs/bgp", "graceful_shutdown", "SECONDS", "At stop, how long routes are announced with the GRACEFUL_SHUTDOWN community (65535:0, RFC 8326) before they are withdrawn, so that routers move traffic away first. 0 to 10, default 3; 0 withdraws at once. The stop waits for it, and vigil.service gives a stop 30 s."},
		{"global_defs/bgp", "neighbor", "ADDR { ... }", "A router to announce to, by its IPv4 or IPv6 address (no port, no prefix length). IPv4 addresses are announced to IPv4 neighbors only, IPv6 ones to IPv6 neighbors only. One block per router."},
		{"global_defs/bgp/neighbor", "remote_as", "N", "Required: the router's AS number. Equal to `local_as`: iBGP; otherwise eBGP."},
		{"global_defs/bgp/neighbor", "password", "SECRET", "TCP MD5 signature key (RFC 2385), at most 80 bytes, the same as on the router. Default: none."},
		{"global_defs/bgp/neighbor", "hold_time", "SECONDS", "The hold time offered: 3 to 65535, default 90. Keepalives go every third of the time agreed."},
		{"global_defs/bgp/neighbor", "connect_retry", "SECONDS", "Time between connection attempts, 1 to 3600, default 5."},
		{"global_defs/bgp/neighbor", "ebgp_multihop", "TTL", "The router is not directly connected: send with this TTL, 1 to 255. Default: directly connected."},
		{"global_defs/bgp/neighbor", "bfd", "", "Watch the session with single-hop BFD (RFC 5881), so that a dead link is seen in under a second rather than at the hold time."},

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
		{"vrrp_instance", "announce", "{ ... }", "Announce the instance's virtual addresses (`virtual_ipaddress`) over BGP, each as a /32 or /128 with this node as next hop. Needs a `bgp` block in `global_defs`."},
		{"vrrp_instance/announce", "mode", "master|anycast", "`master` (the default): announce while the instance is MASTER, withdraw when it leaves it (active/backup). `anycast`: announce while the instance is not in FAULT, on every node, for routers to balance with ECMP."},
		{"vrrp_instance/announce", "med", "priority|N", "The MED sent: `priority` for 255 minus the effective priority, so that routers prefer the healthiest node; or a number, 0 to 4294967295. Default: none."},
		{"vrrp_instance/announce", "local_pref", "priority|N", "The LOCAL_PREF sent to iBGP neighbors: `priority` for the effective priority, or a number, 0 to 4294967295. Default: none. eBGP neighbors ignore it."},
		{"vrrp_instance/announce", "community", "ASN:VALUE...", "Communities added to every route of the instance, each two numbers from 0 to 65535 (64512:100). The line can be repeated."},

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
    bgp {
        neighbor 192.0.2.1 {
        }
    }
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
    announce {
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
