package sdk

import (
	"fmt"
	"sync"
)

// Configured keeps what a plugin made of each configured name, for Check or Notify to find.
// One plugin process serves every vrrp_check (or notify_action) that names it, and vigil calls
// its methods concurrently, so every plugin needs this; the zero value is ready to use.
//
//	type pinger struct{ targets sdk.Configured[target] }
//
//	func (p *pinger) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
//		t, err := parse(req.Params)
//		if err != nil {
//			return check.ConfigureResponse{}, err
//		}
//		p.targets.Keep(req, t)
//		return check.ConfigureResponse{}, nil
//	}
//
//	func (p *pinger) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
//		t, err := p.targets.Lookup(req.Name)
//		if err != nil {
//			return check.CheckResponse{}, err
//		}
//		...
type Configured[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

// Keep stores v under req.Name, replacing what was there, unless req.ValidateOnly (`vigil -t`
// only asks whether the params are good). It returns what it replaced, for a plugin that
// holds connections or files per name to close them.
func (c *Configured[T]) Keep(req ConfigureRequest, v T) (old T, replaced bool) {
	if req.ValidateOnly {
		return old, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]T{}
	}
	old, replaced = c.m[req.Name]
	c.m[req.Name] = v
	return old, replaced
}

// Lookup returns what Keep stored under name. The error names it: vigil configures a name
// before it probes or notifies with it, so a miss means the plugin lost its state (a
// restarted plugin is configured again by vigil before use).
func (c *Configured[T]) Lookup(name string) (T, error) {
	c.mu.RLock()
	v, ok := c.m[name]
	c.mu.RUnlock()
	if !ok {
		return v, fmt.Errorf("%q is not configured in this plugin", name)
	}
	return v, nil
}
