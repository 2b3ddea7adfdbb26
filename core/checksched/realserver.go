package checksched

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/script"
)

// Plugins that run keepalived's real_server checkers, with keepalived's timing rules; their
// results decide the real servers' weights in IPVS (core/lvs).
const (
	TCPPlugin  = "tcp"
	HTTPPlugin = "http"
)

// realServerItems plans every checker of every real_server as a check of its plugin (see
// RealServerChecks). A checker whose plugin is missing or refuses its params stays, failing,
// with the reason in its message.
func realServerItems(ctx context.Context, cfg *config.Config, plugins PluginSpecs, hostKey string, reuse Reuse) []item {
	var items []item
	for _, rc := range RealServerChecks(cfg) {
		pc, ck := rc.PluginCheck, rc.Checker
		key := ""
		// A checker whose plugin is missing runs failing, and has no Key: a reload after
		// the plugin was installed starts it for real.
		if plugins.HasCheck(pc.Plugin) {
			key = realServerKey(pc, ck, hostKey)
		}
		// A reload configures a new or changed checker from its own task (pendingChecker),
		// not here: the reload's effect on IPVS and on the other checks never waits for a
		// busy plugin (the IPVS benchmark's reload waited minutes for one under qemu TCG).
		it := newItem(pc.Name, key, reuse, func() (Spec, error) {
			if reuse != nil && key != "" {
				return pendingChecker(plugins, pc, ck), nil
			}
			return checkerSpec(ctx, plugins, pc, ck), nil
		})
		// A reload looks at a MISC_CHECK's script and at the checker's plugin again (see
		// FromConfigReusing).
		var unsafe error
		if ck.Type == "MISC_CHECK" && ck.MiscPath != nil && cfg.Global.EnableScriptSecurity {
			cred, err := credential(cfg.Global, ck.MiscPath)
			if err == nil {
				unsafe = script.CheckCommand(ck.MiscPath.Argv[0], cred)
			}
		}
		if unsafe == nil && reuse != nil && key != "" {
			unsafe = verifyPlugin(plugins, pc.Plugin)
		}
		failing := Spec{Name: pc.Name, Interval: pc.Interval, Timeout: pc.Timeout, Rise: pc.Rise, Fall: pc.Fall}
		items = append(items, it.refuse(unsafe, failing, ""))
	}
	return items
}

// RealServerCheck is one real_server checker as the plugin check that runs it.
type RealServerCheck struct {
	*config.PluginCheck
	Checker *config.Checker
}

// RealServerChecks translates every checker of every real_server: TCP_CHECK runs through
// the tcp plugin, HTTP_GET and SSL_GET through http, MISC_CHECK through exec, PLUGIN_CHECK
// through the plugin it names. Each is named VS/RS/TYPE ("192.0.2.100:80/192.0.2.11:80/
// HTTP_GET", with #2 ... for a second checker of one type).
func RealServerChecks(cfg *config.Config) []RealServerCheck {
	named := map[string]*config.PluginCheck{}
	for _, c := range cfg.Checks {
		named[c.Name] = c
	}
	n := 0
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			n += len(rs.Checkers)
		}
	}
	out := make([]RealServerCheck, 0, n)
	for _, vs := range cfg.VirtualServers {
		vsPart := vsName(vs) + "/"
		for _, rs := range vs.RealServers {
			rsAddr := hostPort(rs.Addr, rs.Port)
			rsPart := vsPart + rsAddr + "/"
			for i, ck := range rs.Checkers {
				name := rsPart + ck.Type
				// The how-manieth of its type (a real server has a handful of checkers).
				seen := 1
				for _, before := range rs.Checkers[:i] {
					if before.Type == ck.Type {
						seen++
					}
				}
				if seen > 1 {
					name += "#" + strconv.Itoa(seen)
				}
				pc := checkerPlugin(cfg, vs, rs, rsAddr, ck, named)
				pc.Name = name
				out = append(out, RealServerCheck{PluginCheck: pc, Checker: ck})
			}
		}
	}
	return out
}

func vsName(vs *config.VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return "fwmark " + strconv.Itoa(vs.FWMark)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return hostPort(vs.Addr, vs.Port)
}

