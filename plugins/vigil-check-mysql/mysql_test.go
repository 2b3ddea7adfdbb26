package main

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/mariadb"
	"github.com/vigil-ha/vigil/sdk/check"
	"github.com/vigil-ha/vigil/sdk/sdktest"
)

// The tests run against real MariaDB servers that they start on 127.0.0.1 (internal/lab/mariadb,
// Debian's mariadb-server); without it they skip.

const (
	monitorUser = "vigil_monitor"
	monitorPass = "m0n-pass"
)

// params turns "key value..." lines into a params block.
func params(lines ...string) []check.Param {
	var ps []check.Param
	for _, l := range lines {
		f := strings.Fields(l)
		ps = append(ps, check.Param{Key: f[0], Values: f[1:]})
	}
	return ps
}

// probeOnce configures name with ps and runs one probe with a deadline of timeout.
func probeOnce(t *testing.T, c check.Checker, name string, timeout time.Duration, ps ...string) check.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Configure(ctx, check.ConfigureRequest{Name: name, Params: params(ps...)}); err != nil {
		t.Fatalf("Configure(%q): %v", ps, err)
	}
	return checkOnce(t, c, name, timeout)
}

// checkOnce probes name with timeout as the probe's deadline. The plugin answers a little
// before the deadline (main.go keeps a margin of up to 50 ms) so that vigil reads what timed
// out; on a loaded machine the answer can still come after it, and the call then ends with
// the bare deadline error. That says nothing about the plugin, so the probe is tried again
// (a few times) rather than failing the test on the machine's load.
func checkOnce(t *testing.T, c check.Checker, name string, timeout time.Duration) check.CheckResponse {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		resp, err := c.Check(ctx, check.CheckRequest{Name: name})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && attempt < 5 {
			t.Logf("Check(%s) attempt %d: the answer came after the %s deadline; trying again", name, attempt, timeout)
			continue
		}
		if err != nil {
			t.Fatalf("Check(%s): %v", name, err)
		}
		return resp
	}
}

func expect(t *testing.T, resp check.CheckResponse, status check.Status, pattern string) {
	t.Helper()
	if resp.Status != status || !regexp.MustCompile(pattern).MatchString(resp.Message) {
		t.Errorf("got %s %q; want %s matching %q", resp.Status, resp.Message, status, pattern)
	}
}

