# vigil — developer and CI entry points. GNU make.
#
#   make build   every command (cmd/) and plugin (plugins/) into bin/
#   make test    OS deps, go vet, unit tests with -race, the VM tests (test-vm), the short fault
#                suite, a short fuzz run, the demo
#   make example-check-hello  build and test examples/check-hello outside this repository
#                against this checkout's sdk/, as a vendor would (sdk/README.md)
#   make test-vm the tests that boot a kernel of their own under qemu (TestVM..., no -race)
#   make fuzz    each fuzz target for FUZZTIME (default 60s; or a count such as 100000x), one at a time
#   make demo    a live two-node failover in network namespaces (root)
#   make demo-mysql  the MySQL story: two MariaDB servers in master-master replication, vigil
#                tracking each, the master's database killed (root, mariadb-server)
#   make demo-lvs  a balanced VIP: vigil programs IPVS for three HTTP backends, one is killed
#                (in a VM with IPVS: root, qemu)
#   make bench   Go benchmarks, then vigil beside keepalived in namespaces, plugin probes
#                beside forked scripts, and MySQL checks and failover beside keepalived's
#                usual script, into BENCHMARKS.md
#   make faults  every fault scenario, vigil beside keepalived in namespaces, into RELIABILITY.md
#                (root)
#   make install vigil, its plugins, unit, example configuration and man pages under DESTDIR
#                and PREFIX (default /usr); docs/install.md
#   make package the Debian package dist/vigil_VERSION_ARCH.deb (packaging/, with nfpm)
#   make test-package  install that package into a fresh Debian, with and without systemd
#                running, and check it (root; part of make test)
#   make lint    go vet and staticcheck
#   make clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory
.DEFAULT_GOAL := build

GO       ?= go
# Binaries are static (CGO_ENABLED=0): nothing to install beside them, and the vrrp process
# can drop capabilities on all its threads (Go can do that only without cgo). The race
# detector needs cgo, so tests keep the default.
BIN      := bin
FUZZTIME ?= 60s
# staticcheck 2026.2.2. The module proxy knows it by its semver tag; the year.release tags
# (2026.2.2) are not resolvable through the proxy. Newer Go releases may need a newer one.
STATICCHECK_VERSION ?= v0.8.2
# The Go modules of this repository that vet, test, fuzz, bench and lint walk: the daemon and
# the SDK (sdk/go.mod, a module of its own so that plugins do not inherit the daemon's
# dependencies). `go ... ./...` stops at a nested module's go.mod, so each is walked from its
# own directory. packaging/deb is a module too, but only a build tool (make package builds it).
MODULES  := . sdk

# The version built into vigil (vigil --version) and the package: packaging/version.sh, run
# once (make VERSION=... overrides it).
ifeq ($(origin VERSION),undefined)
VERSION := $(shell packaging/version.sh)
endif
# make install: DESTDIR is the staging root packagers use; PREFIX is where vigil lives below
# it. With the default /usr the daemon finds its plugins in /usr/lib/vigil/plugins with no
# plugin_dir; under another PREFIX, in PREFIX/lib/vigil/plugins beside PREFIX/sbin/vigil. The
# configuration stays in /etc/vigil, where vigil reads it. The unit goes where Debian 12's
# systemd packages put theirs, or below PREFIX (systemd also reads /usr/local/lib/systemd).
PREFIX   ?= /usr
DESTDIR  ?=
UNITDIR  ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
# make package links without the symbol table and DWARF (-s -w), as Debian strips the
# binaries it ships (a third of their size; a panic still prints its stack); make build keeps
# them, for debuggers and profiles.
BUILD_FLAGS   ?=
BUILD_LDFLAGS ?=
# The man pages' date and the package's file times follow the last commit, not the clock.
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
endif
export SOURCE_DATE_EPOCH

.PHONY: build test test-vm example-check-hello fuzz demo demo-mysql demo-lvs bench faults lint clean install package test-package

# plugins/ may be empty or absent (git keeps no empty directories): list only the trees that
# exist, and ask go list which packages they hold. -e keeps packages that fail to load in the
# list, so go build reports their errors instead of skipping them.
build:
	@dirs=""; for d in cmd plugins; do [ -d "$$d" ] && dirs="$$dirs ./$$d/..."; done; \
	pkgs="$$([ -n "$$dirs" ] && $(GO) list -e $$dirs 2>/dev/null)" || true; \
	if [ -z "$$pkgs" ]; then echo "build: no packages under cmd/ or plugins/"; exit 1; fi; \
	echo "$(GO) build -o $(BIN)/" $$pkgs; \
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -ldflags "-X main.version=$(VERSION) $(BUILD_LDFLAGS)" -o $(BIN)/ $$pkgs

