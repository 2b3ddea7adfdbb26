package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/core/checksched"
	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
)

// Prober runs one configured check through its plugin, for the check scheduler. OK and
// Warning count as success, Critical, Unknown and any error as failure, except a probe that
// never reached a working plugin process (starting, restarting, under a hang verdict): that
// one has no result (checksched.Result.NoResult), which the scheduler counts as a failure
// only past the check's failure budget. A check tracked
// with reverse is probed the same way: the result stays what the plugin said, so that rise
// and fall count the service's real successes and failures, and the vrrp process alone
// turns the weight around (fsm.Effective, the one owner of reverse, says why).
type Prober struct {
	Host   *Host
	Plugin string // the check plugin (vigil-check-NAME)
	Check  string // the configured check's name
}

var _ checksched.Prober = Prober{}

// Probe runs one probe.
func (p Prober) Probe(ctx context.Context) checksched.Result {
	resp, err := p.Host.Check(ctx, p.Plugin, check.CheckRequest{Name: p.Check})
	if err != nil {
		if isNotRun(err) {
			// The plugin was starting, restarting or under a hang verdict: the service was
			// not asked (the scheduler counts this within the check's failure budget).
			return checksched.Result{NoResult: true, Msg: checksched.Message(err.Error())}
		}
		// By the clock too: the deadline can pass a moment before its timer cancels ctx.
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
			return checksched.Result{Msg: fmt.Sprintf("plugin %s: timed out", p.Plugin)}
		}
		if isPluginError(err) {
			// The plugin's own message (an unknown name, a bad state): say whose it is.
			return checksched.Result{Msg: checksched.Message(fmt.Sprintf("plugin %s: %v", p.Plugin, err))}
		}
		return checksched.Result{Msg: checksched.Message(err.Error())}
	}
	return answer(p.Plugin, resp)
}

// answer is what the scheduler makes of a check plugin's answer. A plugin may be buggy (or
// speak the protocol from another language, unchecked): an answer with a status that does not
// exist or a weight beyond what a VRRP priority can move counts as a failure, with a message
// that names the plugin and the bad value, and its weight is not taken. Never a wild weight,
// never a success by accident. The message and metrics are bounded (checksched.Message,
// checksched.Metrics) for the log, the vrrp process and `vigil status`.
func answer(plugin string, resp check.CheckResponse) checksched.Result {
	if resp.Status < check.Unknown || resp.Status > check.Critical {
		return checksched.Result{Msg: checksched.Message(fmt.Sprintf("plugin %s answered status %d, which does not exist (a bug in the plugin): counted as a failure", plugin, int(resp.Status)))}
	}
	if resp.Weight != nil && !checksched.ValidWeight(int64(*resp.Weight)) {
		return checksched.Result{Msg: checksched.Message(fmt.Sprintf("plugin %s answered weight %d, beyond %d..%d (a bug in the plugin): counted as a failure", plugin, *resp.Weight, -checksched.MaxWeight, checksched.MaxWeight))}
	}
	msg := resp.Status.String()
	if resp.Message != "" {
		msg += ": " + resp.Message
	}
	// The weight is passed on for reverse tracking too: whether a reversed tracker uses it
	// is for the vrrp process to decide (it does not), from the weight and reverse it applies.
	return checksched.Result{OK: resp.Status.Healthy(), Msg: checksched.Message(msg), Metrics: checksched.Metrics(resp.Metrics),
		Weight: checksched.Weight[int](resp.Weight)}
}

// Params converts a configuration's params block for a plugin.
func Params(ps []config.Param) []sdk.Param {
	if len(ps) == 0 {
		return nil
	}
	out := make([]sdk.Param, len(ps))
	for i, p := range ps {
		out[i] = sdk.Param{Key: p.Key, Values: p.Values, Block: Params(p.Block)}
	}
	return out
}

// AlignGroup is the scheduler's alignment group of every plugin check (checksched.Spec.Align).
const AlignGroup = checksched.PluginAlign

// checkKind names a check as its configuration does: a real_server checker by its type and
// name (checksched.RealServerChecks names them VS/RS/TYPE, with #n for a second checker of a
// type), any other as the vrrp_check it is.
func checkKind(name string) string {
	base := name
	if i := strings.LastIndexByte(base, '#'); i > 0 {
		base = base[:i]
	}
	if i := strings.LastIndexByte(base, '/'); i > 0 && strings.Count(base, "/") >= 2 {
		switch typ := base[i+1:]; typ {
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "PLUGIN_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "BFD_CHECK", "FILE_CHECK":
			return "real_server " + typ + " " + name
		}
	}
	return "vrrp_check " + name
}

// CheckSpec configures a vrrp_check on its plugin and returns it ready for the scheduler.
// With validateOnly (vigil -t) the plugin only checks the params; the spec is then not for
// running. The error carries the check's position and the plugin's message.
func (h *Host) CheckSpec(ctx context.Context, c *config.PluginCheck, validateOnly bool) (checksched.Spec, error) {
	resp, err := h.ConfigureCheck(ctx, c.Plugin, check.ConfigureRequest{Name: c.Name, Params: Params(c.Params), ValidateOnly: validateOnly})
	if err != nil {
		werr := fmt.Errorf("%s: %s: plugin %s: %w", c.Pos, checkKind(c.Name), c.Plugin, err)
		if !isPluginError(err) && (isNotRun(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			// The plugin never looked at the params: starting, restarting, or too busy to
			// answer in time. A real_server checker is tried again (checksched.pending).
			werr = checksched.NotConfigured(werr)
		}
		return checksched.Spec{}, werr
	}
	for _, w := range resp.Warnings {
		h.opts.Logger.Warn("check configuration", "pos", c.Pos.String(), "check", c.Name, "plugin", c.Plugin, "warning", w)
	}
	return checksched.Spec{
		Name:     c.Name,
		Prober:   Prober{Host: h, Plugin: c.Plugin, Check: c.Name},
		Interval: c.Interval,
		Timeout:  c.Timeout,
		Rise:     c.Rise,
		Fall:     c.Fall,
		InitFail: c.InitFail,
		// Probes that start together share the wake-ups of both processes and their messages.
		Align: AlignGroup,
		Late:  checksched.PluginLate(c.Timeout),
	}, nil
}
