// Command skeleton is the least a vigil child process can be: a gRPC server on a unix socket
// (the channel core and each child talk over, and go-plugin's transport), an hclog logger,
// and the netlink library linked and used once, idle. It has none of vigil's own code, so
// what it holds resident is the floor of one process of vigil's design. bench/floor measures
// it.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: skeleton SOCKET")
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "skeleton", Output: os.Stderr})
	l, err := net.Listen("unix", os.Args[1])
	if err != nil {
		log.Error("listen", "error", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	links, err := netlink.LinkList()
	log.Info("idle", "links", len(links), "error", err)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
	s.Stop()
}
