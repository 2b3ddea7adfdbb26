// Package bgp decides which virtual addresses vigil announces over BGP, and runs the speaker
// that announces them.
//
// The speaker is vigil-bgp, a binary of its own built on GoBGP (cmd/vigil-bgp,
// core/bgp/speaker): the vrrp process starts it from the plugin directory when the
// configuration has a bgp block, restarts it when it dies, and hands it the whole set of
// routes whenever that set changes (core/internal/bgppb). GoBGP is kept out of the vigil
// binary on purpose: its package initialisation alone holds about 15 MiB, which the three
// processes would otherwise carry whether BGP is configured or not, and a fault in it takes
// down only the speaker, never VRRP.
//
// What is announced follows from the instances' states (Routes): in master mode an
// instance's addresses while it is MASTER, in anycast mode while it is healthy (not FAULT,
// not demoted). At stop the routes are drained first (Announcer.Drain): announced with the
// GRACEFUL_SHUTDOWN community (RFC 8326) for the configured time, then withdrawn, while the
// addresses are still up.
package bgp
