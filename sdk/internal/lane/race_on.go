//go:build race

package lane

// raceEnabled: the race detector cannot see that a message written to a socket by one
// goroutine and read by another orders the two, unless the write and read go through
// syscall.Write and syscall.Read, which tell it so. Raw system calls do not, and a plugin
// served in-process by sdktest would show races that are not there.
const raceEnabled = true
