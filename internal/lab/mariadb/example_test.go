package mariadb_test

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lab/mariadb"
)

// A master-master pair in a two-node lab, as the end-to-end failover test sets it up: each
// node's server listens on all its addresses (its loopback for the local check plugin, its
// own address for the peer's replication, the VIP for clients), the check account exists on
// both, and each side replicates from the other. Clients then write through the VIP with
// Connect from a third node.
func Example_masterMaster() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.New(ctx, "mm", 3, "/tmp") // n1, n2: databases; n3: the client
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	var dbs []*mariadb.Server
	for i, nd := range l.Nodes[:2] {
		s, err := mariadb.Start(ctx, mariadb.Options{
			NetNS: nd.NS, Bind: "0.0.0.0", Host: nd.Addr4.Addr().String(),
			ServerID: i + 1, GTIDDomainID: i + 1, LogBin: true,
			AutoIncrementIncrement: 2, AutoIncrementOffset: i + 1,
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer s.Stop()
		dbs = append(dbs, s)
		// Made on each server, outside the binary log.
		if err := s.CreateUser(ctx, "vigil_monitor", "m0n", "SLAVE MONITOR"); err != nil {
			fmt.Println(err)
			return
		}
		if err := s.CreateUser(ctx, "app", "app-pass", "ALL PRIVILEGES"); err != nil {
			fmt.Println(err)
			return
		}
		if err := s.CreateReplicationUser(ctx, "repl", "repl-pass"); err != nil {
			fmt.Println(err)
			return
		}
	}
	for i, s := range dbs {
		if err := s.ReplicateFrom(ctx, mariadb.SourceOf(dbs[1-i], "repl", "repl-pass")); err != nil {
			fmt.Println(err)
			return
		}
	}
	for _, s := range dbs {
		if err := s.WaitReplicating(ctx); err != nil {
			fmt.Println(err)
			return
		}
	}

	// vigil on n1 and n2 tracks its database with the mysql plugin:
	//   params { address 127.0.0.1:3306  user vigil_monitor  password m0n
	//            expect_writable yes  max_replication_lag 30 }
	// The client on n3 writes through the VIP; each write that returns is acknowledged.
	client, err := mariadb.Connect(l.Nodes[2].NS, "192.0.2.100:3306", "app", "app-pass")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	// ... kill the master: dbs[0].Kill(); wait for the VIP on n2; write again; then
	// dbs[1].QueryRow(ctx, "SELECT COUNT(*) ...") holds every acknowledged row.
}
