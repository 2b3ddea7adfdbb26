// Package checksched is vigil's check scheduler, in the check process: it turns the
// configuration's checks (the vrrp_scripts and vrrp_checks that instances track, and the
// checkers of real servers) into scheduled specs, probes each on its interval with one probe in
// flight, and reports state changes: up after rise successes in a row, down after fall
// failures in a row, and dynamic weights. Every probe is a Prober: a check plugin reached
// through core/plugin (vrrp_scripts run in the vigil-check-exec plugin), or, when that plugin
// is not installed, Script, which runs a vrrp_script in the check process through
// core/procrun as the plugin would. A reload hands the scheduler a new set of specs
// (Scheduler.Update); checks whose configuration did not change keep running undisturbed.
//
// The package is named for what it does so that it is not confused with sdk/check (the
// plugin SDK for check plugins) or the plugins/vigil-check-* commands (the plugins).
package checksched
