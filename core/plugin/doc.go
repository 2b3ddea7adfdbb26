// Package plugin is vigil's host for check and notify plugins: it finds them, verifies them,
// starts them with go-plugin over gRPC with mutual TLS, restarts them when they die, kills
// them when they hang, and offers them to the rest of vigil as plain Go calls (and to the
// check scheduler as a checksched.Prober).
//
// Discovery. Plugins are executables named vigil-check-NAME and vigil-notify-NAME in one
// plugin directory (Options.Dir; ResolveDir: DefaultDir when installed, else the vigil
// binary's own directory when plugins sit beside it, as in bin/ of a development tree).
// vigil's own plugins (mysql, tcp, http, exec, email, webhook) are separate binaries installed
// in that directory like any third-party plugin, not served by the vigil binary itself: that
// keeps one code path, proves the public SDK every day, and lets a crashing check take down
// only its own process.
//
// Security. A plugin runs with vigil's privileges, so it is refused when it, or any directory
// above it, can be changed by someone else: group- or world-writable (sticky directories such
// as /tmp excepted), or owned by a user other than root or vigil's own. A plugin may also be
// pinned by its SHA-256 (Options.Checksums, from plugin_sha256 in global_defs), checked before
// every start.
//
// Processes. Each plugin runs as one process (in its own process group, killed by the kernel
// if vigil dies) serving every configured check or notifier that names it, with concurrent
// calls. Host starts a plugin on first use, replays every Configure to a restarted one, and
// restarts one that died with backoff. Close stops them all and their process groups.
//
// Probes. With a plugin that speaks protocol 3, every probe of every check it serves travels
// on one probe lane (sdk/check, sdk/internal/lane): protobuf frames under TLS on unix sockets that
// the plugin offers over its gRPC connection, probes and results that are ready together in
// one frame. A probe costs a fraction of a gRPC call, and a small fraction of keepalived's
// fork and exec of a script (bench/pluginbench, BENCHMARKS.md). Protocol 2 plugins get the
// same messages on a gRPC stream, protocol 1 plugins a call each.
//
// Slow is not hung. A plugin process serves many checks, and on a saturated machine (the
// IPVS benchmark: qemu TCG at load 7, a thousand TCP_CHECKs a second through one plugin) it
// can miss any fixed deadline while it works as hard as the kernel lets it. Killing it then
// turns load into an outage: every probe in flight fails, and the restart costs more than the
// slowness did. So the host judges a plugin by what the kernel accounts to its threads
// (/proc/PID/task/*/schedstat: time run, time waited for a CPU): a health ping missed while
// the plugin made no progress, and while the host itself could run, counts towards the
// verdict "hung" (two in a row); one missed while it ran or waited for a CPU shows it busy,
// and the host pings on with a longer deadline (busyPings bounds that). A start, and the
// replay of N configurations to a new process (pipelined, replayConcurrency at a time, a
// cost proportional to N), fail when the plugin makes no progress for StartTimeout, or, with
// progress, when it has not shaken hands, or answered the next configuration, within
// startLimit StartTimeouts (a spinning plugin serves nobody). Close cuts a start short. A
// missed ping counts as the host's fault only when the goroutine doing it woke up late.
//
// No result. A probe that never reached a working process (the plugin starting, restarting,
// backing off after deaths, or under a hang verdict) did not ask the service anything: Prober
// returns it with checksched.Result.NoResult, and the check scheduler, which owns rise and
// fall, counts it neither way within the check's failure budget (checksched.FailureBudget) and
// as a failure past it. A restart on a loaded machine costs healthy checks nothing; a plugin
// that stays broken still takes its checks down, about when failed probes would have. A
// plugin that cannot be run at all (missing, refused: find) is no such case: it stays so
// until someone acts, and its probes fail at once.
//
// Start-up. go-plugin reads the plugin's handshake from its stdout; the host starts plugins
// with its own runner (runner.go), which skips and logs lines printed before the handshake,
// so a plugin that prints in an init function still starts.
package plugin
