package main

import (
	"github.com/vigil-ha/vigil/bench/internal/proc"
)

// processTree is root and all its descendants.
func processTree(root int) []int { return proc.PIDs(proc.Tree(root)) }
