// Command vigil-demo shows a real failover: two vigil nodes in network namespaces share a
// virtual address; the master is cut off, the address moves, the master comes back. It is
// what `make demo` runs. It needs root (network namespaces) and cleans up after itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/lab"
)

const nodeConf = `! vigil demo node %[1]s
vrrp_instance VI_DEMO {
    state BACKUP
    interface eth0
    virtual_router_id 42
    priority %[2]d
    advert_int 0.5
    version 3
    virtual_ipaddress {
        192.0.2.100/24
    }
}
`

var vip = netip.MustParseAddr("192.0.2.100")

func main() {
	bin := flag.String("vigil", "bin/vigil", "the vigil binary to run on the nodes")
	withMySQL := flag.Bool("mysql", false, "the MySQL story instead: two MariaDB servers in master-master replication, the master's database killed")
	plugins := flag.String("plugins", "bin", "with -mysql: the directory holding vigil-check-mysql")
	var lvs lvsFlags
	lvs.register(flag.CommandLine)
	flag.Parse()
	if lvs.on || lvs.guest || lvs.backend != "" || lvs.client != "" {
		os.Exit(lvsMain(&lvs, *bin))
	}
	if err := lab.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "vigil-demo: %v; run it as root (sudo make demo)\n", err)
		os.Exit(2)
	}
	demo := func() error { return run(*bin) }
	if *withMySQL {
		demo = func() error { return runMySQL(*bin, *plugins) }
	}
	if err := demo(); err != nil {
		fmt.Fprintf(os.Stderr, "vigil-demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func run(bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s not found: run make build first", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("building a lab: two nodes on a bridge, each in its own network namespace")
	l, err := lab.New(ctx, "demo", 2, dir)
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: stopping vigil and deleting the namespaces")
		if err := l.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}()
	n1, n2 := l.Nodes[0], l.Nodes[1]
	var procs []*lab.Proc
	for i, nd := range l.Nodes {
		conf := filepath.Join(dir, nd.Name+".conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, nodeConf, nd.Name, 150-50*i), 0o644); err != nil {
			return err
		}
		p, err := nd.Start(bin, "-f", conf, "-p", filepath.Join(dir, nd.Name+".pid"), "--control", filepath.Join(dir, nd.Name+".sock"))
		if err != nil {
			return err
		}
		procs = append(procs, p)
		step("started vigil on %s (%s, namespace %s) with priority %d", nd.Name, nd.Addr4.Addr(), nd.NS, 150-50*i)
	}

	who := func() string {
		var hs []string
		for _, nd := range l.Nodes {
			if ok, _ := nd.HasAddr(ctx, vip); ok {
				hs = append(hs, nd.Name)
			}
		}
		if len(hs) == 0 {
			return "nobody"
		}
		return strings.Join(hs, " and ")
	}
	wait := func(want string, limit time.Duration) (time.Duration, error) {
		start := time.Now()
		for time.Since(start) < limit {
			if who() == want {
				return time.Since(start), nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return 0, fmt.Errorf("after %s the VIP %s is held by %s, expected %s", limit, vip, who(), want)
	}

	if _, err := wait("n1", 10*time.Second); err != nil {
		return err
	}
	step("election done: %s holds %s (n1 has the higher priority)", who(), vip)
	show(ctx, n1)

	step("cutting n1 off the network (its link goes down)")
	if err := n1.SetLink(ctx, false); err != nil {
		return err
	}
	d, err := wait("n2", 10*time.Second)
	if err != nil {
		return err
	}
	step("failover: %s now holds %s, %s after the cut", who(), vip, d.Round(time.Millisecond))
	show(ctx, n2)

	step("restoring n1's link")
	if err := n1.SetLink(ctx, true); err != nil {
		return err
	}
	d, err = wait("n1", 10*time.Second)
	if err != nil {
		return err
	}
	step("n1 is back and preempts (higher priority): %s holds %s again after %s", who(), vip, d.Round(time.Millisecond))

	step("stopping n1 gracefully (SIGTERM): it resigns with a priority-0 advert")
	if err := procs[0].Signal(syscall.SIGTERM); err != nil {
		return err
	}
	d, err = wait("n2", 10*time.Second)
	if err != nil {
		return err
	}
	step("handover: %s holds %s, %s after the stop", who(), vip, d.Round(time.Millisecond))
	if err := procs[0].Wait(5 * time.Second); err != nil {
		return fmt.Errorf("vigil on n1 did not exit cleanly: %w", err)
	}
	step("n1's vigil exited cleanly; demo finished")
	return nil
}

func show(ctx context.Context, nd *lab.Node) {
	out, err := nd.Exec(ctx, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			fmt.Printf("              %s: %s %s\n", nd.Name, f[1], f[3])
		}
	}
}
