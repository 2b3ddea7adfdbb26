package main

import (
	"database/sql"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/sdk/check"
)

// TestJudgeReplication covers what the MariaDB tests cannot produce: MySQL 8's column names
// (Replica_*, Seconds_Behind_Source), several channels, an IO thread still connecting.
func TestJudgeReplication(t *testing.T) {
	row := func(kv ...string) statusRow {
		r := statusRow{}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "NULL" {
				r[kv[i]] = sql.NullString{}
			} else {
				r[kv[i]] = sql.NullString{String: kv[i+1], Valid: true}
			}
		}
		return r
	}
	mysql8 := func(channel, io, sqlThread, lag, ioErr string) statusRow {
		return row("Channel_Name", channel, "Replica_IO_Running", io, "Replica_SQL_Running", sqlThread,
			"Seconds_Behind_Source", lag, "Last_IO_Error", ioErr, "Last_SQL_Error", "")
	}
	threads := config{expectReplication: true}
	lag30 := config{maxLag: 30 * time.Second, maxLagSet: true}
	both := config{expectReplication: true, maxLag: 30 * time.Second, maxLagSet: true}
	for _, tc := range []struct {
		name    string
		rows    []statusRow
		cfg     config
		status  check.Status
		message string
		lag     float64
	}{
		{"mysql 8 healthy", []statusRow{mysql8("", "Yes", "Yes", "2", "")}, both, check.OK, "replica lag 2s", 2},
		{"mysql 8 lag", []statusRow{mysql8("", "Yes", "Yes", "45", "")}, lag30, check.Critical, "replication lag 45s > 30s", 45},
		{"mysql 8 connecting", []statusRow{mysql8("", "Connecting", "Yes", "NULL", "error connecting to source 'repl@db2:3306' - retry-time: 60 retries: 3")}, threads, check.Critical,
			"replication IO thread is Connecting: error connecting to source 'repl@db2:3306' - retry-time: 60 retries: 3", -1},
		{"mysql 8 connecting, lag bound", []statusRow{mysql8("", "Connecting", "Yes", "NULL", "")}, lag30, check.Critical,
			"replication lag unknown (NULL): IO thread Connecting, SQL thread Yes", -1},
		{"channels healthy", []statusRow{mysql8("east", "Yes", "Yes", "1", ""), mysql8("west", "Yes", "Yes", "7", "")}, both, check.OK, "replica lag 7s", 7},
		{"one channel lags", []statusRow{mysql8("east", "Yes", "Yes", "1", ""), mysql8("west", "Yes", "Yes", "31", "")}, both, check.Critical, "channel west: replication lag 31s > 30s", 31},
		{"one channel stopped", []statusRow{mysql8("east", "Yes", "No", "NULL", ""), mysql8("west", "Yes", "Yes", "0", "")}, threads, check.Critical, "channel east: replication SQL thread stopped", -1},
		{"threads only, no lag reported", []statusRow{row("Slave_IO_Running", "Yes", "Slave_SQL_Running", "Yes", "Seconds_Behind_Master", "NULL")}, threads, check.OK, "replica threads running", -1},
		{"not a replica", nil, threads, check.Critical, "not a replica: replication status is empty", -1},
		{"odd columns", []statusRow{row("Something", "Yes")}, threads, check.Unknown, "replication status has no IO/SQL running columns", -1},
		{"odd lag", []statusRow{row("Slave_IO_Running", "Yes", "Slave_SQL_Running", "Yes", "Seconds_Behind_Master", "soon")}, lag30, check.Unknown, `replication lag "soon" is not a number`, -1},
	} {
		st, msg, lag := judgeReplication(tc.rows, tc.cfg)
		if st != tc.status || msg != tc.message || lag != tc.lag {
			t.Errorf("%s: got %s %q lag %v; want %s %q lag %v", tc.name, st, msg, lag, tc.status, tc.message, tc.lag)
		}
	}
}

func TestLagWeight(t *testing.T) {
	for _, tc := range []struct {
		lag   float64
		known bool
		bound time.Duration
		n     int
		want  int
	}{
		{0, true, 30 * time.Second, 50, 0},
		{3, true, 30 * time.Second, 50, -5},
		{15, true, 30 * time.Second, 50, -25},
		{30, true, 30 * time.Second, 50, -50},
		{3600, true, 30 * time.Second, 50, -50},
		{0, false, 30 * time.Second, 50, -50},
		{0, true, 0, 10, 0},
		{1, true, 0, 10, -10},
	} {
		if got := lagWeight(tc.lag, tc.known, tc.bound, tc.n); got != tc.want {
			t.Errorf("lagWeight(%v, %v, %v, %d) = %d; want %d", tc.lag, tc.known, tc.bound, tc.n, got, tc.want)
		}
	}
}
