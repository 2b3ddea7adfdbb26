package notify

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/core/script"
	sdk "github.com/vigil-ha/vigil/sdk/notify"
)

// builder turns a configuration's notify keywords into actions, and collects the notifier
// configurations to send to the plugins.
type builder struct {
	d   *Dispatcher
	cfg *config.Config

	configs []pluginConfig
	seen    map[string]bool // vrrp_notify blocks already collected
	once    sync.Once       // the "scripts run from core" line
	smtpCfg bool
}

// pluginConfig is one notifier to configure: Configure(name, params) on plugin.
type pluginConfig struct {
	plugin string
	req    sdk.ConfigureRequest
}

// configure sends every collected configuration, all at once so that one plugin that is
// slow to start does not hold the others' events for long; a refusal is logged, and that
// notifier's events then fail with the plugin's word for it.
func (b *builder) configure(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range b.configs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, b.d.opts.ConfigureTimeout)
			defer cancel()
			resp, err := b.d.opts.Plugins.ConfigureNotifier(cctx, c.plugin, c.req)
			if err != nil {
				b.d.log.Error("notify plugin refused its configuration; its events will fail", "plugin", c.plugin, "notifier", c.req.Name, "error", err)
				return
			}
			for _, w := range resp.Warnings {
				b.d.log.Warn("notify plugin", "plugin", c.plugin, "notifier", c.req.Name, "warning", w)
			}
		})
	}
	wg.Wait()
}

// usable says whether notify plugin name can be used.
func (b *builder) usable(name string) bool {
	return b.d.opts.Plugins != nil && b.d.opts.Installed(name)
}

// allStates are the states every action hears of unless it says otherwise.
var allStates = []string{Master, Backup, Fault, Stop, Deleted}

// actions builds the actions of one instance or sync group, in keepalived's order: the
// scripts, smtp_alert, then vigil's vrrp_notify actions.
func (b *builder) actions(src *source, n config.Notify, refs []config.NameRef, smtp *bool) []*worker {
	var acts []*action
	if a := b.scripts(src, n); a != nil {
		acts = append(acts, a)
	}
	if a := b.smtp(src, smtp); a != nil {
		acts = append(acts, a)
	}
	for _, ref := range refs {
		if a := b.named(ref.Name); a != nil {
			acts = append(acts, a)
		}
	}
	var ws []*worker
	for _, a := range acts {
		what, key := "instance "+src.name, "instance"
		if src.group {
			what, key = "sync group "+src.name, "sync_group"
		}
		ws = append(ws, newWorker(b.d, what, a, b.d.log.With(key, src.name)))
	}
	return ws
}

// scripts is keepalived's notify_STATE scripts and the generic notify script of one source,
// run one after the other for each event (the specific one first, as keepalived does).
func (b *builder) scripts(src *source, n config.Notify) *action {
	specific := map[string]*config.Script{Master: n.Master, Backup: n.Backup, Fault: n.Fault, Stop: n.Stop, Deleted: n.Deleted,
		MasterRxLowerPri: n.MasterRxLowerPri}
	var states []string
	for _, st := range append(allStates, MasterRxLowerPri) {
		// The generic notify script hears of state changes only.
		if specific[st] != nil || (n.Generic != nil && st != MasterRxLowerPri) {
			states = append(states, st)
		}
	}
	if len(states) == 0 {
		return nil
	}
	kind := "INSTANCE"
	if src.group {
		kind = "GROUP"
	}
	keyword := map[string]string{Master: "notify_master", Backup: "notify_backup", Fault: "notify_fault", Stop: "notify_stop", Deleted: "notify_deleted",
		MasterRxLowerPri: "notify_master_rx_lower_pri"}
	runners := map[string]runner{}
	for st, s := range specific {
		if s != nil {
			runners[st] = b.script(kind+" "+src.name+" "+keyword[st], s, false)
		}
	}
	var generic runner
	if n.Generic != nil {
		generic = b.script(kind+" "+src.name+" notify", n.Generic, true)
	}
	return &action{
		name: "notify scripts", states: states, timeout: b.d.opts.ScriptTimeout, plugin: b.usable("exec"),
		call: func(ctx context.Context, ev sdk.Event) error {
			var errs []error
			if r := runners[ev.NewState]; r != nil {
				if err := r(ctx, ev); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", keyword[ev.NewState], err))
				}
			}
			if generic != nil && ev.NewState != MasterRxLowerPri && ctx.Err() == nil {
				if err := generic(ctx, ev); err != nil {
					errs = append(errs, fmt.Errorf("notify: %w", err))
				}
			}
			return errors.Join(errs...)
		},
	}
}

type runner func(ctx context.Context, ev sdk.Event) error