// hostPort is HOST:PORT, an IPv6 address in brackets, as net.JoinHostPort writes it; in one
// allocation for a port the parser allows (a thousand real servers' checkers are named and
// addressed with it at every reload).
func hostPort(a netip.Addr, port int) string {
	if port < 0 || port > 65535 {
		return net.JoinHostPort(a.String(), strconv.Itoa(port))
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// checkerPlugin is the plugin check that runs one keepalived checker, with keepalived's
// defaults: the real server's address unless connect_ip/connect_port say otherwise,
// connect_timeout as the probe's timeout, retry+1 failures (delay_before_retry apart) before
// the server is down, up again at the first success, alpha starting it down.
func checkerPlugin(cfg *config.Config, vs *config.VirtualServer, rs *config.RealServer, rsAddr string, ck *config.Checker, named map[string]*config.PluginCheck) *config.PluginCheck {
	address := rsAddr // hostPort of the real server
	if ck.ConnectIP.IsValid() || ck.ConnectPort != 0 {
		addr, port := rs.Addr, rs.Port
		if ck.ConnectIP.IsValid() {
			addr = ck.ConnectIP
		}
		if ck.ConnectPort != 0 {
			port = ck.ConnectPort
		}
		address = hostPort(addr, port)
	}
	pc := &config.PluginCheck{
		Pos: ck.Pos, Interval: ck.DelayLoop, Timeout: ck.ConnectTimeout,
		Rise: 1, Fall: ck.Retry + 1, InitFail: ck.Alpha,
	}
	p := func(key string, values ...string) config.Param {
		return config.Param{Key: key, Values: values, Pos: ck.Pos}
	}
	target := []config.Param{p("address", address)}
	if ck.BindTo.IsValid() {
		target = append(target, p("bind_to", ck.BindTo.String()))
	}
	if ck.BindPort != 0 {
		target = append(target, p("bind_port", strconv.Itoa(ck.BindPort)))
	}
	switch ck.Type {
	case "TCP_CHECK":
		pc.Plugin, pc.Params = TCPPlugin, target
	case "HTTP_GET", "SSL_GET":
		// keepalived gives each step of a GET connect_timeout from its own start: the
		// connect with its TLS handshake, sending the request, and every read. The plugin
		// times its steps the same way (its connect_timeout), so that a moment it ran late
		// between two steps is not taken out of the server's time; the probe as a whole,
		// which keepalived does not bound, gets two steps: a connect and a reply.
		pc.Timeout = 2 * ck.ConnectTimeout
		pc.Plugin, pc.Params = HTTPPlugin, append(target, p("connect_timeout", ck.ConnectTimeout.String()))
		if ck.HTTPProtocol != "" {
			pc.Params = append(pc.Params, p("http_protocol", ck.HTTPProtocol))
		}
		if ck.Type == "SSL_GET" {
			pc.Params = append(pc.Params, p("tls", "yes"))
			if ck.EnableSNI {
				pc.Params = append(pc.Params, p("enable_sni", "yes"))
			}
			if ck.SNIName != "" {
				pc.Params = append(pc.Params, p("sni_name", ck.SNIName))
			}
			if ck.TLSVerify {
				pc.Params = append(pc.Params, p("tls_verify", "yes"))
			}
		}
		vhost := ck.Virtualhost
		if vhost == "" {
			vhost = vs.Virtualhost
		}
		if vhost != "" {
			pc.Params = append(pc.Params, p("virtualhost", vhost))
		}
		for _, u := range ck.URLs {
			block := []config.Param{{Key: "path", Values: []string{u.Path}, Pos: u.Pos}}
			if u.Digest != "" {
				block = append(block, config.Param{Key: "digest", Values: []string{u.Digest}, Pos: u.Pos})
			}
			if len(u.StatusCodes) > 0 {
				var codes []string
				for _, r := range u.StatusCodes {
					if r.From == r.To {
						codes = append(codes, strconv.Itoa(r.From))
					} else {
						codes = append(codes, fmt.Sprintf("%d-%d", r.From, r.To))
					}
				}
				block = append(block, config.Param{Key: "status_code", Values: codes, Pos: u.Pos})
			}
			if u.Virtualhost != "" {
				block = append(block, config.Param{Key: "virtualhost", Values: []string{u.Virtualhost}, Pos: u.Pos})
			}
			if u.Regex != "" {
				block = append(block, config.Param{Key: "regex", Values: []string{u.Regex}, Pos: u.Pos})
			}
			if u.RegexNoMatch {
				block = append(block, config.Param{Key: "regex_no_match", Values: []string{"yes"}, Pos: u.Pos})
			}
			if len(u.RegexOptions) > 0 {
				block = append(block, config.Param{Key: "regex_options", Values: u.RegexOptions, Pos: u.Pos})
			}
			pc.Params = append(pc.Params, config.Param{Key: "url", Block: block, Pos: u.Pos})
		}
	case "MISC_CHECK":
		pc.Plugin = ExecPlugin
		if ck.MiscTimeout > 0 {
			pc.Timeout = ck.MiscTimeout
		}
		if ck.MiscPath != nil {
			pc.Params = append(pc.Params, p("command", ck.MiscPath.Argv...), p("mode", "misc_check"))
			if ck.MiscDynamic {
				pc.Params = append(pc.Params, p("dynamic", "yes"))
			}
			if u := scriptUser(cfg.Global, ck.MiscPath); len(u) > 0 {
				if cred, err := credential(cfg.Global, ck.MiscPath); err == nil && cred != nil {
					pc.Params = append(pc.Params, p("user", u...))
				}
			}
			if cfg.Global.EnableScriptSecurity {
				pc.Params = append(pc.Params, p("secure", "yes"))
			}
		}
	case "PLUGIN_CHECK":
		if c := named[ck.Check]; ck.Check != "" && c != nil {
			pc.Plugin, pc.Params = c.Plugin, c.Params
		} else {
			pc.Plugin, pc.Params = ck.Plugin, ck.Params
		}
		// The real server is the target unless the params name another.
		if !hasParam(pc.Params, "address") {
			pc.Params = append(append([]config.Param{}, target...), pc.Params...)
		}
	}
	return pc
}

func hasParam(ps []config.Param, key string) bool {
	for _, p := range ps {
		if p.Key == key {
			return true
		}
	}
	return false
}

// checkerSpec configures one checker on its plugin; a missing or refusing plugin leaves a
// check that always fails, saying why.
func checkerSpec(ctx context.Context, plugins PluginSpecs, pc *config.PluginCheck, ck *config.Checker) Spec {
	failing := func(why string) Spec {
		return Spec{Name: pc.Name, Prober: refused{msg: why}, Interval: pc.Interval, Timeout: pc.Timeout,
			Rise: pc.Rise, Fall: pc.Fall, InitFail: true, Note: why}
	}
	if plugins == nil || !plugins.HasCheck(pc.Plugin) {
		return failing(fmt.Sprintf("%s: %s needs check plugin %s (vigil-check-%s), which is not installed", ck.Pos, ck.Type, pc.Plugin, pc.Plugin))
	}
	spec, err := plugins.CheckSpec(ctx, pc, false)
	switch {
	case IsNotConfigured(err):
		// The plugin was busy or (re)starting: not the checker's fault, and no reason for
		// it to fail until the next reload. Its task tries again.
		return pendingChecker(plugins, pc, ck)
	case err != nil:
		return failing(err.Error())
	}
	return checkerTiming(spec, ck)
}

// checkerTiming sets keepalived's checker rules on the spec of a configured checker, and its
// alignment lane (checkerAlign).
func checkerTiming(spec Spec, ck *config.Checker) Spec {
	spec.RetryDelay = ck.DelayBeforeRetry
	spec.Warmup = ck.Warmup
	spec.SuccessResetsWeight = true
	spec.Align = checkerAlign(spec.Name)
	return spec
}

// checkerLanes is how many alignment groups real_server checkers are spread over.
const checkerLanes = 16

// checkerAlign is a real_server checker's alignment group: one of checkerLanes, by its name.
// Aligned probes share their wake-ups (Spec.Align), but a load balancer has hundreds or
// thousands of checkers, and one grid for all of them sent every probe of a second to the
// plugin at the same instant: the plugin then worked through a burst of a thousand connects,
// and on a slow machine (bench/lvsbench's VM) the last ones passed their connect_timeout
// in the queue, so that healthy real servers went down (1,365 false downs in two minutes,
// keepalived none: it starts each checker at a moment of its own). Lanes keep the bursts
// to about a sixteenth, each lane with a phase of its own, while a handful of checkers
// still share wake-ups within their lane.
func checkerAlign(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return PluginAlign + "/rs" + strconv.Itoa(int(h.Sum32()%checkerLanes))
}

// pendingChecker is a checker whose plugin is installed, to be configured by its own task
// (see pending). It starts as a configured checker would: up, or down with alpha.
func pendingChecker(plugins PluginSpecs, pc *config.PluginCheck, ck *config.Checker) Spec {
	p := newPending(func(ctx context.Context) (Prober, error) {
		sp, err := plugins.CheckSpec(ctx, pc, false)
		return sp.Prober, err
	})
	return checkerTiming(Spec{Name: pc.Name, Prober: p, Interval: pc.Interval, Timeout: pc.Timeout,
		Rise: pc.Rise, Fall: pc.Fall, InitFail: pc.InitFail, Late: PluginLate(pc.Timeout)}, ck)
}
