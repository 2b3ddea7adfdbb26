package speaker

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ha/vigil/core/internal/bgppb"
)

func TestParseCommunity(t *testing.T) {
	for in, want := range map[string]uint32{"64512:100": 64512<<16 | 100, "65535:0": gracefulShutdown, "0:0": 0} {
		got, err := parseCommunity(in)
		if err != nil || got != want {
			t.Errorf("parseCommunity(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, in := range []string{"", "64512", "65536:1", "1:65536", "a:b", "1:2:3", "-1:0"} {
		if _, err := parseCommunity(in); err == nil {
			t.Errorf("parseCommunity(%q) accepted", in)
		}
	}
}

// A set with one bad route is refused with InvalidArgument naming it, and the announced set
// stays what it was. No BGP runs here (no Configure): routes are kept for when it does.
func TestSetRoutesRefusesBadInputWhole(t *testing.T) {
	s := New(hclog.NewNullLogger())
	ctx := context.Background()
	good := &bgppb.Route{Prefix: "192.0.2.10/32", Owner: "VI_1", Communities: []string{"64512:100"}}
	if _, err := s.SetRoutes(ctx, &bgppb.Routes{Routes: []*bgppb.Route{good}}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		r    *bgppb.Route
		want string
	}{
		"prefix":    {&bgppb.Route{Prefix: "192.0.2.300/32"}, "192.0.2.300/32"},
		"host bits": {&bgppb.Route{Prefix: "192.0.2.10/24"}, "192.0.2.10/24"},
		"community": {&bgppb.Route{Prefix: "2001:db8::10/128", Communities: []string{"64512:x"}}, "64512:x"},
		"twice":     {&bgppb.Route{Prefix: "192.0.2.11/32"}, "given twice"},
	} {
		rs := []*bgppb.Route{{Prefix: "192.0.2.11/32"}, {Prefix: "2001:db8::11/128"}, c.r}
		_, err := s.SetRoutes(ctx, &bgppb.Routes{Routes: rs})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: SetRoutes = %v; want InvalidArgument naming %q", name, err, c.want)
		}
	}
	st, err := s.Status(ctx, &bgppb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Announced) != 1 || st.Announced[0].Prefix != good.Prefix {
		t.Errorf("announced after refused calls = %v; want only %s", st.Announced, good.Prefix)
	}
}

func TestConfigureRefusesBadInput(t *testing.T) {
	s := New(hclog.NewNullLogger())
	ok := func() *bgppb.Config {
		return &bgppb.Config{LocalAs: 64512, RouterId: "192.0.2.1", Neighbors: []*bgppb.Neighbor{{Address: "198.51.100.1", RemoteAs: 64513}}}
	}
	for name, c := range map[string]struct {
		edit func(*bgppb.Config)
		want string
	}{
		"no AS":     {func(c *bgppb.Config) { c.LocalAs = 0 }, "local_as"},
		"router ID": {func(c *bgppb.Config) { c.RouterId = "2001:db8::1" }, "router_id"},
		"address":   {func(c *bgppb.Config) { c.Neighbors[0].Address = "198.51.100" }, "198.51.100"},
		"remote AS": {func(c *bgppb.Config) { c.Neighbors[0].RemoteAs = 0 }, "remote_as"},
		"hold time": {func(c *bgppb.Config) { c.Neighbors[0].HoldTimeSec = 2 }, "hold_time"},
		"ttl":       {func(c *bgppb.Config) { c.Neighbors[0].MultihopTtl = 256 }, "multihop_ttl"},
		"duplicate": {func(c *bgppb.Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, "twice"},
	} {
		cfg := ok()
		c.edit(cfg)
		_, err := s.Configure(context.Background(), cfg)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Configure = %v; want InvalidArgument naming %q", name, err, c.want)
		}
	}
}

func TestReasonWords(t *testing.T) {
	for in, want := range map[string]string{
		"hold-timer-expired": "hold timer expired",
		"notification-sent code 2(open) subcode 2(bad peer as)": "sent NOTIFICATION: code 2(open) subcode 2(bad peer as)",
		"": "",
	} {
		if got := reasonWords(in); got != want {
			t.Errorf("reasonWords(%q) = %q; want %q", in, got, want)
		}
	}
}
