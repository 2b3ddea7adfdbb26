// Command empty is the smallest Go process: the runtime and nothing else, waiting for
// SIGTERM. bench/floor measures what it holds resident.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
}
