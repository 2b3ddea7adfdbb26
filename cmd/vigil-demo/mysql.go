package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

// The MySQL demo is the first user story (configs/mysql-master-master) played out: two
// MariaDB servers in master-master replication, vigil on each node tracking its own database
// with the mysql check plugin, and a client on a third node writing through the VIP. The
// master's database is killed; the VIP moves to the peer and the writes go on there.

const mysqlNodeConf = `! vigil MySQL demo, node %[1]s (after configs/mysql-master-master/%[1]s.conf)
global_defs {
    router_id mysql-%[1]s
    plugin_dir %[2]s
}
vrrp_check chk_mysql {
    plugin mysql
    interval 1
    timeout 1
    rise 2
    fall 2
    weight 0                  # FAULT while the database is down: the VIP leaves this node
    params {
        address 127.0.0.1:3306
        user vigil_monitor
        password monitorpw    # the example uses password_file; inline keeps the demo short
        expect_writable yes
    }
}
vrrp_instance VI_MYSQL {
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    priority %[3]d
    advert_int 1
    track_script {
        chk_mysql
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
`

func runMySQL(bin, plugins string) error {
	if err := mariadb.Available(); err != nil {
		return fmt.Errorf("%w; the MySQL demo needs Debian's mariadb-server", err)
	}
	// The driver logs each connection the failover breaks; the demo says what happens itself.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	plugins, err := filepath.Abs(plugins)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(plugins, "vigil-check-mysql")); err != nil {
		return fmt.Errorf("no vigil-check-mysql in %s: run make build first", plugins)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "vigil-demo-mysql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("building a lab: two database nodes and a client on a bridge, each in its own network namespace")
	l, err := lab.New(ctx, "dmy", 3, dir)
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: stopping vigil and the databases, deleting the namespaces")
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}()
	n1, n2, client := l.Nodes[0], l.Nodes[1], l.Nodes[2]

	var dbs []*mariadb.Server
	defer func() {
		for _, db := range dbs {
			db.Stop()
		}
	}()
	for i, nd := range []*lab.Node{n1, n2} {
		opts := mariadb.PairMember(i, nd.NS, nd.Addr4.Addr().String())
		opts.Dir = dir
		db, err := mariadb.Start(ctx, opts)
		if err != nil {
			return fmt.Errorf("MariaDB on %s: %w", nd.Name, err)
		}
		dbs = append(dbs, db)
		step("started MariaDB on %s (%s:3306, pid %d)", nd.Name, nd.Addr4.Addr(), db.PID())
	}
	err = mariadb.MasterMaster(ctx, dbs[0], dbs[1],
		mariadb.User{Name: "vigil_monitor", Password: "monitorpw", Privileges: "REPLICATION CLIENT"},
		mariadb.User{Name: "app", Password: "apppw", Privileges: "ALL PRIVILEGES"})
	if err != nil {
		return err
	}
	if err := dbs[0].Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.orders (id INT PRIMARY KEY, placed VARCHAR(32))"); err != nil {
		return err
	}
	step("master-master replication running (semi-synchronous: a commit waits until the peer has it)")

	for i, nd := range []*lab.Node{n1, n2} {
		conf := filepath.Join(dir, nd.Name+".conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, mysqlNodeConf, nd.Name, plugins, 150-50*i), 0o644); err != nil {
			return err
		}
		if _, err := nd.Start(bin, "-f", conf, "-p", filepath.Join(dir, nd.Name+".pid"), "--control", filepath.Join(dir, nd.Name+".sock")); err != nil {
			return err
		}
		step("started vigil on %s with priority %d, tracking its database through the mysql plugin", nd.Name, 150-50*i)
	}
	holder := func() string {
		for _, nd := range []*lab.Node{n1, n2} {
			if ok, _ := nd.HasAddr(ctx, vip); ok {
				return nd.Name
			}
		}
		return "nobody"
	}
	waitHolder := func(want string, limit time.Duration) (time.Duration, error) {
		start := time.Now()
		for time.Since(start) < limit {
			if holder() == want {
				return time.Since(start), nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, fmt.Errorf("after %s the VIP is held by %s, expected %s", limit, holder(), want)
	}
	if _, err := waitHolder("n1", 20*time.Second); err != nil {
		return err
	}
	step("election done: n1 holds %s", vip)

	w, err := newOrderWriter(client)
	if err != nil {
		return err
	}
	defer w.stop()
	time.Sleep(2 * time.Second)
	step("the client on %s has placed %d orders through %s:3306", client.Name, w.count(), vip)

	step("killing MariaDB on n1 (SIGKILL)")
	killed := time.Now()
	dbs[0].Kill()
	d, err := waitHolder("n2", 20*time.Second)
	if err != nil {
		return err
	}
	step("failover: n2 holds %s, %s after the database died (2 failed checks 1 s apart, then the handover)", vip, d.Round(time.Millisecond))
	before := w.count()
	time.Sleep(2 * time.Second)
	if w.count() <= before {
		return fmt.Errorf("no order placed through the VIP in the 2 s after the failover")
	}
	step("orders go on through the VIP on n2: %d placed, the last failed write %s after the kill", w.count(), w.lastFailure().Sub(killed).Round(time.Millisecond))
	acked := w.stop()
	missing, err := missingOn(ctx, dbs[1], acked)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of the %d acknowledged orders are missing on n2: %v", len(missing), len(acked), missing)
	}
	step("all %d orders the client saw acknowledged are on n2: none lost", len(acked))
	step("demo finished")
	return nil
}

// missingOn returns the ids that db does not have, after giving its replication a few
// seconds to apply what it received.
func missingOn(ctx context.Context, db *mariadb.Server, ids []int) ([]int, error) {
	conn, err := db.Root()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var missing []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		have := map[int]bool{}
		rows, err := conn.QueryContext(ctx, "SELECT id FROM app.orders")
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int
			if rows.Scan(&id) == nil {
				have[id] = true
			}
		}
		rows.Close()
		missing = missing[:0]
		for _, id := range ids {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing, nil
		}
	}
}

// orderWriter places an order through the VIP every 50 ms from the client node.
type orderWriter struct {
	db   *sql.DB
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu     sync.Mutex
	acked  []int // ids of the orders the server acknowledged
	failed time.Time
}

func newOrderWriter(client *lab.Node) (*orderWriter, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "app", "apppw", "tcp", net.JoinHostPort(vip.String(), "3306")
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 500*time.Millisecond, time.Second, time.Second
	cfg.DialFunc = client.DialContext
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	w := &orderWriter{db: sql.OpenDB(conn), quit: make(chan struct{}), done: make(chan struct{})}
	w.db.SetMaxOpenConns(1)
	go func() {
		defer close(w.done)
		for id := 1; ; id++ {
			select {
			case <-w.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := w.db.ExecContext(ctx, "INSERT INTO app.orders VALUES (?, ?)", id, time.Now().Format(time.StampMilli))
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
			} else { // the id is never reused: the insert may have committed anyway
				w.failed = time.Now()
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *orderWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *orderWriter) lastFailure() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// stop ends the writes and returns the acknowledged ids.
func (w *orderWriter) stop() []int {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		w.db.Close()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.acked...)
}
