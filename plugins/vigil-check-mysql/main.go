// Command vigil-check-mysql is vigil's check plugin for MySQL and MariaDB servers: it logs in,
// runs a query, and optionally checks that the server is writable or read-only, that its
// replication runs within a lag bound, or that its Galera node is synced. One connection per
// configured check stays open between probes. See README.md.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/sdk/check"
)

func main() { check.Serve(newMySQL()) }

// mySQL keeps one target per configured check name; vigil calls it concurrently.
type mySQL struct {
	targets check.Configured[*target]
}

var _ check.Checker = (*mySQL)(nil)

func newMySQL() *mySQL { return &mySQL{} }

// target is a configured check with its connection pool.
type target struct {
	cfg config
	// db holds at most one connection, kept between probes (a probe every second would
	// otherwise cost a TCP handshake, a login and a thread on the server each time).
	db *sql.DB
	// legacyStatus is set once the server rejected SHOW REPLICA STATUS (MySQL before 8.0.22,
	// MariaDB before 10.5), so that later probes ask SHOW SLAVE STATUS straight away.
	legacyStatus atomic.Bool
}

// idleTimeout closes a connection that no probe used for this long: a check removed from
// the configuration (the SDK has no call that says so) lets go of its server connection.
const idleTimeout = time.Minute

// defaultTimeout bounds a probe whose context has no deadline (vigil always sets one).
const defaultTimeout = 5 * time.Second

func (m *mySQL) Describe(context.Context) (check.Info, error) {
	return check.Info{
		Name:        "mysql",
		Version:     "0.1.0",
		Description: "logs in to a MySQL or MariaDB server and runs a query; optionally checks read_only, replication and Galera state",
		Params:      paramSpecs(),
	}, nil
}

func (m *mySQL) Configure(_ context.Context, req check.ConfigureRequest) (check.ConfigureResponse, error) {
	cfg, warnings, err := parse(req.Params)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	if req.ValidateOnly {
		return check.ConfigureResponse{Warnings: warnings}, nil
	}
	if old, err := m.targets.Lookup(req.Name); err == nil && old.cfg == cfg {
		// Same params (and the same file contents): keep the connection.
		return check.ConfigureResponse{Warnings: warnings}, nil
	}
	t, err := newTarget(cfg)
	if err != nil {
		return check.ConfigureResponse{}, err
	}
	if old, replaced := m.targets.Keep(req, t); replaced {
		// A probe still running on the old pool finishes; its connection closes when it
		// is returned, and the idle one closes now.
		old.db.Close()
	}
	return check.ConfigureResponse{Warnings: warnings}, nil
}

func newTarget(cfg config) (*target, error) {
	mc := mysql.NewConfig()
	mc.Net, mc.Addr = cfg.network, cfg.addr
	mc.User, mc.Passwd, mc.DBName = cfg.user, cfg.password, cfg.database
	// connect_timeout and read_timeout are applied per probe step with contexts (probe.go):
	// the driver's own read timeout would report a slow answer as a lost connection.
	mc.Timeout = cfg.connectTimeout
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	mc.TLS = tc
	mc.AllowFallbackToPlaintext = cfg.tlsMode == "preferred"
	// DBAs see who holds the connection (performance_schema.session_connect_attrs).
	mc.ConnectionAttributes = "program_name:vigil-check-mysql"
	mc.Logger = slogLogger{}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(idleTimeout)
	return &target{cfg: cfg, db: db}, nil
}

// slogLogger sends the driver's own log lines (a lost connection it noticed) to vigil's log.
type slogLogger struct{}

func (slogLogger) Print(v ...any) { slog.Warn("mysql driver: " + fmt.Sprint(v...)) }

func (m *mySQL) Check(ctx context.Context, req check.CheckRequest) (check.CheckResponse, error) {
	t, err := m.targets.Lookup(req.Name)
	if err != nil {
		return check.CheckResponse{}, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(defaultTimeout)
	}
	// Give up a little before the deadline, so that the answer saying what timed out (and
	// not a bare deadline error) reaches vigil in time.
	budget := time.Until(dl)
	margin := max(0, min(50*time.Millisecond, budget/10))
	ctx, cancel := context.WithDeadline(ctx, dl.Add(-margin))
	defer cancel()
	return t.probe(ctx, budget-margin), nil
}
