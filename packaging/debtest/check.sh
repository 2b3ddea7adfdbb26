# check.sh runs inside a fresh Debian where systemd does not run (a chroot of the unpacked
# root file system): the package's path without a service manager. packaging/debtest runs
# it; the path under systemd is in debtest's Go code.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 MANPAGER=cat PAGER=cat MANWIDTH=80
step() { echo "debtest: in $(. /etc/os-release; echo "$PRETTY_NAME"): $*"; }
fail() { echo "debtest: FAIL: $*"; exit 1; }

[ ! -d /run/systemd/system ] || fail "systemd looks as if it ran here (/run/systemd/system): not the path this script tests"

step "dpkg -i"
dpkg -i /tmp/vigil.deb

step "files where the installed daemon looks for them"
for f in /usr/sbin/vigil /usr/lib/vigil/plugins/vigil-check-tcp /usr/lib/vigil/plugins/vigil-check-mysql \
	/usr/lib/vigil/plugins/vigil-notify-webhook /usr/lib/vigil/plugins/vigil-bgp; do
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

# (man-db is not in this minimal system: debtest shows the installed pages with the host's man.)

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
