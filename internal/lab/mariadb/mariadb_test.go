package mariadb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/internal/lab"
)

func TestServer(t *testing.T) {
	s := StartT(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := s.CreateUser(ctx, "monitor", "s3cret", "PROCESS"); err != nil {
		t.Fatal(err)
	}
	// The account works over TCP on the address Start reported.
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "monitor", "s3cret", "tcp", s.Addr()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("monitor over TCP: %v", err)
	}
	if n, err := s.Connections(ctx, "monitor"); err != nil || n != 1 {
		t.Errorf("Connections = %d, %v; want 1", n, err)
	}
	if err := s.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if row, err := s.QueryRow(ctx, "SELECT @@global.read_only AS ro"); err != nil || row["ro"] != "1" {
		t.Errorf("read_only = %v, %v; want 1", row, err)
	}

	// Kill and Restart keep the data; Stop removes it.
	pid := s.PID()
	s.Kill()
	if s.PID() != 0 || !s.Exited() {
		t.Fatalf("pid %d still running after Kill", pid)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Connections(ctx, "monitor"); err != nil || n != 0 {
		t.Errorf("after restart: Connections = %d, %v; want 0 (the account survived the crash)", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Stop: %v", s.Dir, err)
	}
}

func TestMasterMaster(t *testing.T) {
	a := StartT(t, Options{ServerID: 1, GTIDDomainID: 1, LogBin: true, AutoIncrementIncrement: 2, AutoIncrementOffset: 1})
	b := StartT(t, Options{ServerID: 2, GTIDDomainID: 2, LogBin: true, AutoIncrementIncrement: 2, AutoIncrementOffset: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, s := range []*Server{a, b} {
		if err := s.CreateReplicationUser(ctx, "repl", "replpw"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ReplicateFrom(ctx, SourceOf(a, "repl", "replpw")); err != nil {
		t.Fatal(err)
	}
	if err := a.ReplicateFrom(ctx, SourceOf(b, "repl", "replpw")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Server{a, b} {
		if err := s.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(8))",
		"INSERT INTO app.t (who) VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitCaughtUp(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Exec(ctx, "INSERT INTO app.t (who) VALUES ('b')"); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitCaughtUp(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Server{a, b} {
		row, err := s.QueryRow(ctx, "SELECT COUNT(*) AS n, GROUP_CONCAT(who ORDER BY id) AS w FROM app.t")
		if err != nil {
			t.Fatal(err)
		}
		if row["n"] != "2" || row["w"] != "a,b" {
			t.Errorf("%s has %v; want both rows, a then b", s.Addr(), row)
		}
	}

	if err := b.StopReplica(ctx, SQLThread); err != nil {
		t.Fatal(err)
	}
	st, err := b.ReplicaStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st["Slave_SQL_Running"] != "No" || st["Slave_IO_Running"] != "Yes" {
		t.Errorf("after STOP SLAVE SQL_THREAD: IO %s SQL %s", st["Slave_IO_Running"], st["Slave_SQL_Running"])
	}
	if lag, err := b.SecondsBehind(ctx); err != nil || lag != -1 {
		t.Errorf("SecondsBehind with the SQL thread stopped = %d, %v; want -1 (NULL)", lag, err)
	}
}

// TestNamespaces runs a master-master pair in two namespaces of a internal/lab lab, each server
// on its node's address, replicating over the lab's bridge: what the end-to-end failover test
// builds on.
func TestNamespaces(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if err := lab.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.New(ctx, "mdb", 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	var servers []*Server
	for i, nd := range l.Nodes {
		servers = append(servers, StartT(t, Options{
			// 0.0.0.0: the node's loopback (where its check plugin connects) and its
			// address (where the peer replicates from, and later the VIP).
			NetNS: nd.NS, Bind: "0.0.0.0", Host: nd.Addr4.Addr().String(),
			ServerID: i + 1, GTIDDomainID: i + 1, LogBin: true,
			AutoIncrementIncrement: 2, AutoIncrementOffset: i + 1,
		}))
	}
	a, b := servers[0], servers[1]
	for _, s := range servers {
		// The PID is mariadbd's own (ip netns exec execs into it), so signals reach it.
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID()))
		if err != nil || strings.TrimSpace(string(comm)) != "mariadbd" {
			t.Errorf("pid %d is %q (%v); want mariadbd", s.PID(), comm, err)
		}
		if s.Port != 3306 {
			t.Errorf("port %d in a namespace; want 3306", s.Port)
		}
		if err := s.CreateReplicationUser(ctx, "repl", "replpw"); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ReplicateFrom(ctx, SourceOf(b, "repl", "replpw")); err != nil {
		t.Fatal(err)
	}
	if err := b.ReplicateFrom(ctx, SourceOf(a, "repl", "replpw")); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if err := s.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(8))",
		"INSERT INTO app.t (who) VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitCaughtUp(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Exec(ctx, "INSERT INTO app.t (who) VALUES ('b')"); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitCaughtUp(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		row, err := s.QueryRow(ctx, "SELECT GROUP_CONCAT(CONCAT(id, who) ORDER BY id) AS w FROM app.t")
		if err != nil {
			t.Fatal(err)
		}
		// Offsets 1 and 2 with increment 2: the two sides never pick the same key.
		if row["w"] != "1a,2b" {
			t.Errorf("%s in %s has %q; want 1a,2b", s.Addr(), s.opts.NetNS, row["w"])
		}
	}

	// A client inside each node reaches its server on the node's loopback (where a check
	// plugin in that namespace connects), and the peer's over the bridge.
	for i, nd := range l.Nodes {
		for _, addr := range []string{"127.0.0.1:3306", servers[1-i].Addr()} {
			db, err := Connect(nd.NS, addr, "repl", "replpw")
			if err != nil {
				t.Fatal(err)
			}
			var id int
			err = db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id)
			db.Close()
			want := i + 1
			if addr != "127.0.0.1:3306" {
				want = 2 - i
			}
			if err != nil || id != want {
				t.Errorf("server_id at %s from %s = %d, %v; want %d", addr, nd.NS, id, err, want)
			}
		}
	}
	// A crash of one side: the other's IO thread loses its source, and catches up after the
	// restart.
	a.Kill()
	if err := b.Exec(ctx, "INSERT INTO app.t (who) VALUES ('b2')"); err != nil {
		t.Fatal(err)
	}
	if err := a.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitCaughtUp(ctx, b); err != nil {
		t.Fatal(err)
	}
	if row, err := a.QueryRow(ctx, "SELECT COUNT(*) AS n FROM app.t"); err != nil || row["n"] != "3" {
		t.Errorf("after the restart %s has %v rows (%v); want 3", a.Addr(), row, err)
	}
}
