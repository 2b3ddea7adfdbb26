// Command vigil-check-noisy is a check plugin that prints to stdout before its handshake,
// as a library's init function might: the host must start it anyway.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigil-ha/vigil/sdk/check"
)

func init() {
	fmt.Println("noisy: hello from init")
	fmt.Println("1|2|not a handshake")
	fmt.Println(strings.Repeat("x", 100<<10)) // longer than any line the host keeps
	fmt.Println()
}

type noisy struct{}

func (noisy) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "noisy", Version: "0.1.0"}, nil
}

func (noisy) Configure(context.Context, check.ConfigureRequest) (check.ConfigureResponse, error) {
	return check.ConfigureResponse{}, nil
}

func (noisy) Check(_ context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	return check.CheckResponse{Status: check.OK, Message: req.Name}, nil
}

func main() { check.Serve(noisy{}) }
