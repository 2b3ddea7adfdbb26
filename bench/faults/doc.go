// Command faults is vigil's fault-injection suite: each scenario builds a lab of network
// namespaces, runs vigil or keepalived on every VRRP node with the same keepalived.conf,
// injects one fault while a client sends a request through the VIP every 10 ms, and measures.
// The results go to RELIABILITY.md, vigil beside keepalived:
//
//	go run ./bench/faults -out RELIABILITY.md   # make faults: every scenario
//	go run ./bench/faults -short -impl vigil    # make test: the scenarios that take seconds, on vigil
//	go run ./bench/faults -run 'kill9' -keep    # some scenarios; keep the work directory
//
// It needs root (namespaces), iproute2 and keepalived; the MySQL scenarios need
// mariadb-server, the packet-loss ones nftables (.ci/deps.sh). Without root it says so and
// exits 0, as the namespace tests skip. It exits 1 when a row breaks an invariant or fails to
// run, and prints which. Timing figures are reported, not asserted, except where a bound is
// what the scenario is about (partition-heal's split brain, master-demote's outage): those are
// set in RFC intervals with an allowance for a loaded machine.
//
// # Adding a scenario
//
// One file per group of scenarios, scen_GROUP.go, registering them in an init function:
//
//	func init() {
//		scenarios.add(&Scenario{
//			Name:  "backup-kill9",           // row name; -run matches it
//			Doc:   "What is done, and what must hold.", // printed under "Scenarios"
//			Short: true,                     // takes seconds: part of make test
//			Impls: nil,                      // nil: vigil and keepalived; or []string{"vigil"}
//			Nodes: 0,                        // VRRP nodes (0: 3); the client node comes after
//			KeepalivedBreaks: "",            // why keepalived 2.2.7 breaks it: its rows then do not fail the run
//			Run:   runBackupKill9,
//		})
//	}
//
//	func runBackupKill9(ctx context.Context, e *Env) (*Result, error) {
//		if err := e.StartCluster(ctx, Conf{}); err != nil { // n1 master, n2 and n3 backups, client running
//			return nil, err
//		}
//		fault := time.Now()
//		if err := e.Daemons[1].Kill9(); err != nil {
//			return nil, err
//		}
//		r, err := e.Measure(ctx, fault, 0, 0, 0, 2) // n1 (0) and n3 (2) must not move
//		if err != nil {
//			return r, err
//		}
//		r.Note("whatever else: %d", 42)       // a figure of the scenario's own
//		r.Check(cond, "what broke: %v", x)   // a must-hold check of its own (fails the run)
//		return r, nil
//	}
//
// Run gets a fresh lab per run and implementation; the runner closes it afterwards (the
// scenario's Defer functions, the client, the writer, the daemons, MariaDB, then the lab's
// processes by PID and its namespaces), whatever Run returned. Return an error only when the
// scenario could not be run; a broken invariant goes in the Result.
//
// # What Env provides
//
//   - Lab, Nodes (VRRP nodes n1..nN, 192.0.2.11...), ClientNode (the next one), Impl (the
//     implementation under test: daemon.Impl), Work (the run's directory), Short.
//   - Conf: the keepalived.conf template (instances, advert_int, version, priority and state
//     per node, extra global_defs, instance and top-level text); every instance has a notify
//     script that records transitions. VIP(i) and VRID(i) are instance i's. ConfText(i) is
//     node i's text; Start(ctx, i, text) starts the implementation on node i with any text.
//   - StartCluster(ctx, conf): a service on every VRRP node, the daemons (n1 first, MASTER),
//     wait until settled, then the client, wait until n1 answers it.
//   - Daemons[i] (bench/internal/daemon): PID, Signal (whole process group: SIGSTOP,
//     SIGCONT), Kill9, Stop, Terminate, Children() (vigil's "check" and "vrrp" children by
//     role; keepalived's VRRP child as "vrrp"), Proc.Output() (its log), Conf (its file).
//   - Cut(ctx, i, on) and Isolate(ctx, i, on): take node i off the bridge (carrier lost, or
//     kept) and back; Holders and Measure do not count a node that is off.
//   - Holders(ctx): the VRRP nodes on the bridge holding VIP(0). Transitions(i, since): node
//     i's notify lines (node, instance, state, time). MasterDown(i): its
//     Master_Down_Interval; SkewTime(i): its Skew_Time.
//   - Client.Requests(): every request so far (sent, node or failure reason); Between,
//     Outage, Answers and FinalRun compute over them.
//   - StartMySQL(ctx), then MySQL.StartWriter(ctx) once the VIP answers: a MariaDB
//     master-master pair on n1 and n2 and a writer through the VIP; Measure stops it and
//     counts the acknowledged rows missing on the final master.
//   - Measure(ctx, fault, bound, hold, still...): waits for convergence (bound 0: 10 s plus
//     ten Master_Down_Intervals), holds (0: three advert intervals plus 1 s), and returns the
//     standard figures over the client's requests since the previous Measure; call it again
//     after a second fault (a heal) for the figures after it.
//   - Defer(f): cleanup of the scenario's own (an nft table, a stopped process), run first.
//   - Logf: a progress line.
//
// See the Method section that report.go writes into RELIABILITY.md for exactly what each
// figure means.
package main
