// Package check is the SDK for vigil check plugins. A check plugin is a program whose main
// calls Serve with a Checker:
//
//	func main() { check.Serve(&Hello{}) }
//
// vigil starts it once (as vigil-check-NAME in its plugin directory), calls Configure for
// each configured check that uses it, then Check for each probe, many at a time. Everything
// below the Checker interface (go-plugin, gRPC, protobuf) is the SDK's business.
package check

import (
	"context"

	"github.com/vigil-ha/vigil/sdk"
)

// Checker is what a check plugin implements. Its methods are called concurrently.
type Checker interface {
	// Describe tells vigil what the plugin is and which params it takes.
	Describe(ctx context.Context) (Info, error)
	// Configure validates the params of one named check and, unless req.ValidateOnly, keeps
	// them for later Check calls with that name, replacing earlier ones. A returned error
	// rejects the configuration with its message (vigil -t prints it).
	Configure(ctx context.Context, req ConfigureRequest) (ConfigureResponse, error)
	// Check runs one probe of a configured check. It must return by ctx's deadline. A
	// returned error means the probe could not run and counts as Unknown.
	Check(ctx context.Context, req CheckRequest) (CheckResponse, error)
}

// The shared SDK types, so that a check plugin needs to import only this package.
type (
	Info              = sdk.Info
	ParamSpec         = sdk.ParamSpec
	ParamType         = sdk.ParamType
	Param             = sdk.Param
	ConfigureRequest  = sdk.ConfigureRequest
	ConfigureResponse = sdk.ConfigureResponse
)

// Configured keeps what Configure made of each configured name (sdk.Configured).
type Configured[T any] = sdk.Configured[T]

// Parameter types for ParamSpec.Type.
const (
	TypeString     = sdk.TypeString
	TypeInt        = sdk.TypeInt
	TypeFloat      = sdk.TypeFloat
	TypeBool       = sdk.TypeBool
	TypeDuration   = sdk.TypeDuration
	TypeList       = sdk.TypeList
	TypeBlock      = sdk.TypeBlock
	TypeSecretFile = sdk.TypeSecretFile
)

// CheckRequest asks for one probe.
type CheckRequest struct {
	// Name is a name given to Configure.
	Name string
}

// Status is the outcome of a probe.
type Status int

const (
	// Unknown: the check could not tell (no answer to the query it needs, bad state). Counts
	// as a failure. It is the zero value, so a forgotten Status never passes.
	Unknown Status = iota
	// OK: healthy.
	OK
	// Warning: degraded but serving. Counts as a success; the message is logged.
	Warning
	// Critical: failed.
	Critical
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return "unknown"
}

// Healthy reports whether the status counts as a success for rise and fall.
func (s Status) Healthy() bool { return s == OK || s == Warning }

// CheckResponse is the outcome of one probe.
type CheckResponse struct {
	Status Status
	// Message is short and on one line: it goes to the log and to `vigil status`.
	Message string
	// Weight, when set, is a dynamic weight the plugin computed (e.g. from replication lag).
	// While the check is up it takes the place of the configured weight's effect on the
	// priority of the instances that track the check; while it is down the configured weight
	// applies as for a vrrp_script. It must lie in -253..253: vigil counts an answer with a
	// weight beyond that as a failure (a bug in the plugin), and keeps a good weight until the
	// plugin reports another, so report one with every answer or with none.
	Weight *int
	// Metrics are numbers worth graphing, by name (e.g. "replication_lag_seconds").
	Metrics map[string]float64
}

// Serve runs the plugin until vigil stops it. Call it from main and nothing else. Log with
// log/slog, whose default logger Serve points at vigil's log. Stdout carries the handshake:
// vigil skips and logs whole lines printed there before it (say, by a library's init), but
// output without a newline would run into the handshake line and break it.
func Serve(impl Checker) {
	serve(impl)
}
