package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/mariadb"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// galeraProvider is where Debian's galera-4 package (a dependency of mariadb-server) puts
// the wsrep provider.
const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// TestGalera bootstraps a one-node Galera cluster on loopback and desyncs the node.
func TestGalera(t *testing.T) {
	if err := mariadb.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := os.Stat(galeraProvider); err != nil {
		t.Skipf("skipping: no Galera provider (Debian package galera-4): %v", err)
	}
	// Galera's group communication listens on a port of its own (4567 by default).
	gcomm := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	ist := strings.TrimPrefix(closedPort(t), "127.0.0.1:")
	s := startServer(t, mariadb.Options{Args: []string{
		"--wsrep-on=ON",
		"--wsrep-provider=" + galeraProvider,
		"--wsrep-cluster-address=gcomm://", // a new cluster of this one node
		"--wsrep-cluster-name=vigil-test-" + strconv.Itoa(os.Getpid()),
		"--wsrep-node-address=127.0.0.1",
		fmt.Sprintf("--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:%s;ist.recv_addr=127.0.0.1:%s", gcomm, ist),
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := sdktest.ServeCheck(t, newMySQL())
	ps := []string{"address " + s.Addr(), "user " + monitorUser, "password " + monitorPass, "expect_galera yes"}
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: "chk", Params: params(ps...)}); err != nil {
		t.Fatal(err)
	}
	// The node reaches Synced a moment after it accepts connections.
	eventually(t, c, "chk", check.OK, `^galera synced$`)

	// A desynced node (as during a backup) is not Synced: wsrep_local_state 2.
	if err := s.Exec(ctx, "SET GLOBAL wsrep_desync = ON"); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "chk", check.Critical, `^galera node is Donor/Desynced \(wsrep_local_state 2\), not Synced$`)
	if err := s.Exec(ctx, "SET GLOBAL wsrep_desync = OFF"); err != nil {
		t.Fatal(err)
	}
	// Galera leaves the desynced state on its own time.
	eventually(t, c, "chk", check.OK, `^galera synced$`)
}
