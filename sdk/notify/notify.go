// Package notify is the SDK for vigil notify plugins: actions run when a VRRP instance or sync
// group changes state (a script, an e-mail, a webhook, a page). A notify plugin is a program
// whose main calls Serve with a Notifier:
//
//	func main() { notify.Serve(&Pager{}) }
//
// vigil starts it once (as vigil-notify-NAME in its plugin directory), calls Configure for
// each configured notifier that uses it, then Notify for each event. Events of one instance
// or sync group arrive one at a time and in order; events of different ones concurrently.
package notify

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/sdk"
)

// Notifier is what a notify plugin implements. Its methods are called concurrently.
type Notifier interface {
	// Describe tells vigil what the plugin is and which params it takes.
	Describe(ctx context.Context) (Info, error)
	// Configure validates the params of one named notifier and, unless req.ValidateOnly,
	// keeps them for later Notify calls with that name, replacing earlier ones. A returned
	// error rejects the configuration with its message (vigil -t prints it).
	Configure(ctx context.Context, req ConfigureRequest) (ConfigureResponse, error)
	// Notify delivers one event. It must return by ctx's deadline; an error is logged by
	// vigil with its message and the event is not retried.
	Notify(ctx context.Context, req NotifyRequest) (NotifyResponse, error)
}

// The shared SDK types, so that a notify plugin needs to import only this package.
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

// NotifyRequest delivers one event to one configured notifier.
type NotifyRequest struct {
	// Name is a name given to Configure.
	Name  string
	Event Event
}

// NotifyResponse is empty today; fields may be added.
type NotifyResponse struct{}

// Event is a state change of a VRRP instance or sync group, or of the load balancer: a real
// server going up or down, a virtual server gaining or losing its quorum (VirtualServer set;
// only smtp_alert's email notifier gets these).
type Event struct {
	Node     string // router_id of this node
	Instance string // vrrp_instance; empty for a sync group's own event
	Group    string // vrrp_sync_group, if the instance is in one
	OldState string // INIT, BACKUP, MASTER, FAULT, STOP, DELETED
	NewState string // for the load balancer: UP or DOWN
	Priority int
	Time     time.Time
	VIPs     []string

	// VirtualServer is the virtual server as keepalived names it ("[192.0.2.100]:tcp:80",
	// "FWM 1", "[GROUP]:0"); RealServer the real server of a real server's event
	// ("[192.0.2.11]:tcp:80"), empty for a quorum change; Detail keepalived's line saying what
	// happened ("=> Lost quorum <=", "=> Removing <="). All empty for VRRP events.
	VirtualServer string
	RealServer    string
	Detail        string
}

// Serve runs the plugin until vigil stops it. Call it from main and nothing else. Log with
// log/slog, whose default logger Serve points at vigil's log. Stdout carries the handshake:
// vigil skips and logs whole lines printed there before it (say, by a library's init), but
// output without a newline would run into the handshake line and break it.
func Serve(impl Notifier) {
	serve(impl)
}
