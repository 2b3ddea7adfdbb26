//go:build race

package lane

import "sync/atomic"

// raceIO tells the race detector what a socket tells the reader: everything the writer did
// before it wrote happened before the reader's read returned. syscall.Write and syscall.Read
// say so to the detector themselves; the lane's raw system calls cannot, and a plugin served
// in-process by sdktest would show races that are not there. A counter does it: the
// writer's add releases, the reader's load acquires.
var raceIO atomic.Uint64

func raceReleaseIO() { raceIO.Add(1) }

func raceAcquireIO() { raceIO.Load() }
