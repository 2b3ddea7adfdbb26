package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/sdk/check"
)

// Server error numbers the probe tells apart.
const (
	erParseError        = 1064 // the server does not know the statement (SHOW REPLICA STATUS on old servers)
	erSpecificDenied    = 1227 // a privilege is missing (SHOW SLAVE STATUS without SLAVE MONITOR)
	erTableAccessDenied = 1142 // a statement on a table the user may not read
)

// probe is one run of the check against the server: a connection from the pool, the query,
// then each expectation in turn. The first failure is the answer.
type probe struct {
	t      *target
	ctx    context.Context
	budget time.Duration
	// stepCtx and stepLimit bound the current step when it has a tighter limit than the
	// probe (connect_timeout), so that a timeout message names the limit that was hit.
	stepCtx   context.Context
	stepLimit time.Duration
	start     time.Time
	conn      *sql.Conn
	broken    bool // the connection must not be reused
	metrics   map[string]float64
	notes     []string // what passed, for the OK message
}

func (t *target) probe(ctx context.Context, budget time.Duration) check.CheckResponse {
	p := &probe{t: t, ctx: ctx, budget: budget, stepCtx: ctx, stepLimit: budget, start: time.Now(), metrics: map[string]float64{}}
	resp := p.run()
	if p.conn != nil {
		if p.broken {
			// Returning ErrBadConn from Raw makes database/sql close the connection instead
			// of keeping it for the next probe, which then dials afresh.
			_ = p.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = p.conn.Close()
	}
	p.metrics["probe_seconds"] = time.Since(p.start).Seconds()
	resp.Metrics = p.metrics
	if n := p.t.cfg.lagWeight; n != 0 {
		// vigil keeps a weight until the plugin reports another: report one every time.
		lag, ok := p.metrics["replication_lag_seconds"]
		w := lagWeight(lag, ok && resp.Status == check.OK, p.t.cfg.maxLag, n)
		resp.Weight = &w
	}
	return resp
}

// lagWeight is the dynamic weight for a replication lag of lag seconds: 0 without lag,
// falling linearly to -n at the bound, so that of two healthy nodes the one further behind
// loses priority first. A probe that failed, or did not read the lag, reports -n; while
// the check is down vigil applies the configured weight instead anyway.
func lagWeight(lag float64, known bool, bound time.Duration, n int) int {
	switch {
	case !known:
		return -n
	case bound <= 0: // max_replication_lag 0: any lag fails the check
		if lag > 0 {
			return -n
		}
		return 0
	}
	f := min(lag/bound.Seconds(), 1)
	return -int(math.Round(f * float64(n)))
}

func (p *probe) run() check.CheckResponse {
	c := p.t.cfg
	// connect_timeout covers the dial and the login (the driver's own Timeout is the dial
	// only); a connection kept from an earlier probe costs nothing here.
	done := p.bound(c.connectTimeout)
	conn, err := p.t.db.Conn(p.stepCtx)
	done()
	if err != nil {
		return p.fail("connecting", err)
	}
	p.conn = conn

	// read_timeout bounds each statement, the probe's deadline all of them.
	done = p.bound(c.readTimeout)
	err = p.runQuery()
	done()
	if err != nil {
		return p.fail("running "+strconv.Quote(c.query), err)
	}
	for _, step := range []struct {
		on  bool
		run func() (check.CheckResponse, bool)
	}{
		{c.expectWritable || c.expectReadOnly, p.readOnly},
		{c.expectReplication || c.maxLagSet, p.replication},
		{c.expectGalera, p.galera},
	} {
		if !step.on {
			continue
		}
		done = p.bound(c.readTimeout)
		r, ok := step.run()
		done()
		if !ok {
			return r
		}
	}
	msg := strings.Join(p.notes, ", ")
	if msg == "" {
		msg = "query ok"
	}
	return check.CheckResponse{Status: check.OK, Message: msg}
}

// bound gives the next step limit, when that is tighter than what is left of the probe.
func (p *probe) bound(limit time.Duration) context.CancelFunc {
	p.stepCtx, p.stepLimit = p.ctx, p.budget
	dl, _ := p.ctx.Deadline()
	if limit <= 0 || limit >= time.Until(dl) {
		return func() {}
	}
	var cancel context.CancelFunc
	p.stepCtx, cancel = context.WithTimeout(p.ctx, limit)
	p.stepLimit = limit
	return cancel
}

func (p *probe) runQuery() error {
	rows, err := p.conn.QueryContext(p.stepCtx, p.t.cfg.query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// readOnly compares @@global.read_only with the expectation.
func (p *probe) readOnly() (check.CheckResponse, bool) {
	var v string
	if err := p.conn.QueryRowContext(p.stepCtx, "SELECT @@global.read_only").Scan(&v); err != nil {
		return p.fail("reading read_only", err), false
	}
	// 0/1 from both servers; a word (OFF, ON, NO_LOCK...) if a server reports one.
	on := !(v == "0" || strings.EqualFold(v, "OFF"))
	switch {
	case on && p.t.cfg.expectWritable:
		return p.critical("read_only is ON but expect_writable"), false
	case !on && p.t.cfg.expectReadOnly:
		return p.critical("read_only is OFF but expect_read_only"), false
	case on:
		p.notes = append(p.notes, "read_only ON")
	default:
		p.notes = append(p.notes, "writable")
	}
	return check.CheckResponse{}, true
}

// replication reads SHOW REPLICA STATUS (SHOW SLAVE STATUS on older servers) and checks the
// threads and the lag of every replication channel it lists.
func (p *probe) replication() (check.CheckResponse, bool) {
	rows, err := p.replicaStatus()
	if err != nil {
		if isServerError(err, erSpecificDenied, erTableAccessDenied) {
			return p.unknown(fmt.Sprintf("cannot read replication status: %s; GRANT SLAVE MONITOR (MariaDB 10.5+) or REPLICATION CLIENT (MySQL) ON *.* TO the check's user",
				serverMessage(err))), false
		}
		return p.fail("reading replication status", err), false
	}
	st, msg, lag := judgeReplication(rows, p.t.cfg)
	if lag >= 0 {
		p.metrics["replication_lag_seconds"] = lag
	}
	if st != check.OK {
		return check.CheckResponse{Status: st, Message: msg}, false
	}
	p.notes = append(p.notes, msg)
	return check.CheckResponse{}, true
}

// judgeReplication weighs the rows of SHOW REPLICA STATUS (one per channel) against the
// expectations: the outcome, its message (for OK, the note for the OK message), and the
// highest lag seen in seconds, -1 when no channel reported one. It is apart from the query
// so that the column names of servers the tests cannot start (MySQL 8) are tested too.
func judgeReplication(rows []statusRow, c config) (check.Status, string, float64) {
	if len(rows) == 0 {
		return check.Critical, "not a replica: replication status is empty", -1
	}
	maxLag := -1.0
	for _, r := range rows {
		ch := r.channel()
		io, sql := r.get("Replica_IO_Running", "Slave_IO_Running"), r.get("Replica_SQL_Running", "Slave_SQL_Running")
		if !io.Valid || !sql.Valid {
			return check.Unknown, ch + "replication status has no IO/SQL running columns", maxLag
		}
		if c.expectReplication {
			if io.String != "Yes" {
				return check.Critical, fmt.Sprintf("%sreplication IO thread %s%s", ch, threadState(io.String), lastError(r.get("Last_IO_Error"))), maxLag
			}
			if sql.String != "Yes" {
				return check.Critical, fmt.Sprintf("%sreplication SQL thread %s%s", ch, threadState(sql.String), lastError(r.get("Last_SQL_Error"))), maxLag
			}
		}
		lag := r.get("Seconds_Behind_Source", "Seconds_Behind_Master")
		if !lag.Valid {
			if c.maxLagSet {
				// NULL: a thread is stopped or the replica is not connected; no bound holds.
				return check.Critical, fmt.Sprintf("%sreplication lag unknown (NULL): IO thread %s, SQL thread %s%s",
					ch, io.String, sql.String, lastError(r.get("Last_IO_Error"), r.get("Last_SQL_Error"))), maxLag
			}
			continue
		}
		secs, err := strconv.ParseFloat(lag.String, 64)
		if err != nil {
			return check.Unknown, fmt.Sprintf("%sreplication lag %q is not a number", ch, lag.String), maxLag
		}
		maxLag = max(maxLag, secs)
		if c.maxLagSet && secs > c.maxLag.Seconds() {
			return check.Critical, fmt.Sprintf("%sreplication lag %ss > %s", ch, lag.String, fmtSeconds(c.maxLag)), maxLag
		}
	}
	if maxLag < 0 {
		return check.OK, "replica threads running", maxLag
	}
	return check.OK, fmt.Sprintf("replica lag %ss", strconv.FormatFloat(maxLag, 'f', -1, 64)), maxLag
}

// statusRow is one row of SHOW REPLICA STATUS by column name.
type statusRow map[string]sql.NullString

// get is the first of the named columns the row has: MySQL 8.0.22+ renamed Slave_* to
// Replica_* and *_Master to *_Source in SHOW REPLICA STATUS; MariaDB kept the old names.
func (r statusRow) get(names ...string) sql.NullString {
	for _, n := range names {
		if v, ok := r[n]; ok {
			return v
		}
	}
	return sql.NullString{}
}

// channel names a non-default replication channel for messages ("" for the default one).
func (r statusRow) channel() string {
	if v := r.get("Channel_Name", "Connection_name"); v.String != "" {
		return "channel " + v.String + ": "
	}
	return ""
}

func (p *probe) replicaStatus() ([]statusRow, error) {
	if !p.t.legacyStatus.Load() {
		rows, err := p.statusRows("SHOW REPLICA STATUS")
		if !isServerError(err, erParseError) {
			return rows, err
		}
		p.t.legacyStatus.Store(true)
	}
	return p.statusRows("SHOW SLAVE STATUS")
}

func (p *probe) statusRows(query string) ([]statusRow, error) {
	rows, err := p.conn.QueryContext(p.stepCtx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []statusRow
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := make(statusRow, len(cols))
		for i, c := range cols {
			r[c] = vals[i]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// galera checks that the node is a synced member of a Galera cluster.
func (p *probe) galera() (check.CheckResponse, bool) {
	rows, err := p.conn.QueryContext(p.stepCtx,
		"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state', 'wsrep_local_state_comment')")
	if err != nil {
		return p.fail("reading Galera status", err), false
	}
	defer rows.Close()
	st := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return p.fail("reading Galera status", err), false
		}
		st[strings.ToLower(k)] = v
	}
	if err := rows.Err(); err != nil {
		return p.fail("reading Galera status", err), false
	}
	ready, ok := st["wsrep_ready"]
	state, hasState := st["wsrep_local_state"]
	switch {
	case !ok:
		return p.critical("not a Galera node: the server has no wsrep status"), false
	case !hasState:
		// MariaDB reports wsrep_ready OFF even without Galera; the provider's own status
		// variables are what a node has.
		return p.critical("not a Galera node: no wsrep provider is loaded (wsrep_ready " + ready + ")"), false
	case !strings.EqualFold(ready, "ON"):
		return p.critical(fmt.Sprintf("galera wsrep_ready is %s (node %s)", ready, st["wsrep_local_state_comment"])), false
	}
	// 4 is Synced; Joining (1), Donor (2) and Joined (3) do not serve consistent reads.
	if state != "4" {
		return p.critical(fmt.Sprintf("galera node is %s (wsrep_local_state %s), not Synced", st["wsrep_local_state_comment"], state)), false
	}
	p.notes = append(p.notes, "galera synced")
	return check.CheckResponse{}, true
}

func (p *probe) critical(msg string) check.CheckResponse {
	return check.CheckResponse{Status: check.Critical, Message: msg}
}

func (p *probe) unknown(msg string) check.CheckResponse {
	return check.CheckResponse{Status: check.Unknown, Message: msg}
}

// fail turns an error of one step of the probe into a Critical answer with a one-line
// message, and marks the connection broken unless the server itself answered with the error.
func (p *probe) fail(step string, err error) check.CheckResponse {
	c := p.t.cfg
	where := c.addr
	if c.network == "unix" {
		where = "socket " + c.addr
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// The server answered: the connection (if there is one) is fine.
		return p.critical(fmt.Sprintf("%s: %s: %s", where, step, serverMessage(err)))
	}
	p.broken = true
	var ne net.Error
	switch {
	case errors.Is(p.ctx.Err(), context.Canceled):
		return p.critical(fmt.Sprintf("%s: probe cancelled while %s", where, step))
	// The step's context is cancelled once the step is over; only its deadline counts.
	case errors.Is(p.stepCtx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return p.critical(fmt.Sprintf("%s: no answer within %s while %s", where, fmtSeconds(roundLimit(p.stepLimit)), step))
	case errors.Is(err, syscall.ECONNREFUSED):
		return p.critical(fmt.Sprintf("%s: connection refused", where))
	case errors.Is(err, syscall.ENOENT):
		return p.critical(fmt.Sprintf("%s: no such socket (is the server running?)", where))
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return p.critical(fmt.Sprintf("%s: connection lost while %s", where, step))
	}
	return p.critical(fmt.Sprintf("%s: %s: %s", where, step, oneLine(err.Error())))
}

func isServerError(err error, numbers ...uint16) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	for _, n := range numbers {
		if me.Number == n {
			return true
		}
	}
	return false
}

// serverMessage is the server's own message with its error number, as the mysql client
// prints it: "Access denied for user 'x'@'127.0.0.1' (using password: YES) (error 1045)".
func serverMessage(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("%s (error %d)", oneLine(me.Message), me.Number)
	}
	return oneLine(err.Error())
}

func threadState(v string) string {
	if v == "No" {
		return "stopped"
	}
	return "is " + v // Connecting, Preparing ...
}

func lastError(vs ...sql.NullString) string {
	for _, v := range vs {
		if v.String != "" {
			return ": " + oneLine(v.String)
		}
	}
	return ""
}

// roundLimit rounds a time limit for a message: what is left of the probe's timeout when
// the plugin gets it is a few odd milliseconds short of it.
func roundLimit(d time.Duration) time.Duration {
	if d >= 100*time.Millisecond {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func fmtSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// oneLine keeps a message on one line for the log and `vigil status`.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