// eventually probes name every 100 ms, for at most 5 s, until it answers status with a
// message matching pattern: for server states that change asynchronously.
func eventually(t *testing.T, c check.Checker, name string, status check.Status, pattern string) {
	t.Helper()
	var resp check.CheckResponse
	for range 50 {
		resp = checkOnce(t, c, name, 5*time.Second)
		if resp.Status == status && regexp.MustCompile(pattern).MatchString(resp.Message) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	expect(t, resp, status, pattern)
}

// silentListener accepts connections on loopback and never says a word: a server that hangs.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startServer(t *testing.T, opts mariadb.Options) *mariadb.Server {
	t.Helper()
	s := mariadb.StartT(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// SLAVE MONITOR: SHOW SLAVE STATUS on MariaDB 10.5.9 and later.
	if err := s.CreateUser(ctx, monitorUser, monitorPass, "SLAVE MONITOR"); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProbe(t *testing.T) {
	s := startServer(t, mariadb.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.CreateUser(ctx, "nopriv", "nopriv-pass", ""); err != nil {
		t.Fatal(err)
	}
	login := []string{"address " + s.Addr(), "user " + monitorUser, "password " + monitorPass}
	with := func(extra ...string) []string { return append(append([]string{}, login...), extra...) }

	checkers := []struct {
		name string
		c    check.Checker
	}{
		{"in-process", sdktest.ServeCheck(t, newMySQL())},
		{"binary", sdktest.LaunchCheck(t, sdktest.Build(t, "."))},
	}
	for _, ck := range checkers {
		t.Run(ck.name, func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				params  []string
				timeout time.Duration
				status  check.Status
				message string
			}{
				{"ok", login, 0, check.OK, `^query ok$`},
				{"ok over the socket", []string{"socket " + s.Socket, "user " + monitorUser, "password " + monitorPass}, 0, check.OK, `^query ok$`},
				{"writable", with("expect_writable yes"), 0, check.OK, `^writable$`},
				{"read_only expected", with("expect_read_only yes"), 0, check.Critical, `^read_only is OFF but expect_read_only$`},
				{"custom query", with("query SELECT COUNT(*) FROM information_schema.PROCESSLIST"), 0, check.OK, `^query ok$`},
				{"failing query", with("query SELECT * FROM nosuch.t"), 0, check.Critical, `running "SELECT \* FROM nosuch.t": .*\(error 1\d\d\d\)$`},
				{"bad password", []string{"address " + s.Addr(), "user " + monitorUser, "password wrong"}, 0, check.Critical,
					`^127\.0\.0\.1:\d+: connecting: Access denied for user 'vigil_monitor'@'127\.0\.0\.1' \(using password: YES\) \(error 1045\)$`},
				{"unknown user", []string{"address " + s.Addr(), "user nobody", "password x"}, 0, check.Critical, `Access denied for user 'nobody'.*\(error 1045\)$`},
				{"unknown database", with("database nosuchdb"), 0, check.Critical, `connecting: Access denied for user 'vigil_monitor'@'%' to database 'nosuchdb' \(error 1044\)$`},
				{"refused", []string{"address " + closedPort(t), "user x", "password x"}, 0, check.Critical, `^127\.0\.0\.1:\d+: connection refused$`},
				{"refused with connect_timeout", []string{"address " + closedPort(t), "user x", "password x", "connect_timeout 1", "read_timeout 1"}, 0, check.Critical, `^127\.0\.0\.1:\d+: connection refused$`},
				{"failing query with read_timeout", with("query SELECT * FROM nosuch.t", "read_timeout 1"), 0, check.Critical, `\(error 1\d\d\d\)$`},
				{"no socket", []string{"socket " + filepath.Join(t.TempDir(), "none.sock"), "user x", "password x"}, 0, check.Critical, `^socket .*none\.sock: no such socket`},
				{"timeout", []string{"address " + silentListener(t), "user x", "password x"}, 500 * time.Millisecond, check.Critical, `^127\.0\.0\.1:\d+: no answer within 4[2-5]0ms while connecting$`},
				{"connect_timeout", []string{"address " + silentListener(t), "user x", "password x", "connect_timeout 0.2"}, 2 * time.Second, check.Critical, `no answer within 200ms while connecting$`},
				{"read_timeout", with("query SELECT SLEEP(3)", "read_timeout 0.2"), 2 * time.Second, check.Critical, `no answer within .* while running "SELECT SLEEP\(3\)"$`},
				{"query timeout", with("query SELECT SLEEP(3)"), 500 * time.Millisecond, check.Critical, `no answer within 4[2-5]0ms while running "SELECT SLEEP\(3\)"$`},
				{"not a replica", with("expect_replication yes"), 0, check.Critical, `^not a replica: replication status is empty$`},
				{"lag of a non-replica", with("max_replication_lag 30"), 0, check.Critical, `^not a replica`},
				{"no privilege for replication status", []string{"address " + s.Addr(), "user nopriv", "password nopriv-pass", "expect_replication yes"}, 0, check.Unknown,
					`^cannot read replication status: Access denied; you need .*SLAVE MONITOR.* \(error 1227\); GRANT SLAVE MONITOR`},
				{"not galera", with("expect_galera yes"), 0, check.Critical, `^not a Galera node: no wsrep provider is loaded \(wsrep_ready OFF\)$`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					timeout := tc.timeout
					if timeout == 0 {
						timeout = 5 * time.Second
					}
					// The message says the plugin kept its deadline ("no answer within
					// 450ms"); how long the call took is the client's own deadline plus the
					// machine's load, not something to assert.
					resp := probeOnce(t, ck.c, tc.name, timeout, tc.params...)
					expect(t, resp, tc.status, tc.message)
					if _, ok := resp.Metrics["probe_seconds"]; !ok {
						t.Errorf("no probe_seconds metric: %v", resp.Metrics)
					}
				})
			}

			// read_only flips: the same check sees it on its next probe.
			resp := probeOnce(t, ck.c, "ro", 5*time.Second, with("expect_writable yes")...)
			expect(t, resp, check.OK, `^writable$`)
			if err := s.SetReadOnly(ctx, true); err != nil {
				t.Fatal(err)
			}
			expect(t, checkOnce(t, ck.c, "ro", 5*time.Second), check.Critical, `^read_only is ON but expect_writable$`)
			expect(t, probeOnce(t, ck.c, "ro2", 5*time.Second, with("expect_read_only yes")...), check.OK, `^read_only ON$`)
			if err := s.SetReadOnly(ctx, false); err != nil {
				t.Fatal(err)
			}
			expect(t, checkOnce(t, ck.c, "ro", 5*time.Second), check.OK, `^writable$`)
		})
	}
}

