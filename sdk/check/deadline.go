package check

import (
	"context"
	"time"
)

// A probe has two times: its deadline, by which the plugin must have its answer (a connect
// not done by then is a timeout: keepalived's connect_timeout), and how long the host waits
// for that answer, which is a little longer. The plugin runs in a process of its own: on a
// machine that is busy for a moment (a reload parsing a large file, a plugin starting) the
// plugin or the host may run late, and a connect that was over in time would then be seen
// after the deadline. keepalived, whose checks run in its own event loop, looks at the socket
// when it runs again and counts the connect that succeeded meanwhile; the host does the
// same by waiting past the deadline for the plugin's own verdict, which a plugin
// that honours the deadline gives at once.

type probeDeadlineKey struct{}

// WithProbeDeadline returns a context for a host's Check call whose probe deadline is dl,
// while ctx (with a later deadline) bounds how long the host waits for the answer. The SDK
// sends dl to the plugin as the probe's deadline.
func WithProbeDeadline(ctx context.Context, dl time.Time) context.Context {
	return context.WithValue(ctx, probeDeadlineKey{}, dl)
}

// probeDeadline is the deadline a Check call gives the plugin: the probe deadline set with
// WithProbeDeadline, else ctx's own.
func probeDeadline(ctx context.Context) (time.Time, bool) {
	if dl, ok := ctx.Value(probeDeadlineKey{}).(time.Time); ok {
		return dl, true
	}
	return ctx.Deadline()
}

// ProbeDeadline is the probe deadline that WithProbeDeadline put in ctx, if any: a host
// watches for a plugin that lets it pass by far (core/plugin pings it then).
func ProbeDeadline(ctx context.Context) (time.Time, bool) {
	dl, ok := ctx.Value(probeDeadlineKey{}).(time.Time)
	return dl, ok
}