// script runs one keepalived script through the exec notify plugin when it is installed,
// else from core, in the same way (core/script).
func (b *builder) script(name string, s *config.Script, generic bool) runner {
	user, group := s.User, s.Group
	if user == "" {
		user, group = b.cfg.Global.ScriptUser, b.cfg.Global.ScriptGroup
	}
	if b.usable("exec") {
		params := []sdk.Param{{Key: "command", Values: s.Argv}, {Key: "generic", Values: []string{strconv.FormatBool(generic)}}}
		if user != "" {
			params = append(params, sdk.Param{Key: "user", Values: nonEmpty(user, group)})
		}
		if b.cfg.Global.EnableScriptSecurity {
			params = append(params, sdk.Param{Key: "secure", Values: []string{"yes"}})
		}
		b.configs = append(b.configs, pluginConfig{plugin: "exec", req: sdk.ConfigureRequest{Name: name, Params: params}})
		return func(ctx context.Context, ev sdk.Event) error {
			return b.d.opts.Plugins.Notify(ctx, "exec", sdk.NotifyRequest{Name: name, Event: ev})
		}
	}
	b.once.Do(func() {
		b.d.log.Info("vigil-notify-exec is not installed in plugin_dir; keepalived's notify scripts run from vigil's core process")
	})
	var cred *syscall.Credential
	var refused error
	if user != "" {
		if cred, refused = script.LookupUser(user, group); refused != nil {
			refused = fmt.Errorf("script_user: %w", refused)
		}
	}
	if refused == nil && b.cfg.Global.EnableScriptSecurity && len(s.Argv) > 0 {
		// As keepalived does, a script that others could change is not run, and the
		// rest of the configuration runs on.
		if path, err := exec.LookPath(s.Argv[0]); err == nil {
			refused = script.CheckSecureFor(path, cred)
		}
	}
	if refused != nil {
		b.d.log.Error("notify script will not run", "script", name, "error", refused)
	}
	return func(ctx context.Context, ev sdk.Event) error {
		if refused != nil {
			return refused
		}
		return script.Run(ctx, script.Args(s.Argv, generic, ev), cred, script.Env(ev))
	}
}

func nonEmpty(words ...string) []string {
	var out []string
	for _, w := range words {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// smtpName is the email plugin's notifier for smtp_alert.
const smtpName = "smtp_alert"

// smtp is keepalived's smtp_alert for one source: a mail to notification_email through
// smtp_server on each new state (not twice for the same state; not for FAULT with
// no_email_faults), sent by the email notify plugin.
func (b *builder) smtp(src *source, on *bool) *action {
	g := b.cfg.Global
	enabled := false
	for _, v := range []*bool{on, g.SMTPAlertVRRP, g.SMTPAlert} {
		if v != nil {
			enabled = *v
			break
		}
	}
	if !enabled {
		return nil
	}
	if len(g.NotificationEmail) == 0 || g.SMTPServer == "" {
		b.d.log.Warn("smtp_alert is on but global_defs lacks notification_email or smtp_server; no mail is sent", "for", src.name)
		return nil
	}
	if !b.usable("email") {
		b.d.log.Warn("smtp_alert needs the email notify plugin (vigil-notify-email in plugin_dir); no mail is sent", "for", src.name)
		return nil
	}
	timeout := b.smtpNotifier()
	states := []string{Master, Backup, Fault, Stop}
	if g.NoEmailFaults {
		states = []string{Master, Backup, Stop}
	}
	// Only this action's worker touches last: one goroutine, no lock.
	last := ""
	return &action{
		name: "smtp_alert", states: states, timeout: timeout, plugin: true,
		call: func(ctx context.Context, ev sdk.Event) error {
			if ev.NewState == last {
				return errSkipped
			}
			err := b.d.opts.Plugins.Notify(ctx, "email", sdk.NotifyRequest{Name: smtpName, Event: ev})
			if err == nil {
				last = ev.NewState
			}
			return err
		},
	}
}

// smtpNotifier configures the email plugin's smtp_alert notifier from global_defs (once)
// and returns the deadline of one mail: smtp_connect_timeout plus 10 s.
func (b *builder) smtpNotifier() time.Duration {
	g := b.cfg.Global
	if !b.smtpCfg {
		b.smtpCfg = true
		port := g.SMTPPort
		if port == 0 {
			port = 25
		}
		params := []sdk.Param{
			{Key: "server", Values: []string{g.SMTPServer}},
			{Key: "port", Values: []string{strconv.Itoa(port)}},
			{Key: "to", Values: g.NotificationEmail},
			// keepalived speaks plain SMTP to smtp_server; so does smtp_alert.
			{Key: "tls", Values: []string{"none"}},
		}
		if g.NotificationEmailFrom != "" {
			params = append(params, sdk.Param{Key: "from", Values: []string{g.NotificationEmailFrom}})
		}
		if g.SMTPHeloName != "" {
			params = append(params, sdk.Param{Key: "helo", Values: []string{g.SMTPHeloName}})
		}
		if g.SMTPConnectTimeout > 0 {
			params = append(params, sdk.Param{Key: "connect_timeout", Values: []string{g.SMTPConnectTimeout.String()}})
		}
		b.configs = append(b.configs, pluginConfig{plugin: "email", req: sdk.ConfigureRequest{Name: smtpName, Params: params}})
	}
	timeout := g.SMTPConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return timeout + 10*time.Second
}

// named is a vrrp_notify block, configured once however many instances name it.
func (b *builder) named(name string) *action {
	var np *config.NotifyPlugin
	for _, n := range b.cfg.Notifiers {
		if n.Name == name {
			np = n
		}
	}
	if np == nil {
		b.d.log.Error("notify action names no vrrp_notify block", "name", name)
		return nil
	}
	if b.d.opts.Plugins == nil {
		b.d.log.Error("vrrp_notify needs the plugin host; this action is not run", "name", name)
		return nil
	}
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	if !b.seen[name] {
		b.seen[name] = true
		b.configs = append(b.configs, pluginConfig{plugin: np.Plugin, req: sdk.ConfigureRequest{Name: np.Name, Params: plugin.Params(np.Params)}})
	}
	timeout := np.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &action{
		name: "vrrp_notify " + np.Name, states: allStates, timeout: timeout, plugin: true,
		call: func(ctx context.Context, ev sdk.Event) error {
			return b.d.opts.Plugins.Notify(ctx, np.Plugin, sdk.NotifyRequest{Name: np.Name, Event: ev})
		},
	}
}
