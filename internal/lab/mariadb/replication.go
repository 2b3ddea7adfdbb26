package mariadb

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Source is where a replica replicates from, as the replica reaches it: in a namespace lab
// the peer node's address, not 127.0.0.1.
type Source struct {
	Host     string
	Port     int
	User     string
	Password string
	// Delay is MASTER_DELAY: the replica applies an event this long after the source wrote it.
	Delay time.Duration
}

// SourceOf is the Source for replicating from s at its own address, as user/password.
func SourceOf(s *Server, user, password string) Source {
	return Source{Host: s.Host, Port: s.Port, User: user, Password: password}
}

// CreateReplicationUser creates the account a replica logs in with on this (source) server.
func (s *Server) CreateReplicationUser(ctx context.Context, user, password string) error {
	return s.CreateUser(ctx, user, password, "REPLICATION SLAVE, REPLICATION CLIENT")
}

// ReplicateFrom points this server's default replication connection at src and starts it.
// It uses GTIDs (MASTER_USE_GTID=slave_pos), so neither side needs a binlog position; the
// source needs LogBin. For master-master, call it on both servers, each with the other as
// source (and distinct ServerID, GTIDDomainID and AutoIncrementOffset). It does not wait:
// see WaitReplicating.
func (s *Server) ReplicateFrom(ctx context.Context, src Source) error {
	q := fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
		"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_DELAY=%d",
		quote(src.Host), src.Port, quote(src.User), quote(src.Password), int(src.Delay/time.Second))
	return s.Exec(ctx, "STOP SLAVE", q, "START SLAVE")
}

// Thread names for StopReplica and StartReplica.
const (
	BothThreads = ""
	IOThread    = "IO_THREAD"
	SQLThread   = "SQL_THREAD"
)

// StopReplica stops the replica's IO thread, SQL thread, or both (BothThreads).
func (s *Server) StopReplica(ctx context.Context, thread string) error {
	return s.Exec(ctx, "STOP SLAVE "+thread)
}

// StartReplica starts the replica's IO thread, SQL thread, or both (BothThreads).
func (s *Server) StartReplica(ctx context.Context, thread string) error {
	return s.Exec(ctx, "START SLAVE "+thread)
}

// ResetReplica forgets the replication configuration (RESET SLAVE ALL), after stopping it.
func (s *Server) ResetReplica(ctx context.Context) error {
	return s.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL")
}

// ReplicaStatus is SHOW SLAVE STATUS as column -> value (NULL columns absent), or nil when
// the server is not a replica.
func (s *Server) ReplicaStatus(ctx context.Context) (map[string]string, error) {
	return s.QueryRow(ctx, "SHOW SLAVE STATUS")
}

// WaitReplicating waits until both replication threads run (IO connected to the source).
func (s *Server) WaitReplicating(ctx context.Context) error {
	return s.poll(ctx, func(ctx context.Context) (bool, string, error) {
		st, err := s.ReplicaStatus(ctx)
		if err != nil || st == nil {
			return false, "not a replica", err
		}
		// An SQL thread that stopped on an error stays stopped: no point in waiting.
		if st["Slave_SQL_Running"] == "No" && st["Last_SQL_Errno"] != "0" {
			return false, "", fmt.Errorf("mariadb %s: replication SQL thread stopped: %s", s.Addr(), st["Last_SQL_Error"])
		}
		ok := st["Slave_IO_Running"] == "Yes" && st["Slave_SQL_Running"] == "Yes"
		return ok, fmt.Sprintf("IO %s, SQL %s, last IO error %q, last SQL error %q",
			st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"]), nil
	})
}

// GTIDPos is the server's gtid_binlog_pos: everything it has written to its binary log.
func (s *Server) GTIDPos(ctx context.Context) (string, error) {
	row, err := s.QueryRow(ctx, "SELECT @@global.gtid_binlog_pos AS pos")
	if err != nil {
		return "", err
	}
	return row["pos"], nil
}

// WaitCaughtUp waits until this replica has applied everything src has written so far.
func (s *Server) WaitCaughtUp(ctx context.Context, src *Server) error {
	pos, err := src.GTIDPos(ctx)
	if err != nil {
		return err
	}
	secs := 30.0
	if dl, ok := ctx.Deadline(); ok {
		secs = time.Until(dl).Seconds()
	}
	// MASTER_GTID_WAIT returns 0 when caught up, -1 on its timeout.
	row, err := s.QueryRow(ctx, "SELECT MASTER_GTID_WAIT(?, ?) AS r", pos, secs)
	if err != nil {
		return err
	}
	if row["r"] != "0" {
		return fmt.Errorf("mariadb %s: not caught up with %s (gtid %s) within %.0fs", s.Addr(), src.Addr(), pos, secs)
	}
	return nil
}

// poll calls f every 100 ms until it reports done, fails, or ctx ends (default limit 30 s).
func (s *Server) poll(ctx context.Context, f func(context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		done, state, err := f(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mariadb %s: %w; last state: %s", s.Addr(), ctx.Err(), state)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SecondsBehind is Seconds_Behind_Master, or -1 when it is NULL (a replication thread is
// stopped) or the server is not a replica.
func (s *Server) SecondsBehind(ctx context.Context) (int, error) {
	st, err := s.ReplicaStatus(ctx)
	if err != nil || st == nil {
		return -1, err
	}
	v, ok := st["Seconds_Behind_Master"]
	if !ok {
		return -1, nil
	}
	return strconv.Atoi(v)
}
