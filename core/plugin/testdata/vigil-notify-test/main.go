// Command vigil-notify-test appends each event it gets to the file in param "file".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/vigil-ha/vigil/sdk/notify"
)

type recorder struct {
	mu    sync.Mutex
	files map[string]string
}

func (r *recorder) Describe(context.Context) (notify.Info, error) {
	return notify.Info{Name: "test", Version: "1.0.0", Params: []notify.ParamSpec{{Name: "file", Type: notify.TypeString, Required: true}}}, nil
}

func (r *recorder) Configure(_ context.Context, req notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	for _, p := range req.Params {
		if p.Key == "file" {
			r.mu.Lock()
			r.files[req.Name] = p.Value()
			r.mu.Unlock()
			return notify.ConfigureResponse{}, nil
		}
	}
	return notify.ConfigureResponse{}, errors.New("file is required")
}

func (r *recorder) Notify(_ context.Context, req notify.NotifyRequest) (notify.NotifyResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(r.files[req.Name], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return notify.NotifyResponse{}, err
	}
	defer f.Close()
	e := req.Event
	_, err = fmt.Fprintf(f, "%s %s %s>%s %d %s %s\n", e.Node, e.Instance, e.OldState, e.NewState, e.Priority, strings.Join(e.VIPs, ","), e.Time.UTC().Format("15:04:05"))
	return notify.NotifyResponse{}, err
}

func main() { notify.Serve(&recorder{files: map[string]string{}}) }
