package main

import (
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// processTree is root and all its descendants.
func processTree(root int) []int { return proc.PIDs(proc.Tree(root)) }

// processGroup lists the live processes of process group pgid (zombies excluded).
func processGroup(pgid int) []int {
	var out []int
	for _, s := range proc.All() {
		if s.Pgrp == pgid && !s.Zombie {
			out = append(out, s.PID)
		}
	}
	return out
}