# The man pages come from the binary being installed (vigil help --man), so they describe its
# flags. The example configuration is installed only where there is none: make install on a
# running node keeps the operator's file.
install: build
	@set -x; d='$(DESTDIR)'; p='$(PREFIX)'; \
	install -d -m 0755 "$$d$$p/sbin" "$$d$$p/lib/vigil/plugins" "$$d/etc/vigil" "$$d$(UNITDIR)" \
		"$$d$$p/share/man/man8" "$$d$$p/share/man/man5" "$$d$$p/share/doc/vigil/examples"; \
	install -m 0755 $(BIN)/vigil "$$d$$p/sbin/vigil"; \
	for f in $(BIN)/vigil-check-* $(BIN)/vigil-notify-* $(BIN)/vigil-bgp; do \
		if [ -e "$$f" ]; then install -m 0755 "$$f" "$$d$$p/lib/vigil/plugins/"; fi; \
	done; \
	sed 's|/usr/sbin/vigil|'"$$p"'/sbin/vigil|g' configs/vigil.service >"$$d$(UNITDIR)/vigil.service"; \
	chmod 0644 "$$d$(UNITDIR)/vigil.service"; \
	if [ ! -e "$$d/etc/vigil/vigil.conf" ]; then install -m 0644 packaging/vigil.conf "$$d/etc/vigil/vigil.conf"; fi; \
	$(BIN)/vigil help --man 8 | gzip -9n >"$$d$$p/share/man/man8/vigil.8.gz"; \
	$(BIN)/vigil help --man 5 | gzip -9n >"$$d$$p/share/man/man5/vigil.conf.5.gz"; \
	chmod 0644 "$$d$$p/share/man/man8/vigil.8.gz" "$$d$$p/share/man/man5/vigil.conf.5.gz"; \
	install -m 0644 docs/install.md "$$d$$p/share/doc/vigil/install.md"; \
	cp -R configs/. "$$d$$p/share/doc/vigil/examples/"; \
	chmod -R u=rwX,go=rX "$$d$$p/share/doc/vigil"

# The .deb of what make install lays out (packaging/nfpm.yaml), built by packaging/deb with the
# nfpm Go module; packaging/deb is a module of its own, so that nfpm's dependencies stay out of
# vigil's. dist/stage is rebuilt each time: the package holds nothing left from before.
package:
	rm -rf dist/stage
	$(MAKE) install DESTDIR=$(CURDIR)/dist/stage PREFIX=/usr BUILD_LDFLAGS='-s -w'
	cd packaging/deb && $(GO) build -o $(CURDIR)/dist/nfpm-deb .
	rm -f dist/vigil_*.deb
	dist/nfpm-deb -config packaging/nfpm.yaml -stage dist/stage -out dist -version '$(VERSION)' -arch "$$($(GO) env GOARCH)"

# The package in a fresh Debian 12 (internal/lab/nspawn's debootstrap, cached in
# /var/cache/vigil-test and shared with cmd/vigil's systemd test): installed, used, upgraded and
# removed in a chroot without a service manager and in a container with systemd as PID 1
# (packaging/debtest). Needs root, debootstrap and systemd-nspawn; says so and passes without.
test-package: package
	$(GO) run ./packaging/debtest dist/vigil_*.deb

# -timeout 30m: core/vrrp runs its namespace and interop labs one after another, about 8 min
# on an idle 2-core machine and over go test's default 10 min with two busy loops beside it.
test:
	bash .ci/deps.sh
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	for m in $(MODULES); do (cd $$m && $(GO) test -race -count=1 -timeout 30m ./...); done
	$(MAKE) test-vm
	$(GO) run ./bench/faults -short -impl vigil
	$(MAKE) fuzz FUZZTIME=100000x
	$(MAKE) demo
	$(MAKE) test-package