// TestConnections counts the check's connections on the server: one, kept between probes,
// replaced on a reconfigure, re-established after the server dropped it or restarted.
func TestConnections(t *testing.T) {
	s := startServer(t, mariadb.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	count := func() int {
		t.Helper()
		n, err := s.Connections(ctx, monitorUser)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	connID := func() string {
		t.Helper()
		row, err := s.QueryRow(ctx, "SELECT GROUP_CONCAT(ID) AS ids FROM information_schema.PROCESSLIST WHERE USER = ?", monitorUser)
		if err != nil {
			t.Fatal(err)
		}
		return row["ids"]
	}
	m := newMySQL()
	c := sdktest.ServeCheck(t, m)
	login := []string{"address " + s.Addr(), "user " + monitorUser, "password " + monitorPass, "expect_writable yes"}

	expect(t, probeOnce(t, c, "chk", 5*time.Second, login...), check.OK, `^writable$`)
	first := connID()
	for range 50 {
		expect(t, checkOnce(t, c, "chk", 5*time.Second), check.OK, `^writable$`)
	}
	if n, id := count(), connID(); n != 1 || id != first {
		t.Errorf("after 51 probes: %d connections (ids %s); want 1, the first one (%s)", n, id, first)
	}

	// The same params again (a reload, a replay after a restart) keep the connection.
	expect(t, probeOnce(t, c, "chk", 5*time.Second, login...), check.OK, `^writable$`)
	if n, id := count(), connID(); n != 1 || id != first {
		t.Errorf("after reconfiguring the same params: %d connections (ids %s); want the first one (%s)", n, id, first)
	}

	// New params: a new connection, and the old one closed.
	expect(t, probeOnce(t, c, "chk", 5*time.Second, append(login, "query SELECT 2")...), check.OK, `^writable$`)
	waitCount(t, s, 1)
	if id := connID(); id == first {
		t.Errorf("still connection %s after new params", id)
	}

	// Failures leave nothing behind: a failed query keeps the (healthy) connection, a bad
	// password never gets one.
	expect(t, probeOnce(t, c, "chk", 5*time.Second, append(login, "query SELECT nosuchcolumn")...), check.Critical, `error 1054`)
	expect(t, probeOnce(t, c, "bad", 5*time.Second, "address "+s.Addr(), "user "+monitorUser, "password wrong"), check.Critical, `error 1045`)
	for range 10 {
		checkOnce(t, c, "chk", 5*time.Second)
		checkOnce(t, c, "bad", 5*time.Second)
	}
	waitCount(t, s, 1)
	expect(t, probeOnce(t, c, "chk", 5*time.Second, login...), check.OK, `^writable$`)
	waitCount(t, s, 1)

	// Two checks of the same server: one connection each.
	expect(t, probeOnce(t, c, "other", 5*time.Second, login...), check.OK, `^writable$`)
	waitCount(t, s, 2)

	// The server drops the connection: the next probe reconnects instead of failing.
	if err := s.Exec(ctx, "KILL CONNECTION "+connID()[:strings.IndexByte(connID()+",", ',')]); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		expect(t, checkOnce(t, c, "chk", 5*time.Second), check.OK, `^writable$`)
		expect(t, checkOnce(t, c, "other", 5*time.Second), check.OK, `^writable$`)
	}
	waitCount(t, s, 2)

	// The server crashes and comes back: probes fail while it is down, then recover.
	s.Kill()
	expect(t, checkOnce(t, c, "chk", 5*time.Second), check.Critical, `connection refused|connection lost`)
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"chk", "other"} {
		expect(t, checkOnce(t, c, name, 5*time.Second), check.OK, `^writable$`)
	}
	for range 10 {
		checkOnce(t, c, "chk", 5*time.Second)
		checkOnce(t, c, "other", 5*time.Second)
	}
	waitCount(t, s, 2)

	// Timeouts: the cancelled connection is dropped by the driver, and later probes use one
	// new connection, not one per timeout.
	expect(t, probeOnce(t, c, "slow", time.Second, append(login, "query SELECT SLEEP(2)")...), check.Critical, `no answer within`)
	for range 3 {
		checkOnce(t, c, "slow", time.Second)
	}
	expect(t, probeOnce(t, c, "slow", 5*time.Second, login...), check.OK, `^writable$`)
	// The abandoned SLEEPs end on the server within two seconds.
	waitCount(t, s, 3)
}

