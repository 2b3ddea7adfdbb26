package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vigil-ha/vigil/internal/lab"
)

const (
	exabgpBin      = "/usr/sbin/exabgp"
	healthcheckBin = "/usr/bin/exabgp-healthcheck"
)

func exabgpVersion() string {
	out, err := exec.Command(exabgpBin, "--version").CombinedOutput()
	if err != nil {
		return "ExaBGP ?"
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	// "ExaBGP : 4.2.21"
	return strings.Join(strings.Fields(strings.ReplaceAll(first, ":", "")), " ")
}

// checkCommand is the check of every side: it fails while the node's fail file exists.
func checkCommand(failFile string) string { return "/usr/bin/test ! -e " + failFile }

// exaSide is ExaBGP with exabgp-healthcheck as its process: the check every interval, rise
// and fall 1, the route withdrawn when it fails (--withdraw-on-down; without it the route
// stays with --down-metric), MED as vigil's `med priority` would send it.
type exaSide struct{}

func (exaSide) name() string          { return "ExaBGP" }
func (exaSide) backupAnnounces() bool { return true }

func (exaSide) start(ctx context.Context, b *bench, i int) (*lab.Proc, error) {
	nd := b.lab.Nodes[i]
	dir := filepath.Join(b.work, fmt.Sprintf("exabgp-%s", nd.Name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	secs := int(b.o.interval.Seconds())
	hc := []string{healthcheckBin, "--no-syslog", "--name", nd.Name,
		"--interval", fmt.Sprint(secs), "--fast-interval", fmt.Sprint(secs), "--rise", "1", "--fall", "1",
		"--cmd", "'" + checkCommand(b.failFile(i)) + "'", "--ip", b.vip.String(), "--no-ip-setup",
		"--withdraw-on-down", "--up-metric", fmt.Sprint(med(i)), "--next-hop", nd.Addr4.Addr().String()}
	conf := fmt.Sprintf(`process healthcheck {
    run %s;
    encoder text;
}
neighbor %s {
    router-id %s;
    local-address %s;
    local-as %d;
    peer-as %d;
    api {
        processes [ healthcheck ];
    }
}
`, strings.Join(hc, " "), nd.Gateway4, nd.Addr4.Addr(), nd.Addr4.Addr(), nodeAS, routerAS)
	path := filepath.Join(dir, "exabgp.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// ExaBGP reads its settings from the environment: stay root (the healthcheck reads the
	// work directory), log to stdout, no CLI pipes (they would be the machine's), no listener.
	return nd.Start("/usr/bin/env",
		"exabgp.daemon.user=root", "exabgp.daemon.drop=false", "exabgp.daemon.daemonize=false",
		"exabgp.log.destination=stdout", "exabgp.api.cli=false", "exabgp.tcp.bind=",
		exabgpBin, path)
}

// vigilSide is vigil with its BGP speaker, in anycast or active/backup ("master") mode: one
// VRRP instance per node, the check a vrrp_script of weight 0 (its failure is a FAULT),
// `med priority`. The nodes share no L2, so active/backup's VRRP goes by unicast_peer
// through the router (vigil accepts unicast adverts of any TTL, as keepalived does).
type vigilSide struct {
	bin   string
	mode  string // "anycast" or "master"
	gshut int
}

func (s *vigilSide) name() string {
	if s.mode == "anycast" {
		return "vigil anycast"
	}
	return "vigil active/backup"
}

func (s *vigilSide) backupAnnounces() bool { return s.mode == "anycast" }

func (s *vigilSide) conf(b *bench, i int) string {
	nd := b.lab.Nodes[i]
	peer := ""
	state := "BACKUP"
	if s.mode == "master" {
		other := b.lab.Nodes[1-i]
		peer = fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n", nd.Addr4.Addr(), other.Addr4.Addr())
	}
	if i == 0 {
		state = "MASTER"
	}
	// plugin_dir: vigil finds a plugin beside its binary only when a check or notify plugin
	// is there too, and only vigil-bgp is.
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
    plugin_dir %[16]s
    bgp {
        local_as %[2]d
        router_id %[3]s
        graceful_shutdown %[4]d
        neighbor %[5]s {
            remote_as %[6]d
            connect_retry 1
        }
    }
}
vrrp_script chk {
    script "%[7]s"
    interval %[8]d
    fall 1
    rise 1
}
vrrp_instance VI_1 {
    state %[9]s
    interface %[10]s
    virtual_router_id 51
    priority %[11]d
    advert_int 1
%[12]s    virtual_ipaddress {
        %[13]s dev %[14]s
    }
    track_script {
        chk
    }
    announce {
        mode %[15]s
        med priority
    }
}
`, nd.Name, nodeAS, nd.Addr4.Addr(), s.gshut, nd.Gateway4, routerAS, checkCommand(b.failFile(i)),
		int(b.o.interval.Seconds()), state, nd.Iface, prios[i], peer, b.vip, nd.VIPIface, s.mode, filepath.Dir(s.bin))
}

func (s *vigilSide) start(ctx context.Context, b *bench, i int) (*lab.Proc, error) {
	nd := b.lab.Nodes[i]
	dir := filepath.Join(b.work, fmt.Sprintf("vigil-%s-%s", strings.ReplaceAll(s.mode, "/", ""), nd.Name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(s.conf(b, i)), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, s.bin, "-t", "-f", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s -t -f %s: %w\n%s", s.bin, path, err, out)
	}
	return nd.Start(s.bin, "-f", path, "-p", filepath.Join(dir, "vigil.pid"), "-control", filepath.Join(dir, "vigil.sock"))
}
