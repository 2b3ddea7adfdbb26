package supervisor_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

// The first user story end to end: two MariaDB servers in master-master replication, each
// node's vigil tracking its own database through the mysql check plugin, a client writing
// through the VIP from a third node. When the master's database dies or its link is cut, the
// VIP moves to the peer in time, writes resume through it, and no acknowledged write is
// missing on the survivor.

// The check as configs/mysql-master-master has it, with short intervals for the test.
const (
	mysqlInterval = 200 * time.Millisecond
	mysqlFall     = 2
)

// mysqlPair starts the lab: n1 (priority 150) and n2 (100) each with a MariaDB replicating
// from the other, semi-synchronously (mariadb.PairMember), and vigil tracking it; n3 is the
// client.
func mysqlPair(t *testing.T) (context.Context, []*node, []*mariadb.Server) {
	if err := mariadb.Available(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, n := newLab(t, 3)
	plugins := buildPlugin(t, n[0].dir, "vigil-check-mysql", "github.com/vigil-ha/vigil/plugins/vigil-check-mysql")
	var dbs []*mariadb.Server
	for i, nd := range n[:2] {
		opts := mariadb.PairMember(i, nd.NS, nd.Addr4.Addr().String())
		opts.Dir, opts.Log = t.TempDir(), t.Logf
		dbs = append(dbs, mariadb.StartT(t, opts))
	}
	err := mariadb.MasterMaster(ctx, dbs[0], dbs[1],
		mariadb.User{Name: "monitor", Password: "monpw", Privileges: "REPLICATION CLIENT"},
		mariadb.User{Name: "app", Password: "apppw", Privileges: "ALL PRIVILEGES"})
	if err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.w (id INT PRIMARY KEY, at VARCHAR(32))"); err != nil {
		t.Fatal(err)
	}
	if err := dbs[1].WaitCaughtUp(ctx, dbs[0]); err != nil {
		t.Fatal(err)
	}
	check := fmt.Sprintf(`global_defs {
    plugin_dir %s
}
vrrp_check chk {
    plugin mysql
    interval %g
    timeout 0.5
    fall %d
    rise 2
    weight 0
    params {
        address 127.0.0.1:3306
        user monitor
        password monpw
        expect_writable yes
    }
}
`, plugins, mysqlInterval.Seconds(), mysqlFall)
	n[0].start(t, conf(150, check))
	n[1].start(t, conf(100, check))
	waitFor(t, 20*time.Second, "n1 holds the VIP with its database up", func() bool {
		if !n[0].holds(t, ctx) || n[1].holds(t, ctx) {
			return false
		}
		st, err := n[0].tryStatus()
		return err == nil && len(st.Checks) == 1 && st.Checks[0].Up
	})
	return ctx, n, dbs
}

// writer inserts rows with increasing ids through the VIP from the client's namespace and
// remembers the ones the server acknowledged.
type writer struct {
	db   *sql.DB
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	acked []int
	at    []time.Time // when each acknowledgement came
}

func startWriter(t *testing.T, client *node) *writer {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "app", "apppw", "tcp", net.JoinHostPort(vip.String(), "3306")
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 500*time.Millisecond, time.Second, time.Second
	cfg.DialFunc = client.DialContext
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{db: sql.OpenDB(conn), stop: make(chan struct{}), done: make(chan struct{})}
	w.db.SetMaxOpenConns(1)
	go func() {
		defer close(w.done)
		for id := 1; ; id++ {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := w.db.ExecContext(ctx, "INSERT INTO app.w (id, at) VALUES (?, ?)", id, time.Now().Format(time.StampMicro))
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, id)
				w.at = append(w.at, time.Now())
				w.mu.Unlock()
			}
			// An id whose insert failed is never reused: it may have been committed anyway.
		}
	}()
	t.Cleanup(func() { w.close() })
	return w
}

func (w *writer) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
		<-w.done
		w.db.Close()
	}
}

