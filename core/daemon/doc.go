// Package daemon is the core process's life: it starts the children that a loaded
// configuration needs (core/supervisor), the notify actions, the control socket, the
// metrics listener, the file watcher and systemd's notifications; it applies a changed
// configuration file as one reload transaction at a time (reload.go); and it stops them all
// in order at SIGTERM. It also owns what `vigil -t` checks beyond the parser (ConfigTest),
// which a reload checks the same way.
//
// cmd/vigil parses the flags, loads the file once and calls Run.
package daemon
