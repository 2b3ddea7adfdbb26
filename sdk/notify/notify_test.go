package notify_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk"
	"github.com/vigil-ha/vigil/sdk/notify"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

type recorder struct{ got []notify.NotifyRequest }

func (r *recorder) Describe(context.Context) (notify.Info, error) {
	return notify.Info{Name: "rec"}, nil
}

func (r *recorder) Configure(context.Context, notify.ConfigureRequest) (notify.ConfigureResponse, error) {
	return notify.ConfigureResponse{}, nil
}

func (r *recorder) Notify(_ context.Context, req notify.NotifyRequest) (notify.NotifyResponse, error) {
	r.got = append(r.got, req)
	return notify.NotifyResponse{}, nil
}

func TestNotifyRoundTrip(t *testing.T) {
	r := &recorder{}
	n := sdktest.ServeNotifier(t, r)
	want := notify.NotifyRequest{Name: "pager", Event: notify.Event{
		Node: "lb1", Instance: "VI_1", Group: "G1", OldState: "BACKUP", NewState: "MASTER", Priority: 150,
		Time: time.Date(2026, 5, 1, 12, 0, 0, 123, time.UTC), VIPs: []string{"192.0.2.10/24", "2001:db8::10/64"},
	}}
	if _, err := n.Notify(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if len(r.got) != 1 || !reflect.DeepEqual(r.got[0], want) {
		t.Fatalf("got %+v\nwant %+v", r.got, want)
	}
	info, err := n.Describe(context.Background())
	if err != nil || info.Kind != "notify" || info.ProtocolVersion != sdk.ProtocolVersion {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
}