// ackedAfter is how many writes were acknowledged after t.
func (w *writer) ackedAfter(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, at := range w.at {
		if at.After(t) {
			n++
		}
	}
	return n
}

// checkNoLoss asserts that every acknowledged write is on the survivor, once it has applied
// what it received.
func checkNoLoss(t *testing.T, ctx context.Context, w *writer, survivor *mariadb.Server) {
	t.Helper()
	w.close()
	w.mu.Lock()
	acked := append([]int(nil), w.acked...)
	w.mu.Unlock()
	var missing []int
	waitFor(t, 15*time.Second, "the survivor has applied every acknowledged write", func() bool {
		db, err := survivor.Root()
		if err != nil {
			return false
		}
		defer db.Close()
		have := map[int]bool{}
		rows, err := db.QueryContext(ctx, "SELECT id FROM app.w")
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			if rows.Scan(&id) == nil {
				have[id] = true
			}
		}
		missing = missing[:0]
		for _, id := range acked {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged writes missing on the survivor: %v", len(missing), len(acked), missing)
	}
	t.Logf("%d acknowledged writes, all on the survivor", len(acked))
}

// TestMySQLFailoverOnDatabaseDeath: kill the master's mariadbd. Its check fails after fall
// probes, its instance goes FAULT (weight 0) and resigns, and n2 takes the VIP within
// fall × interval + Master_Down_Interval (in fact sooner: a resigning master sends priority
// 0, and the backup waits only its skew).
func TestMySQLFailoverOnDatabaseDeath(t *testing.T) {
	ctx, n, dbs := mysqlPair(t)
	w := startWriter(t, n[2])
	waitFor(t, 10*time.Second, "writes through the VIP", func() bool { return w.ackedAfter(time.Time{}) >= 10 })

	killed := time.Now()
	dbs[0].Kill()
	waitFor(t, 10*time.Second, "n2 takes the VIP", func() bool { return n[1].holds(t, ctx) && !n[0].holds(t, ctx) })
	moved := time.Since(killed)
	// How it moved, not how fast (a loaded machine stretches any bound): n1's check took its
	// instance to FAULT, which resigned it, and n2 took over on that priority 0 advert,
	// without waiting for a Master_Down_Timer.
	waitFor(t, 10*time.Second, "n1's instance in FAULT by its check", func() bool {
		return strings.Contains(n[0].proc.Output(), "to=FAULT")
	})
	if !strings.Contains(n[1].proc.Output(), `to=MASTER reason="master resigned (priority 0 advert)"`) {
		t.Errorf("n2 did not take over on n1's resignation:\n%s", n[1].proc.Output())
	}
	t.Logf("VIP on n2 %v after mariadbd was killed on n1", moved.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "writes resume through the VIP", func() bool { return w.ackedAfter(killed.Add(moved)) >= 10 })
	checkNoLoss(t, ctx, w, dbs[1])
}

// TestMySQLFailoverOnLinkCut: isolate the master's link. n2 stops hearing adverts and takes
// over after Master_Down_Interval; the client, which cannot reach n1 either, writes to n2.
func TestMySQLFailoverOnLinkCut(t *testing.T) {
	ctx, n, dbs := mysqlPair(t)
	w := startWriter(t, n[2])
	waitFor(t, 10*time.Second, "writes through the VIP", func() bool { return w.ackedAfter(time.Time{}) >= 10 })

	cut := time.Now()
	if err := n[0].Cut(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n2 takes the VIP", func() bool { return n[1].holds(t, ctx) })
	moved := time.Since(cut)
	t.Logf("VIP on n2 %v after the cut", moved.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "writes resume through the VIP", func() bool { return w.ackedAfter(cut.Add(moved)) >= 10 })
	// n2 took over because n1's adverts stopped (nothing else tells it of the cut).
	if !strings.Contains(n[1].proc.Output(), `to=MASTER reason="master down timer expired"`) {
		t.Errorf("n2 did not take over on its Master_Down_Timer:\n%s", n[1].proc.Output())
	}
	checkNoLoss(t, ctx, w, dbs[1])
}