# Tests that need a kernel of their own (IPVS) are named TestVM... and run in one VM per package
# (internal/lab/vm: qemu TCG, seconds to boot). They run here, without -race: under TCG a race
# build runs about 30 times slower than a plain one, and the race line above already covers
# their packages' code on the host (their TestVM tests skip in it, saying so). -p 1: one VM at
# a time, each with both cores. The packages are those whose tests use internal/lab/vm.
test-vm:
	@pkgs="$$(grep -rlE --include='*_test.go' 'vigil/internal/lab/vm"|^package vm$$' . | xargs -r -n1 dirname | sort -u | tr '\n' ' ')"; \
	if [ -z "$$pkgs" ]; then echo "test-vm: no package tests with internal/lab/vm"; exit 0; fi; \
	echo "$(GO) test -count=1 -p 1 -timeout 20m -run '^TestVM' $$pkgs"; \
	$(GO) test -count=1 -p 1 -timeout 20m -run '^TestVM' $$pkgs

# examples/check-hello as a vendor uses it: copied into a module of its own outside this
# repository, with a replace to this checkout's sdk/, built, vetted and tested there, and its
# module graph checked for daemon dependencies (sdk/module_test.go, which owns the recipe and
# runs in make test's sdk line as well; about 10 s with a warm module cache).
example-check-hello:
	cd sdk && $(GO) test -count=1 -run '^TestThirdPartyModule$$' -v .

# make test gives each target a count of inputs rather than a duration: with a duration, Go
# 1.26's fuzz coordinator can report "context deadline exceeded" as a failure at the end of the
# run without any failing input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
# 100000 inputs take about 4-15 s per target here.
# go test -list prints a package's matching names, then its "ok <pkg>" line; pair them up.
# -fuzz accepts a pattern that matches exactly one target, so each runs on its own.
# Each module's targets are listed and run from the module's directory.
fuzz:
	@targets="$$(for m in $(MODULES); do (cd $$m && $(GO) test -list '^Fuzz' ./...) | \
		awk -v m=$$m '/^Fuzz/ { n[++c] = $$1; next } /^ok[ \t]/ { for (i = 1; i <= c; i++) print m, $$2, n[i]; c = 0 }'; done)"; \
	if [ -z "$$targets" ]; then echo "fuzz: no fuzz targets"; exit 0; fi; \
	while read -r mod pkg name; do \
		echo "fuzz: $$pkg $$name for $(FUZZTIME)"; \
		(cd $$mod && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"); \
	done <<<"$$targets"

# A real failover between two vigil nodes in network namespaces (needs root); the example
# configurations in configs/ are checked by go test (cmd/vigil TestExampleConfigs).
demo: build
	$(BIN)/vigil-demo -vigil $(BIN)/vigil

demo-mysql: build
	$(BIN)/vigil-demo -vigil $(BIN)/vigil -mysql -plugins $(BIN)

# The load balancer: vigil as an IPVS director of three HTTP backends, one killed. This
# kernel may have no IPVS, so it runs in internal/lab/vm's VM (root, qemu; a minute or two).
demo-lvs: build
	$(BIN)/vigil-demo -vigil $(BIN)/vigil -lvs -lvs-config configs/keepalived-lvs.conf

# Go micro-benchmarks, then vigil side by side with keepalived in network namespaces (root;
# about 5 minutes), then a plugin probe beside a forked script (20 s); both write BENCHMARKS.md
# (pluginbench its own block in the notes, which vrrpbench keeps).
bench:
	for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done
	$(GO) run ./bench/vrrpbench -out BENCHMARKS.md
	$(GO) run ./bench/pluginbench -out BENCHMARKS.md
	$(GO) run ./bench/mysqlbench -out BENCHMARKS.md
	$(GO) run ./bench/lvsbench -out BENCHMARKS.md

# The fault suite (bench/faults): each scenario injects one fault into vigil and into keepalived
# in network namespaces while a client sends through the VIP; exits 1 when an invariant breaks
# (root). make test runs its -short form (the scenarios that take seconds) on vigil alone, to
# stdout only: keepalived's rows are the comparison that RELIABILITY.md shows, a regression can
# only be vigil's, and the form stays within minutes as scenarios are added.
faults:
	$(GO) run ./bench/faults -out RELIABILITY.md

lint:
	for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	for m in $(MODULES); do (cd $$m && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...); done

clean:
	rm -rf $(BIN)/ dist/ cover.out coverage.* *.coverprofile
