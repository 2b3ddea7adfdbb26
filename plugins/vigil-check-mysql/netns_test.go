package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// TestInNamespace runs the plugin binary inside a lab node, as vigil's check process runs it
// there in the end-to-end test, against the node's own server on the node's loopback: it
// follows a crash and a restart of the server.
func TestInNamespace(t *testing.T) {
	if err := mariadb.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := lab.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.New(ctx, "mysqlck", 1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	nd := l.Nodes[0]
	// read_only: a server on the host's own 127.0.0.1:3306 (a system MariaDB) would be
	// writable, so an OK below comes from the node's server.
	s := startServer(t, mariadb.Options{NetNS: nd.NS, Bind: "0.0.0.0", Host: nd.Addr4.Addr().String(), ReadOnly: true})

	// go-plugin talks to the plugin over a unix socket, a file, which crosses namespaces;
	// ip netns exec execs into the plugin, so the process go-plugin kills is the plugin.
	wrapper := filepath.Join(t.TempDir(), "plugin-in-"+nd.NS)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s\n", nd.NS, sdktest.Build(t, "."))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := sdktest.LaunchCheck(t, wrapper)

	ps := []string{"address 127.0.0.1:3306", "user " + monitorUser, "password " + monitorPass, "expect_read_only yes"}
	expect(t, probeOnce(t, c, "chk", 5*time.Second, ps...), check.OK, `^read_only ON$`)
	s.Kill()
	expect(t, checkOnce(t, c, "chk", 5*time.Second), check.Critical, `^127\.0\.0\.1:3306: (connection refused|connection lost while connecting)$`)
	expect(t, checkOnce(t, c, "chk", 5*time.Second), check.Critical, `^127\.0\.0\.1:3306: connection refused$`)
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, checkOnce(t, c, "chk", 5*time.Second), check.OK, `^read_only ON$`)
}
