// Command vigil-check-hello is an example third-party check plugin for vigil: it connects to
// a TCP service and checks the greeting the service sends first (an SMTP "220", an SSH
// "SSH-2.0", a custom "HELLO"). It imports nothing of vigil but the SDK. See README.md.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

func main() { check.Serve(newHello()) }

// hello keeps the params of every configured check, by name: one plugin process serves all
// the vrrp_check blocks that name it, and vigil calls its methods concurrently.
type hello struct {
	checks check.Configured[target]
}

type target struct {
	address string // host:port
	expect  string // the greeting starts with this; empty: any greeting
}

var _ check.Checker = (*hello)(nil)

func newHello() *hello { return &hello{} }

func (h *hello) Describe(context.Context) (check.Info, error) {
	return check.Info{
		Name:        "hello",
		Version:     "0.1.0",
		Description: "connects to a TCP service and checks its greeting",
		Params: []check.ParamSpec{
			{Name: "address", Type: check.TypeString, Required: true, Description: "host:port to connect to"},
			{Name: "expect", Type: check.TypeString, Description: "the first line must start with this (default: any line)"},
		},
	}, nil
}

func (h *hello) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	var t target
	for _, p := range req.Params {
		switch p.Key {
		case "address":
			if _, _, err := net.SplitHostPort(p.Value()); err != nil {
				return check.ConfigureResponse{}, fmt.Errorf("address %q: want host:port", p.Value())
			}
			t.address = p.Value()
		case "expect":
			t.expect = strings.Join(p.Values, " ")
		default:
			return check.ConfigureResponse{}, fmt.Errorf("unknown param %q (known: address, expect)", p.Key)
		}
	}
	if t.address == "" {
		return check.ConfigureResponse{}, fmt.Errorf("address is required")
	}
	h.checks.Keep(req, t)
	return check.ConfigureResponse{}, nil
}

func (h *hello) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	t, err := h.checks.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.address)
	if err != nil {
		return check.CheckResponse{Status: check.Critical, Message: err.Error()}, nil
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return check.CheckResponse{Status: check.Critical, Message: "no greeting: " + err.Error()}, nil
	}
	line = strings.TrimRight(line, "\r\n")
	metrics := map[string]float64{"greeting_seconds": time.Since(start).Seconds()}
	if !strings.HasPrefix(line, t.expect) {
		return check.CheckResponse{Status: check.Critical, Message: fmt.Sprintf("greeting %q does not start with %q", line, t.expect), Metrics: metrics}, nil
	}
	return check.CheckResponse{Status: check.OK, Message: line, Metrics: metrics}, nil
}
