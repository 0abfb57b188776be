# vnic: make build | test | demo | bench | bench-smoke | install
# Each target installs the Debian packages it needs when they are missing.
SHELL      := /bin/bash
SWIFT      ?= swift
CLANG      ?= clang
PREFIX     ?= /usr/local
ARCH_INC   := /usr/include/$(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
BPF_OBJ    := build/vnic.bpf.o
DEB_PKGS   := libxdp-dev libbpf-dev liblmdb-dev libelf-dev zlib1g-dev iproute2 iputils-ping \
              netsniff-ng util-linux procps ethtool tcpdump python3 udhcpc dhcpcd-base \
              iptables valgrind python3-matplotlib python3-scapy \
              qemu-system-x86 linux-image-amd64 busybox-static cpio iperf3 libnl-route-3-dev libnl-genl-3-dev containernetworking-plugins \
              etcd-server etcd-client
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)

.PHONY: all deps bpf build test unit-test integration-test demo bench bench-smoke install clean fuzz sanitize

all: build

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

bpf: $(BPF_OBJ)

$(BPF_OBJ): bpf/vnic.bpf.c bpf/vnic.shared.h
	@mkdir -p build
	$(CLANG) -O2 -g -Wall -target bpf -I$(ARCH_INC) -Ibpf -c bpf/vnic.bpf.c -o $@

build: deps bpf
	$(SWIFT) build -c release
	cp $(BPF_OBJ) "$(RELEASE_BIN)/vnic.bpf.o"

# Every test: unit tests and the integration tests against the real kernel
# (they use the release binaries built above).
test: build
	bash scripts/test.sh "$(RELEASE_BIN)"

demo: build
	bash scripts/demo.sh "$(RELEASE_BIN)"

build/malloc_count.so: bench/malloc_count.c
	@mkdir -p build
	gcc -O2 -shared -fPIC -o $@ $<

bench: build build/malloc_count.so
	bash bench/forwarding.sh "$(RELEASE_BIN)" --seconds 5 --runs 5
	bash bench/pipeline.sh "$(RELEASE_BIN)" --packets 5000000 --runs 5 --callgrind
	bash bench/config-bench.sh "$(RELEASE_BIN)" --runs 3
	bash bench/protocol.sh "$(RELEASE_BIN)" --count 300 --runs 5
	bash bench/fleet.sh "$(RELEASE_BIN)"
	bash bench/suite.sh "$(RELEASE_BIN)"
	bash bench/scale.sh "$(RELEASE_BIN)"

bench-smoke: build build/malloc_count.so
	bash bench/forwarding.sh "$(RELEASE_BIN)" --seconds 1 --runs 1 --out build/bench-smoke.json
	bash bench/pipeline.sh "$(RELEASE_BIN)" --packets 200000 --runs 1 --callgrind 10000 --out build/bench-smoke-pipeline.json
	bash bench/config-bench.sh "$(RELEASE_BIN)" --vnics 500 --runs 1 --out build/bench-smoke-config.json
	bash bench/protocol.sh "$(RELEASE_BIN)" --count 20 --runs 1 --out build/bench-smoke-protocol.json
	bash bench/fleet.sh "$(RELEASE_BIN)" --count 20 --vnics 100 --out build/bench-smoke-fleet.json
	bash bench/suite.sh "$(RELEASE_BIN)" --smoke
	bash bench/scale.sh "$(RELEASE_BIN)" --counts "1 10" --seconds 1 --out build/bench-smoke-scale.json

SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system

# Binaries, the BPF object, man pages and completions generated from the
# argument parsers, the systemd unit, and the system user it runs as.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/vnic
	install -m 0755 $(RELEASE_BIN)/vnicd $(RELEASE_BIN)/vnicadm $(RELEASE_BIN)/vnic-lab $(RELEASE_BIN)/vnic-pktgen $(RELEASE_BIN)/vnic-guest $(RELEASE_BIN)/vnic-cni $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BPF_OBJ) $(DESTDIR)$(PREFIX)/lib/vnic/vnic.bpf.o
	rm -rf build/docs && bash scripts/gen-docs.sh "$(RELEASE_BIN)" build/docs
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d \
	    $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	install -m 0644 build/docs/man8/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 build/docs/bash/* $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	install -m 0644 build/docs/zsh/_* $(DESTDIR)$(PREFIX)/share/zsh/site-functions/
	install -m 0644 build/docs/fish/*.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/
	sed 's|/usr/local/|$(PREFIX)/|g' contrib/vnicd.service > build/vnicd.service
	install -m 0644 build/vnicd.service $(DESTDIR)$(SYSTEMD_UNIT_DIR)/vnicd.service
	@if [ -n "$(DESTDIR)" ]; then \
	  echo "DESTDIR is set: user vnic is not created (create it where vnicd will run)"; \
	elif ! id vnic >/dev/null 2>&1; then \
	  useradd --system --user-group --no-create-home --home-dir /var/lib/vnic --shell /usr/sbin/nologin vnic; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

fuzz: deps
	bash scripts/fuzz.sh --seconds 60

sanitize: deps bpf
	bash scripts/sanitize.sh

clean:
	rm -rf build .build
