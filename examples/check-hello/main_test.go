package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// greeter listens on loopback and greets every connection with line.
func greeter(t *testing.T, line string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(line + "\r\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestHello(t *testing.T) {
	addr := greeter(t, "220 mail.example.com ESMTP")
	for _, tc := range []struct {
		name   string
		c      check.Checker
		expect string
		want   check.Status
	}{
		{"in-process ok", sdktest.ServeCheck(t, newHello()), "220", check.OK},
		{"in-process mismatch", sdktest.ServeCheck(t, newHello()), "SSH-", check.Critical},
		{"binary ok", sdktest.LaunchCheck(t, sdktest.Build(t, ".")), "220", check.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := tc.c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: []check.Param{
				{Key: "address", Values: []string{addr}},
				{Key: "expect", Values: []string{tc.expect}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tc.c.Check(ctx, check.CheckRequest{Name: "chk"})
			if err != nil || resp.Status != tc.want {
				t.Fatalf("Check = %+v, %v; want %s", resp, err, tc.want)
			}
		})
	}
}

func TestHelloRejectsBadParams(t *testing.T) {
	c := sdktest.ServeCheck(t, newHello())
	for _, tc := range []struct {
		params []check.Param
		want   string
	}{
		{nil, "address is required"},
		{[]check.Param{{Key: "address", Values: []string{"localhost"}}}, `address "localhost": want host:port`},
		{[]check.Param{{Key: "adress", Values: []string{"x:1"}}}, `unknown param "adress"`},
	} {
		_, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "chk", Params: tc.params})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Configure(%v) = %v; want %q", tc.params, err, tc.want)
		}
	}
	if _, err := c.Check(context.Background(), check.CheckRequest{Name: "other"}); err == nil {
		t.Error("Check of an unconfigured name succeeded")
	}
}

// TestReadmeParams: README.md's param table says what Describe says (names, types, required,
// defaults), so the docs cannot drift from the code.
func TestReadmeParams(t *testing.T) {
	sdktest.ParamsDocumented(t, newHello(), "README.md")
}
