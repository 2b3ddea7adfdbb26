package speaker

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

// Serve runs a speaker as the vrrp process's go-plugin plugin (bgppb.Handshake, gRPC) until
// the host ends it or the host process is gone (WatchParent), then closes its sessions. log
// should write hclog JSON to stderr, which go-plugin's host reads into its own log.
func Serve(log hclog.Logger) {
	// Read before serving: the host may be gone by the time a goroutine would read it.
	parent := os.Getppid()
	if parent == 1 {
		log.Error("started by no parent process (reparented to init): exiting; the vrrp process starts vigil-bgp")
		os.Exit(1)
	}
	sp := New(log)
	go sp.WatchParent(parent, time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: bgppb.Handshake,
		Plugins:         bgppb.PluginSet(sp),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          log,
	})
	sp.Stop()
}

// WatchParent ends the process, after closing every session, once its parent (the vrrp
// process) is gone: an orphan would go on announcing addresses nobody serves. The host sets
// no Pdeathsig (it fires when the thread that started the speaker ends, not the process,
// and Go ends threads that a goroutine locked); go-plugin hands the speaker the host's own
// stdin, whose end says nothing. A change of parent does: the kernel reparents an orphan.
// Checked every interval, which bounds how long routes outlive the vrrp process (plus the
// neighbors' handling of the Cease). parent is the parent's PID when the process started.
func (s *Speaker) WatchParent(parent int, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			s.log.Warn("the vrrp process is gone; closing BGP sessions and exiting", "parent_pid", parent)
			s.Stop()
			os.Exit(1)
		}
	}
}
