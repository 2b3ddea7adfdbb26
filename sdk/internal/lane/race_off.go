//go:build !race

package lane

// See race_on.go.

func raceReleaseIO() {}

func raceAcquireIO() {}
