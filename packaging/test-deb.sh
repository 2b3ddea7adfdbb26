#!/usr/bin/env bash
# test-deb.sh DEB: installs vigil's Debian package into a fresh Debian 12 and checks it as an
# operator would use it (make test-package; part of make test).
#
# The fresh system is `debootstrap --variant=minbase` (with man-db, so that `man vigil` can be
# tried) from the mirror this machine's apt uses, cached as a tarball in /var/cache/vigil-test
# (VIGIL_TEST_CACHE): the first run takes a couple of minutes, the next ones seconds. Each run
# unpacks a copy, so every run starts from the same untouched system. In it, in a mount, PID and
# network namespace of its own (nothing reaches the host's network; only lo exists):
#   dpkg -i; every file where the installed daemon looks for it, the conffile, the unit
#   enabled by postinst without a running systemd; vigil --version; vigil -t on the packaged
#   /etc/vigil/vigil.conf and on an example; vigil plugins finds the packaged plugins; man
#   vigil and man vigil.conf; the daemon started with the unit's ExecStart line reaches MASTER
#   on lo and stops on SIGTERM with exit 0; dpkg -i again keeps an edited conffile and a
#   disabled unit disabled; dpkg -r keeps the conffile and removes the rest; dpkg -P leaves
#   nothing.
# Without root or debootstrap it says so and exits 0 (a skip), as the Go tests that need root
# do.
set -euo pipefail

deb=$(readlink -f "${1:?usage: test-deb.sh dist/vigil_VERSION_ARCH.deb}")
suite=${SUITE:-bookworm}
cache=${VIGIL_TEST_CACHE:-/var/cache/vigil-test}

say() { echo "test-deb: $*"; }
skip() {
	say "SKIP: $*"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, namespaces)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (Debian: debootstrap; .ci/deps.sh installs it)"
command -v unshare >/dev/null || skip "unshare is not installed (Debian: util-linux)"
[ -f "$deb" ] || { say "no package $deb (make package writes it)"; exit 1; }

# The mirror of this machine's apt sources that carries the suite: deb822 .sources first (Debian
# 12's default), then one-line sources.list; deb.debian.org when neither names one.
mirror() {
	local f u
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		u=$(awk -v s="$suite" 'BEGIN { RS = "" } {
			uri = ""; ok = 0; n = split($0, l, "\n")
			for (i = 1; i <= n; i++) {
				if (l[i] ~ /^URIs:/) { split(l[i], a, " "); uri = a[2] }
				if (l[i] ~ /^Suites:/ && (l[i] " ") ~ (" " s " ")) ok = 1
			}
			if (ok && uri != "") { print uri; exit }
		}' "$f")
		[ -z "$u" ] || { echo "$u"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		u=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == s) { print $i; exit } }' "$f")
		[ -z "$u" ] || { echo "$u"; return; }
	done
	echo http://deb.debian.org/debian
}
mirror_url=${MIRROR:-$(mirror)}
# Uncompressed: 250 MB of disk, and neither gzip's 10 s when it is made nor its seconds at
# each unpacking.
tarball="$cache/$suite-minbase-$(printf %s "$mirror_url" | sha256sum | cut -c1-12).tar"

# One debootstrap at a time for all the runs on this machine; the others wait and use it.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -s "$tarball" ]; then
	build=$(mktemp -d /var/tmp/vigil-debootstrap.XXXXXX)
	start=$SECONDS
	say "debootstrap --variant=minbase --include=man-db $suite from $mirror_url (once; cached as $tarball)"
	if ! debootstrap --variant=minbase --include=man-db "$suite" "$build/root" "$mirror_url" >"$build/log" 2>&1; then
		tail -n 30 "$build/log"
		rm -rf "$build"
		say "debootstrap failed: the log's end is above"
		exit 1
	fi
	tar -C "$build/root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$build"
	say "fresh $suite made and cached in $((SECONDS - start)) s"
fi
flock -u 9

