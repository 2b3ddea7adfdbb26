// Package sdk holds what check and notify plugins share: the protocol version, the handshake,
// and the plain types that describe a plugin and carry its configuration. Plugin authors
// import sdk/check or sdk/notify, which re-export these types; vigil's plugin host imports them
// to start plugins. The wire protocol (gRPC, sdk/proto/vigil_plugin.proto) stays inside.
package sdk

import (
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/vigil-ha/vigil/sdk/internal/lane"
)

// ProtocolVersion is the newest vigil plugin protocol this SDK speaks, and MinProtocolVersion
// the oldest it still serves: go-plugin's version negotiation picks the newest version both
// sides speak, so a plugin built with this SDK keeps working with older hosts, and this host
// with older plugins. Version 2 adds the Probes stream to checks (one message per probe
// instead of one gRPC call), version 3 the probe lane (the same messages on a socket without
// gRPC); everything else is as in version 1.
const (
	ProtocolVersion    = 3
	MinProtocolVersion = 1
)

// Kind is the kind of a plugin, and the prefix of its executable's name (vigil-KIND-NAME).
type Kind string

const (
	KindCheck  Kind = "check"
	KindNotify Kind = "notify"
)

// Handshake is the go-plugin handshake between vigil and its plugins. The cookie is no secret:
// it only makes a plugin started by hand say so instead of waiting for a connection.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "VIGIL_PLUGIN",
		MagicCookieValue: "6f1c0a3e-vigil-plugin",
	}
}

// windowSize is the HTTP/2 flow-control window of plugin connections. A fixed window turns
// off gRPC's bandwidth estimator, which otherwise sends a PING with each message that follows
// an acknowledged one: on a probe stream that is an extra write and read in both processes
// per probe, for a connection that never carries more than a few kilobytes at a time.
const windowSize = 1 << 20

// GRPCDialOptions are the gRPC options of a host's connection to a plugin (go-plugin's
// ClientConfig.GRPCDialOptions); the SDK gives the plugin's end the matching server options.
//
// The host takes at most lane.MaxAnswer (4 MiB, gRPC's own default) in one message from a
// plugin: go-plugin lifts gRPC's limit to 2 GiB, and a buggy plugin could then make the host
// hold that much for one answer, of which it keeps a short message anyway.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(windowSize), grpc.WithInitialConnWindowSize(windowSize),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(lane.MaxAnswer))}
}

// GRPCServerOptions are the plugin's end of GRPCDialOptions.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(windowSize), grpc.InitialConnWindowSize(windowSize)}
}

// Param is one line of a params block in vigil's configuration: the key, the words after it,
// and the lines of a nested block. For
//
//	params {
//	    address 127.0.0.1:3306
//	    tls { ca /etc/ssl/ca.pem }
//	}
//
// the plugin gets {Key: "address", Values: ["127.0.0.1:3306"]} and
// {Key: "tls", Block: [{Key: "ca", Values: ["/etc/ssl/ca.pem"]}]}.
type Param struct {
	Key    string
	Values []string
	Block  []Param
}

// Value is the first word after the key, or "".
func (p Param) Value() string {
	if len(p.Values) == 0 {
		return ""
	}
	return p.Values[0]
}

// ParamType says what a parameter holds, for `vigil plugins` and generated docs.
type ParamType string

const (
	TypeString   ParamType = "string"
	TypeInt      ParamType = "int"
	TypeFloat    ParamType = "float"
	TypeBool     ParamType = "bool"
	TypeDuration ParamType = "duration" // Go syntax or plain seconds, as keepalived: "1.5", "300ms"
	TypeList     ParamType = "list"     // several values after the key
	TypeBlock    ParamType = "block"    // a nested block
	// TypeSecretFile is a path to a file that holds a secret, so that the secret stays out of
	// the configuration file.
	TypeSecretFile ParamType = "secret_file"
)

// ParamSpec documents one parameter.
type ParamSpec struct {
	Name        string
	Type        ParamType
	Required    bool
	Default     string
	Description string
}

// Info describes a plugin. Plugins fill Name, Version, Description and Params; the SDK fills
// Kind and ProtocolVersion.
type Info struct {
	Name            string
	Kind            Kind
	Version         string
	ProtocolVersion int
	Description     string
	Params          []ParamSpec
}

// ConfigureRequest carries the params of one named check or notifier.
type ConfigureRequest struct {
	// Name is the configured name (vrrp_check chk_db: "chk_db"); later calls refer to it.
	Name   string
	Params []Param
	// ValidateOnly is set by `vigil -t`: check the params and keep nothing.
	ValidateOnly bool
}

// ConfigureResponse is the answer to a ConfigureRequest that was accepted. A request that is
// not accepted returns an error instead, whose message the operator sees.
type ConfigureResponse struct {
	// Warnings are shown to the operator; the configuration is accepted.
	Warnings []string
}

// ErrUnavailable is what a call returns when the plugin process could not be reached: it
// exited, was killed, or is being restarted.
var ErrUnavailable = errors.New("plugin unavailable")

// PluginError is an error the plugin itself returned; Msg is its message for the operator.
type PluginError struct{ Msg string }

func (e *PluginError) Error() string { return e.Msg }
