package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

const (
	writerUser = "writer"
	writerPass = "writerpw"
	// writeEvery is how often the writer inserts a row through the VIP.
	writeEvery = 10 * time.Millisecond
	// writeTimeout bounds one insert; an insert that fails or times out is not acknowledged.
	writeTimeout = time.Second
)

// MySQL is a MariaDB master-master pair on n1 and n2 (internal/lab/mariadb's PairMember:
// semi-synchronous replication, AFTER_SYNC) and a writer in the client's namespace that
// inserts a numbered row through VIP(0) every writeEvery and remembers which inserts were
// acknowledged.
type MySQL struct {
	Servers []*mariadb.Server // on n1 and n2

	e       *Env
	db      *sql.DB
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	acked   []int64     // sequence numbers the server acknowledged
	ackedAt []time.Time // when each was acknowledged
	failed  int
	lastErr string
}

// StartMySQL starts the pair on n1 and n2 (both listen on every address of their node, so on
// the VIP too), creates the writer's account and table faults.w, and waits until both
// replicate. Call it before StartCluster or after; StartWriter once the VIP answers.
func (e *Env) StartMySQL(ctx context.Context) (*MySQL, error) {
	if err := mariadb.Available(); err != nil {
		return nil, err
	}
	if len(e.Nodes) < 2 {
		return nil, fmt.Errorf("a MySQL pair needs two VRRP nodes")
	}
	m := &MySQL{e: e}
	e.MySQL = m
	for i, nd := range e.Nodes[:2] {
		o := mariadb.PairMember(i, nd.NS, nd.Addr4.Addr().String())
		o.Dir = e.Work
		s, err := mariadb.Start(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("mariadb on %s: %w", nd.Name, err)
		}
		m.Servers = append(m.Servers, s)
	}
	if err := mariadb.MasterMaster(ctx, m.Servers[0], m.Servers[1],
		mariadb.User{Name: writerUser, Password: writerPass, Privileges: "ALL"}); err != nil {
		return nil, err
	}
	// Created on n1 only: replication brings it to n2, which proves it works both ways once
	// the writer's rows come back.
	if err := m.Servers[0].Exec(ctx, "CREATE DATABASE faults",
		"CREATE TABLE faults.w (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"); err != nil {
		return nil, err
	}
	if err := m.Servers[1].WaitCaughtUp(ctx, m.Servers[0]); err != nil {
		return nil, err
	}
	return m, nil
}

// StartWriter starts inserting through VIP(0) from the client's namespace.
func (m *MySQL) StartWriter(ctx context.Context) error {
	db, err := mariadb.Connect(m.e.ClientNode.NS, fmt.Sprintf("%s:3306", VIP(0)), writerUser, writerPass)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	m.db = db
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.write(wctx)
	// The first acknowledged insert proves the path.
	return m.e.waitFor(ctx, 20*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.acked) > 0
	})
}

func (m *MySQL) write(ctx context.Context) {
	defer close(m.done)
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ictx, cancel := context.WithTimeout(ctx, writeTimeout)
		_, err := m.db.ExecContext(ictx, "INSERT INTO faults.w (seq) VALUES (?)", seq)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // StopWriter interrupted it: neither acknowledged nor a failure
		}
		m.mu.Lock()
		if err == nil {
			m.acked = append(m.acked, seq)
			m.ackedAt = append(m.ackedAt, time.Now())
		} else {
			m.failed++
			m.lastErr = err.Error()
		}
		m.mu.Unlock()
	}
}

func (m *MySQL) writing() bool { return m.cancel != nil }

// StopWriter stops the writer and waits for its last insert.
func (m *MySQL) StopWriter() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cancel = nil
	m.db.Close()
}

// Lost counts the acknowledged rows missing on node i's server (n1 or n2), waiting up to
// 30 s for replication to bring them; note says how many were written and failed, and the
// writer's longest wait between two acknowledged inserts.
func (m *MySQL) Lost(ctx context.Context, i int) (int, string, error) {
	if i >= len(m.Servers) {
		return 0, "", fmt.Errorf("%s has no MariaDB", m.e.Nodes[i].Name)
	}
	db, err := m.Servers[i].Root()
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	m.mu.Lock()
	acked := append([]int64(nil), m.acked...)
	var gap time.Duration
	for k := 1; k < len(m.ackedAt); k++ {
		gap = max(gap, m.ackedAt[k].Sub(m.ackedAt[k-1]))
	}
	failed, lastErr := m.failed, m.lastErr
	m.mu.Unlock()
	var missing int
	err = m.e.waitFor(ctx, 30*time.Second, func() bool {
		have := map[int64]bool{}
		rows, err := db.QueryContext(ctx, "SELECT seq FROM faults.w")
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var s int64
			if rows.Scan(&s) == nil {
				have[s] = true
			}
		}
		missing = 0
		for _, s := range acked {
			if !have[s] {
				missing++
			}
		}
		return missing == 0
	})
	_ = err // missing rows after the bound are the figure, not an error
	note := fmt.Sprintf("writes: %d acknowledged, %d failed, longest time between two acknowledgements %s", len(acked), failed, dur(gap))
	if failed > 0 {
		note += fmt.Sprintf(" (last: %.80s)", lastErr)
	}
	return missing, note, nil
}

func (m *MySQL) close() {
	m.StopWriter()
	for _, s := range m.Servers {
		if err := s.Stop(); err != nil {
			logf("stop mariadb: %v", err)
		}
	}
}