root=$(mktemp -d /var/tmp/vigil-deb-test.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$SECONDS
tar -C "$root" -xf "$tarball"
cp "$deb" "$root/tmp/vigil.deb"
say "unpacked a fresh $suite in $((SECONDS - start)) s"

# The checks run inside the fresh system, step by step with their commands shown.
cat >"$root/tmp/check.sh" <<'CHECK'
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 MANPAGER=cat PAGER=cat MANWIDTH=80
step() { echo "test-deb: in $(. /etc/os-release; echo "$PRETTY_NAME"): $*"; }
fail() { echo "test-deb: FAIL: $*"; exit 1; }

step "dpkg -i"
dpkg -i /tmp/vigil.deb

step "files where the installed daemon looks for them"
for f in /usr/sbin/vigil /usr/lib/vigil/plugins/vigil-check-tcp /usr/lib/vigil/plugins/vigil-check-mysql \
	/usr/lib/vigil/plugins/vigil-notify-webhook; do
	[ -x "$f" ] || fail "$f is missing or not executable"
done
for f in /lib/systemd/system/vigil.service /etc/vigil/vigil.conf /usr/share/man/man8/vigil.8.gz \
	/usr/share/man/man5/vigil.conf.5.gz /usr/share/doc/vigil/examples/minimal.conf; do
	[ -f "$f" ] || fail "$f is missing"
done
grep -qx /etc/vigil/vigil.conf /var/lib/dpkg/info/vigil.conffiles || fail "/etc/vigil/vigil.conf is not a conffile"
# No systemd runs here: postinst enabled the unit (for the next boot) and started nothing.
[ -L /etc/systemd/system/multi-user.target.wants/vigil.service ] || fail "postinst did not enable vigil.service"
dpkg -s vigil | grep -E '^(Version|Depends|Status):'

step "vigil --version"
vigil --version | grep -qx "vigil $(dpkg-query -W -f '${Version}' vigil)" || fail "vigil --version does not print the package's version"

step "vigil -t on the packaged configuration and an example"
vigil -t -f /etc/vigil/vigil.conf
vigil -t -f /usr/share/doc/vigil/examples/minimal.conf

step "vigil plugins: the packaged plugins are found and run"
vigil plugins | tee /tmp/plugins
[ "$(grep -c '/usr/lib/vigil/plugins/vigil-' /tmp/plugins)" -ge 7 ] || fail "vigil plugins did not list the 7 packaged plugins"

step "man vigil, man vigil.conf"
man vigil | grep -q 'SEE ALSO' || fail "man vigil"
man 5 vigil.conf | grep -q 'plugin_sha256' || fail "man 5 vigil.conf"

step "the daemon as the unit starts it, until its instance is MASTER; then SIGTERM"
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/vigil.service)
mkdir -p /run/vigil # RuntimeDirectory=vigil
$exec_start >/tmp/vigil.log 2>&1 &
pid=$!
master=
for _ in $(seq 1 120); do
	if vigil status 2>/dev/null | grep -q 'VI_EXAMPLE.*MASTER'; then
		master=yes
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
vigil status || true
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ -n "$master" ] || { cat /tmp/vigil.log; fail "the packaged configuration's instance did not become MASTER"; }
[ "$rc" -eq 0 ] || { cat /tmp/vigil.log; fail "vigil exited $rc on SIGTERM"; }

step "dpkg -i again (an upgrade): the edited conffile stays, a disabled unit stays disabled"
echo '! edited by the administrator' >>/etc/vigil/vigil.conf
rm /etc/systemd/system/multi-user.target.wants/vigil.service # what systemctl disable does
dpkg -i --force-confold /tmp/vigil.deb
grep -qx '! edited by the administrator' /etc/vigil/vigil.conf || fail "the upgrade replaced the edited conffile"
[ ! -e /etc/systemd/system/multi-user.target.wants/vigil.service ] || fail "the upgrade enabled a unit the administrator had disabled"

step "dpkg -r: the conffile stays, the rest goes"
dpkg -r vigil
[ ! -e /usr/sbin/vigil ] && [ ! -e /usr/lib/vigil ] && [ ! -e /lib/systemd/system/vigil.service ] || fail "dpkg -r left files"
[ -f /etc/vigil/vigil.conf ] || fail "dpkg -r removed the conffile"
dpkg -s vigil | grep -qx 'Status: deinstall ok config-files' || fail "not in config-files state after dpkg -r"

step "dpkg -P: nothing left"
dpkg -P vigil
[ ! -e /etc/vigil ] || fail "/etc/vigil is left after purge: $(ls -la /etc/vigil)"
[ ! -e /etc/systemd/system/multi-user.target.wants/vigil.service ] || fail "the enablement symlink is left after purge"
[ ! -e /etc/systemd/system/vigil.service ] || fail "the mask is left after purge"
! dpkg -s vigil >/dev/null 2>&1 || fail "dpkg still knows vigil after purge"
step "OK"
CHECK

start=$SECONDS
# --net: a network namespace of this test's own, with only lo, brought up from the host's ip
# before chroot (minbase has no iproute2). --pid --fork: whatever the checks leave running
# ends with them. --mount-proc: /proc for the fresh system, gone with the mount namespace.
unshare --mount --net --pid --fork --mount-proc="$root/proc" \
	bash -c 'ip link set lo up && exec chroot "$1" /bin/bash /tmp/check.sh' _ "$root"
say "checks passed in $((SECONDS - start)) s"
