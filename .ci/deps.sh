#!/usr/bin/env bash
# Installs the OS packages that the tests need, when they are missing.
#
# Tests that need a tool they cannot find skip with a message, so this script never fails the
# build because it cannot install: without root or apt-get it prints what is missing and goes on.
# Add a package to DEPS when a test starts to need it, and say in the test which package provides
# the tool. keepalived: the configuration tests use keepalived -t as the judge of its own samples.
# frr: FRR's zebra, vrrpd and vtysh, the second VRRP interop peer (core/vrrp/frr_interop_test.go);
# its bgpd and bfdd, the router of the BGP tests and of bench/bgpbench (internal/lab StartFRRDaemons).
# exabgp: ExaBGP 4.2 and exabgp-healthcheck, the side bench/bgpbench compares vigil's BGP with.
# nftables: nft, the fault suite's packet loss and filtering inside its namespaces (bench/faults).
# qemu-system-x86, linux-image-amd64, busybox-static: internal/lab/vm boots a kernel of its own for
# the tests that need IPVS (this machine's kernel has none). The generic kernel, not the cloud
# one: linux-image-cloud-amd64 is built without 9p, and the VM's root is the host's over 9p.
# ipvsadm: inspects and compares the IPVS tables in that VM (core/ipvs).
# debootstrap, systemd-container: internal/lab/nspawn boots a Debian container with systemd as its
# PID 1 (this machine's init is not systemd), for the unit's and the package's tests.
# groff-base, man-db: groff -ww and man -l check the generated man pages (cmd/vigil
# TestManPagesRender).
# protobuf-compiler, python3-grpcio, python3-protobuf, python3-cryptography: examples/check-python,
# a check plugin in Python run through vigil's handshake (its test generates vigil_plugin_pb2.py).
set -euo pipefail

DEPS="iproute2 iputils-ping keepalived tshark mariadb-server frr exabgp nftables qemu-system-x86 linux-image-amd64 busybox-static ipvsadm debootstrap systemd-container groff-base man-db protobuf-compiler python3-grpcio python3-protobuf python3-cryptography"

read -r -a deps <<<"$DEPS"
if [ "${#deps[@]}" -eq 0 ]; then
	echo "deps: no OS packages required"
	exit 0
fi

if ! command -v dpkg >/dev/null 2>&1; then
	echo "deps: dpkg not found; cannot check for: ${deps[*]} (tests that need them will skip)"
	exit 0
fi

missing=()
for p in "${deps[@]}"; do
	# dpkg -s also succeeds for removed-but-not-purged packages; require the installed state.
	if dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
		continue
	fi
	missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all present: ${deps[*]}"
	exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing (not root or no apt-get, not installing): ${missing[*]}"
	echo "deps: tests that need them will skip"
	exit 0
fi

echo "deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's kernel package (for internal/lab/vm) writes an initramfs to boot this machine with it:
# minutes of compression here, twice. Where the running kernel is not in /boot (a container)
# nothing boots from /boot, and the VM brings its own initramfs: skip it. A machine that does
# boot from /boot keeps Debian's usual behaviour.
if [ ! -e "/boot/vmlinuz-$(uname -r)" ]; then
	export INITRD=No
fi
# Several test runs may install at once: wait for dpkg's lock instead of failing.
echo "+ apt-get update"
apt-get -o DPkg::Lock::Timeout=600 update -q
echo "+ apt-get install -y --no-install-recommends ${missing[*]}"
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
