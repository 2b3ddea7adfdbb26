package mariadb

import (
	"context"
	"fmt"
)

// PairMember is the Options of member i (0 or 1) of a master-master pair whose servers run
// in network namespace ns and are reached at host: distinct server and GTID domain ids,
// interleaved auto-increment keys, the binary log, and semi-synchronous replication (a
// commit is acknowledged only once the peer has it, AFTER_SYNC, so that a failover loses no
// acknowledged write; a server whose peer is gone does not wait for it). The server listens
// on every address of its namespace: its node's loopback for a local check, the node's
// address for the peer, and the VIP for clients.
func PairMember(i int, ns, host string) Options {
	return Options{
		NetNS: ns, Bind: "0.0.0.0", Host: host,
		ServerID: i + 1, GTIDDomainID: i + 1, LogBin: true,
		AutoIncrementIncrement: 2, AutoIncrementOffset: i + 1,
		Args: []string{
			"--rpl-semi-sync-master-enabled=ON", "--rpl-semi-sync-slave-enabled=ON",
			"--rpl-semi-sync-master-wait-point=AFTER_SYNC", "--rpl-semi-sync-master-timeout=1000",
			"--rpl-semi-sync-master-wait-no-slave=OFF",
		},
	}
}

// User is an account to create on both servers of a pair.
type User struct{ Name, Password, Privileges string }

// MasterMaster creates users on a and b (outside the binary log), makes each replicate from
// the other as user repl, and waits until both replicate.
func MasterMaster(ctx context.Context, a, b *Server, users ...User) error {
	users = append([]User{{"repl", "replpw", "REPLICATION SLAVE, REPLICATION CLIENT"}}, users...)
	servers := []*Server{a, b}
	for _, s := range servers {
		for _, u := range users {
			if err := s.CreateUser(ctx, u.Name, u.Password, u.Privileges); err != nil {
				return fmt.Errorf("user %s on %s: %w", u.Name, s.Addr(), err)
			}
		}
	}
	for i, s := range servers {
		if err := s.ReplicateFrom(ctx, SourceOf(servers[1-i], "repl", "replpw")); err != nil {
			return err
		}
	}
	for _, s := range servers {
		if err := s.WaitReplicating(ctx); err != nil {
			return err
		}
	}
	return nil
}
