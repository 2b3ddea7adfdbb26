package check_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// echo hands back what it got, so that a test sees what crossed the wire.
type echo struct {
	got  check.ConfigureRequest
	resp check.CheckResponse
}

func (e *echo) Describe(context.Context) (check.Info, error) {
	return check.Info{Name: "echo", Version: "2.0", Description: "d",
		Params: []check.ParamSpec{{Name: "a", Type: check.TypeDuration, Required: true, Default: "1s", Description: "x"}}}, nil
}

func (e *echo) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	e.got = req
	return check.ConfigureResponse{Warnings: []string{"w"}}, nil
}

func (e *echo) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	switch req.Name {
	case "panic":
		panic("boom")
	case "slow":
		<-ctx.Done()
		return check.CheckResponse{}, ctx.Err()
	case "fail":
		return check.CheckResponse{}, errors.New("no route to database")
	}
	return e.resp, nil
}

func TestRoundTrip(t *testing.T) {
	w := -20
	impl := &echo{resp: check.CheckResponse{Status: check.Warning, Message: "lag 12s", Weight: &w, Metrics: map[string]float64{"lag": 12}}}
	c := sdktest.ServeCheck(t, impl)
	ctx := context.Background()

	info, err := c.Describe(ctx)
	want := check.Info{Name: "echo", Kind: sdk.KindCheck, Version: "2.0", ProtocolVersion: sdk.ProtocolVersion, Description: "d",
		Params: []check.ParamSpec{{Name: "a", Type: check.TypeDuration, Required: true, Default: "1s", Description: "x"}}}
	if err != nil || !reflect.DeepEqual(info, want) {
		t.Fatalf("Describe = %+v, %v", info, err)
	}

	req := check.ConfigureRequest{Name: "chk", ValidateOnly: true, Params: []check.Param{
		{Key: "address", Values: []string{"127.0.0.1:3306"}},
		{Key: "tls", Block: []check.Param{{Key: "ca", Values: []string{"/etc/ca.pem"}}}},
	}}
	resp, err := c.Configure(ctx, req)
	if err != nil || !reflect.DeepEqual(impl.got, req) || !reflect.DeepEqual(resp.Warnings, []string{"w"}) {
		t.Fatalf("Configure: got %+v, %+v, %v", impl.got, resp, err)
	}

	got, err := c.Check(ctx, check.CheckRequest{Name: "chk"})
	if err != nil || !reflect.DeepEqual(got, impl.resp) {
		t.Fatalf("Check = %+v, %v; want %+v", got, err, impl.resp)
	}
	impl.resp = check.CheckResponse{Status: check.Critical}
	if got, _ := c.Check(ctx, check.CheckRequest{Name: "chk"}); got.Weight != nil || got.Status != check.Critical {
		t.Fatalf("Check without weight = %+v", got)
	}
}

func TestErrors(t *testing.T) {
	c := sdktest.ServeCheck(t, &echo{})
	_, err := c.Check(context.Background(), check.CheckRequest{Name: "panic"})
	if err == nil || !strings.Contains(err.Error(), "plugin panicked: boom") {
		t.Errorf("panic: %v", err)
	}
	_, err = c.Check(context.Background(), check.CheckRequest{Name: "fail"})
	var pe *sdk.PluginError
	if !errors.As(err, &pe) || pe.Msg != "no route to database" {
		t.Errorf("plugin error: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err = c.Check(ctx, check.CheckRequest{Name: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

func TestStatus(t *testing.T) {
	for s, want := range map[check.Status]bool{check.OK: true, check.Warning: true, check.Critical: false, check.Unknown: false} {
		if s.Healthy() != want {
			t.Errorf("%s.Healthy() = %v", s, !want)
		}
	}
}

// A weight past int32 is clamped on the wire, not wrapped: 2^32+10 would otherwise arrive as
// a valid 10, and the host could not tell it from a plugin that meant 10.
func TestWeightOutOfRangeStaysOutOfRange(t *testing.T) {
	for _, w := range []int{1<<32 + 10, -(1<<32 + 10)} {
		impl := &echo{resp: check.CheckResponse{Status: check.OK, Weight: &w}}
		c := sdktest.ServeCheck(t, impl)
		got, err := c.Check(context.Background(), check.CheckRequest{Name: "chk"})
		if err != nil || got.Weight == nil {
			t.Fatalf("Check = %+v, %v", got, err)
		}
		if want := max(min(w, math.MaxInt32), math.MinInt32); *got.Weight != want {
			t.Errorf("weight %d came out as %d, want %d", w, *got.Weight, want)
		}
	}
}