// waitCount waits until the server holds n connections of the monitor user: a connection the
// client closed disappears from PROCESSLIST a moment later.
func waitCount(t *testing.T, s *mariadb.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got int
	var err error
	for ctx.Err() == nil {
		got, err = s.Connections(ctx, monitorUser)
		if err == nil && got == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the server holds %d connections of %s (%v); want %d", got, monitorUser, err, n)
}

// TestReplication runs the check against a replica whose replication the test stops,
// starts and holds back.
func TestReplication(t *testing.T) {
	src := startServer(t, mariadb.Options{ServerID: 1, LogBin: true})
	rep := startServer(t, mariadb.Options{ServerID: 2, LogBin: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := src.CreateReplicationUser(ctx, "repl", "repl-pass"); err != nil {
		t.Fatal(err)
	}
	if err := rep.ReplicateFrom(ctx, mariadb.SourceOf(src, "repl", "repl-pass")); err != nil {
		t.Fatal(err)
	}
	if err := rep.WaitReplicating(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)", "INSERT INTO app.t (v) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := rep.WaitCaughtUp(ctx, src); err != nil {
		t.Fatal(err)
	}

	c := sdktest.ServeCheck(t, newMySQL())
	login := []string{"address " + rep.Addr(), "user " + monitorUser, "password " + monitorPass}
	with := func(extra ...string) []string { return append(append([]string{}, login...), extra...) }
	configure := func(name string, ps []string) {
		t.Helper()
		if _, err := c.Configure(ctx, check.ConfigureRequest{Name: name, Params: params(ps...)}); err != nil {
			t.Fatal(err)
		}
	}
	configure("threads", with("expect_replication yes"))
	configure("lag", with("max_replication_lag 30"))
	configure("both", with("expect_writable yes", "expect_replication yes", "max_replication_lag 30"))
	configure("weighted", with("max_replication_lag 30", "lag_weight 50"))
	weight := func(r check.CheckResponse, want string) {
		t.Helper()
		if r.Weight == nil {
			t.Errorf("%s %q: no weight; want %s", r.Status, r.Message, want)
			return
		}
		lag := r.Metrics["replication_lag_seconds"]
		if ok, _ := regexp.MatchString("^"+want+"$", strconv.Itoa(*r.Weight)); !ok {
			t.Errorf("weight %d at lag %v; want %s", *r.Weight, lag, want)
		}
	}

	// Healthy: threads running, lag under the bound. Not necessarily 0: right after the IO
	// thread reconnects, MariaDB reports the age of the last applied event for a moment.
	healthy := func() {
		t.Helper()
		expect(t, checkOnce(t, c, "threads", 5*time.Second), check.OK, `^replica lag \d+s$`)
		expect(t, checkOnce(t, c, "lag", 5*time.Second), check.OK, `^replica lag \d+s$`)
		r := checkOnce(t, c, "both", 5*time.Second)
		expect(t, r, check.OK, `^writable, replica lag \d+s$`)
		if lag, ok := r.Metrics["replication_lag_seconds"]; !ok || lag > 30 {
			t.Errorf("replication_lag_seconds = %v, %v; want 0..30", lag, ok)
		}
		if r.Weight != nil {
			t.Errorf("weight %d without lag_weight", *r.Weight)
		}
		// lag_weight: 0 down to -50 at the 30 s bound, in steps of 50/30 per second.
		r = checkOnce(t, c, "weighted", 5*time.Second)
		expect(t, r, check.OK, `^replica lag \d+s$`)
		if r.Weight != nil && float64(*r.Weight) != -math.Round(r.Metrics["replication_lag_seconds"]*50/30) {
			t.Errorf("weight %d at lag %v; want -round(lag*50/30)", *r.Weight, r.Metrics["replication_lag_seconds"])
		}
		weight(r, `0|-\d+`)
	}
	healthy()

	t.Run("IO thread stopped", func(t *testing.T) {
		if err := rep.StopReplica(ctx, mariadb.IOThread); err != nil {
			t.Fatal(err)
		}
		expect(t, checkOnce(t, c, "threads", 5*time.Second), check.Critical, `^replication IO thread stopped$`)
		// With the IO thread stopped MariaDB reports no lag (NULL): a lag bound fails.
		expect(t, checkOnce(t, c, "lag", 5*time.Second), check.Critical, `^replication lag unknown \(NULL\): IO thread No, SQL thread Yes$`)
		if err := rep.StartReplica(ctx, mariadb.IOThread); err != nil {
			t.Fatal(err)
		}
		if err := rep.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		healthy()
	})

	t.Run("SQL thread stopped", func(t *testing.T) {
		if err := rep.StopReplica(ctx, mariadb.SQLThread); err != nil {
			t.Fatal(err)
		}
		expect(t, checkOnce(t, c, "threads", 5*time.Second), check.Critical, `^replication SQL thread stopped$`)
		expect(t, checkOnce(t, c, "lag", 5*time.Second), check.Critical, `^replication lag unknown \(NULL\): IO thread Yes, SQL thread No$`)
		r := checkOnce(t, c, "weighted", 5*time.Second)
		expect(t, r, check.Critical, `^replication lag unknown`)
		weight(r, "-50")
		if err := rep.StartReplica(ctx, mariadb.SQLThread); err != nil {
			t.Fatal(err)
		}
		if err := rep.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		healthy()
	})

	t.Run("SQL thread failed", func(t *testing.T) {
		// A row that exists on the replica only: the source's insert of the same key stops
		// the SQL thread with a duplicate-key error, which the message carries.
		if err := rep.Exec(ctx, "SET SESSION sql_log_bin = 0", "INSERT INTO app.t (id, v) VALUES (100, 0)"); err != nil {
			t.Fatal(err)
		}
		if err := src.Exec(ctx, "INSERT INTO app.t (id, v) VALUES (100, 1)"); err != nil {
			t.Fatal(err)
		}
		eventually(t, c, "threads", check.Critical, `^replication SQL thread stopped: .*Duplicate entry '100'`)
		// Repair as a DBA would: drop the replica's own row and let the SQL thread redo it.
		if err := rep.Exec(ctx, "SET SESSION sql_log_bin = 0", "DELETE FROM app.t WHERE id = 100", "START SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
		if err := rep.WaitReplicating(ctx); err != nil {
			t.Fatal(err)
		}
		if err := rep.WaitCaughtUp(ctx, src); err != nil {
			t.Fatal(err)
		}
		healthy()
	})

	t.Run("lag above the bound", func(t *testing.T) {
		// Provoking lag deterministically: the replica's table is locked, so its SQL thread
		// waits on the next event; that event carries a timestamp an hour old (the source's
		// session sets it), so Seconds_Behind_Master reads about 3600 at once instead of
		// growing by a second per second. The threads keep running: only the bound fails.
		db, err := rep.Root()
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		lock, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if _, err := lock.ExecContext(ctx, "LOCK TABLES app.t WRITE"); err != nil {
			t.Fatal(err)
		}
		if err := src.Exec(ctx, "SET timestamp = UNIX_TIMESTAMP() - 3600", "INSERT INTO app.t (v) VALUES (2)"); err != nil {
			t.Fatal(err)
		}
		lagged := false
		for range 100 {
			if lag, err := rep.SecondsBehind(ctx); err == nil && lag > 3000 {
				lagged = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !lagged {
			st, _ := rep.ReplicaStatus(ctx)
			t.Fatalf("the replica does not lag: %v", st)
		}
		r := checkOnce(t, c, "lag", 5*time.Second)
		expect(t, r, check.Critical, `^replication lag 36\d\ds > 30s$`)
		if lag := r.Metrics["replication_lag_seconds"]; lag < 3600 {
			t.Errorf("replication_lag_seconds = %v; want about 3600", lag)
		}
		expect(t, checkOnce(t, c, "both", 5*time.Second), check.Critical, `^replication lag 36\d\ds > 30s$`)
		r = checkOnce(t, c, "weighted", 5*time.Second)
		expect(t, r, check.Critical, `^replication lag 36\d\ds > 30s$`)
		weight(r, "-50")
		// expect_replication alone does not bound the lag.
		expect(t, checkOnce(t, c, "threads", 5*time.Second), check.OK, `^replica lag 36\d\ds$`)

		if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			t.Fatal(err)
		}
		if err := rep.WaitCaughtUp(ctx, src); err != nil {
			t.Fatal(err)
		}
		healthy()
	})
}

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	private := writeFile("private.pw", "s3cret\nignored second line\n", 0o600)
	groupRead := writeFile("group.pw", "s3cret\n", 0o640)
	worldRead := writeFile("world.pw", "s3cret\n", 0o644)
	empty := writeFile("empty.pw", "\n", 0o600)
	notPEM := writeFile("ca.pem", "not a certificate\n", 0o644)

	c := sdktest.ServeCheck(t, newMySQL())
	for _, tc := range []struct {
		params  []string
		err     string // "" accepts
		warning string
	}{
		{[]string{"user u", "password_file " + private}, "", ""},
		{[]string{"user u", "password_file " + groupRead}, "", "readable by group"},
		{[]string{"user u", "password_file " + worldRead}, "readable by everyone (mode 0644): chmod o-rwx", ""},
		{[]string{"user u", "password_file " + empty}, "the first line is empty", ""},
		{[]string{"user u", "password_file " + filepath.Join(dir, "missing")}, "password_file: stat ", ""},
		{[]string{"user u", "password x", "password_file " + private}, "password and password_file: give one of them", ""},
		{[]string{"address 127.0.0.1:3306"}, "user is required", ""},
		{[]string{"user u", "address db.example.com"}, "", ""},
		{[]string{"user u", "address 127.0.0.1:99999"}, `port "99999" is not 1-65535`, ""},
		{[]string{"user u", "address :3306"}, `address ":3306": want HOST:PORT`, ""},
		{[]string{"user u", "address 127.0.0.1:3306", "socket /run/mysqld/mysqld.sock"}, "address and socket: give one of them", ""},
		{[]string{"user u", "user v"}, "user is given twice", ""},
		{[]string{"user u", "tls maybe"}, `tls "maybe": use no, yes, skip-verify or preferred`, ""},
		{[]string{"user u", "ca_file " + notPEM}, "need tls yes", ""},
		{[]string{"user u", "tls skip-verify", "ca_file " + notPEM}, "ca_file needs tls yes", ""},
		{[]string{"user u", "tls yes", "ca_file " + notPEM}, "ca_file: no PEM certificate in it", ""},
		{[]string{"user u", "tls yes", "cert_file " + notPEM}, "cert_file and key_file go together", ""},
		{[]string{"user u", "tls yes", "cert_file " + notPEM, "key_file " + notPEM}, "cert_file and key_file: tls:", ""},
		{[]string{"user u", "tls preferred"}, "", ""},
		{[]string{"user u", "connect_timeout soon"}, `connect_timeout: "soon": want seconds`, ""},
		{[]string{"user u", "read_timeout -1"}, `read_timeout: "-1" is negative`, ""},
		{[]string{"user u", "connect_timeout 500ms", "read_timeout 2"}, "", ""},
		{[]string{"user u", "max_replication_lag 30", "expect_replication yes"}, "", ""},
		{[]string{"user u", "max_replication_lag 30", "lag_weight 50"}, "", ""},
		{[]string{"user u", "lag_weight 50"}, "lag_weight needs max_replication_lag", ""},
		{[]string{"user u", "max_replication_lag 30", "lag_weight 0"}, `lag_weight: "0" is not 1-253`, ""},
		{[]string{"user u", "max_replication_lag 30", "lag_weight 254"}, `lag_weight: "254" is not 1-253`, ""},
		{[]string{"user u", "expect_writable maybe"}, `expect_writable: "maybe" is not yes or no`, ""},
		{[]string{"user u", "expect_writable", "expect_read_only yes"}, "a server cannot be both", ""},
		{[]string{"user u", "query"}, "query is empty", ""},
		{[]string{"user u", "adress 127.0.0.1"}, `unknown param "adress" (known: address, socket, user`, ""},
	} {
		for _, validateOnly := range []bool{true, false} {
			resp, err := c.Configure(context.Background(), check.ConfigureRequest{Name: "chk", Params: params(tc.params...), ValidateOnly: validateOnly})
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Configure(%q) = %v; want accepted", tc.params, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Configure(%q) = %v; want an error with %q", tc.params, err, tc.err)
			case tc.warning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.warning)):
				t.Errorf("Configure(%q) warnings %q; want one with %q", tc.params, resp.Warnings, tc.warning)
			case tc.warning == "" && len(resp.Warnings) != 0:
				t.Errorf("Configure(%q) warnings %q; want none", tc.params, resp.Warnings)
			}
		}
	}
	if _, err := c.Check(context.Background(), check.CheckRequest{Name: "other"}); err == nil {
		t.Error("Check of an unconfigured name succeeded")
	}
}

func TestPasswordFileLogsIn(t *testing.T) {
	s := startServer(t, mariadb.Options{})
	pw := filepath.Join(t.TempDir(), "mysql.pw")
	if err := os.WriteFile(pw, []byte(monitorPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := sdktest.ServeCheck(t, newMySQL())
	expect(t, probeOnce(t, c, "chk", 5*time.Second, "address "+s.Addr(), "user "+monitorUser, "password_file "+pw), check.OK, `^query ok$`)
}
