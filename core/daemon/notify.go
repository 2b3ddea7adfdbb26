package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vigil-ha/vigil/core/config"
	"github.com/vigil-ha/vigil/core/notify"
	"github.com/vigil-ha/vigil/core/plugin"
	"github.com/vigil-ha/vigil/sdk"
)

// notifyStopWait bounds how long SIGTERM (or a reload) waits for STOP (or DELETED)
// notifications before the addresses go.
const notifyStopWait = 5 * time.Second

// notifyActions is the dispatcher of one configuration and the plugin host it delivers
// through.
type notifyActions struct {
	d    *notify.Dispatcher
	host *plugin.Host
}

// startNotify starts the notify actions of cfg: notify plugins from plugin_dir, and
// keepalived's scripts from core when the exec plugin is not installed.
func startNotify(cfg *config.Config, log hclog.Logger, delivered func(action, outcome string, took time.Duration)) notifyActions {
	host := plugin.New(plugin.ConfigOptions(cfg.Global, log.Named("plugin")))
	dir := host.Dir()
	d := notify.New(cfg, notify.Options{
		Plugins: host,
		Installed: func(name string) bool {
			_, err := os.Stat(filepath.Join(dir, plugin.Executable(sdk.KindNotify, name)))
			return err == nil
		},
		Log:       log.Named("notify"),
		Delivered: delivered,
	})
	return notifyActions{d: d, host: host}
}

func (a notifyActions) close() {
	a.d.Close()
	a.host.Close()
}

// hasSource says whether cfg has the instance or sync group: what a reload keeps.
func hasSource(cfg *config.Config, group bool, name string) bool {
	if group {
		return slices.ContainsFunc(cfg.SyncGroups, func(g *config.SyncGroup) bool { return g.Name == name })
	}
	return slices.ContainsFunc(cfg.Instances, func(in *config.VRRPInstance) bool { return in.Name == name })
}

// notifyRoute is where the children's events go: the notify actions of the running
// configuration. A reload swaps them (swap) and the stop ends the delivery of transitions
// (stopping); both take mu, as each event does, so that no event reaches the old actions
// after the new ones took over their states. An event never waits for more than that: the
// dispatcher only queues it.
type notifyRoute struct {
	mu      sync.Mutex
	actions notifyActions // zero until start
	// stopped: STOP notifications went out; transitions are no longer delivered, but the
	// check process's shutdown notifications (omega) still are, after that.
	stopped bool
	// closed: the actions are closed; close does nothing more.
	closed bool
}

// start sets the first configuration's actions.
func (n *notifyRoute) start(a notifyActions) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.actions = a
}

// current is the actions in use.
func (n *notifyRoute) current() notifyActions {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.actions
}

// swap hands the events to fresh from now on, fresh knowing the state of each instance
// that the old actions last heard of; it returns the old ones, for their DELETED
// notifications and their close.
func (n *notifyRoute) swap(fresh notifyActions) (old notifyActions) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.actions.d != nil {
		fresh.d.Adopt(n.actions.d)
	}
	old, n.actions = n.actions, fresh
	return old
}

func (n *notifyRoute) transition(t notify.Transition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d := n.actions.d; d != nil && !n.stopped {
		d.Transition(t)
	}
}

func (n *notifyRoute) lvs(e notify.LVSEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d := n.actions.d; d != nil && !n.closed {
		d.LVS(e)
	}
}

// stopping ends the delivery of transitions: the STOP notifications went out.
func (n *notifyRoute) stopping() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
}

// close closes the actions in use, once.
func (n *notifyRoute) close() {
	n.mu.Lock()
	a, closed := n.actions, n.closed
	n.stopped, n.closed = true, true
	n.mu.Unlock()
	if !closed && a.d != nil {
		a.close()
	}
}

// hosts are the plugin hosts of the actions in use, for the plugin metrics.
func (n *notifyRoute) hosts() []*plugin.Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.actions.host == nil {
		return nil
	}
	return []*plugin.Host{n.actions.host}
}
