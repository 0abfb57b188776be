# vnic: make build | test | demo | bench | bench-smoke | install
# Each target installs the Debian packages it needs when they are missing.
SHELL      := /bin/bash
SWIFT      ?= swift
CLANG      ?= clang
PREFIX     ?= /usr/local
ARCH_INC   := /usr/include/$(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
BPF_OBJ    := build/vnic.bpf.o
DEB_PKGS   := libxdp-dev libbpf-dev liblmdb-dev libelf-dev zlib1g-dev iproute2 iputils-ping \
              netsniff-ng util-linux procps ethtool tcpdump
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)

.PHONY: all deps bpf build test unit-test integration-test demo bench bench-smoke install clean

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
	bash bench/pipeline.sh "$(RELEASE_BIN)" --packets 5000000 --runs 5
	bash bench/config-bench.sh "$(RELEASE_BIN)" --runs 3
	bash bench/protocol.sh "$(RELEASE_BIN)" --count 300 --runs 5

bench-smoke: build build/malloc_count.so
	bash bench/forwarding.sh "$(RELEASE_BIN)" --seconds 1 --runs 1 --out build/bench-smoke.json
	bash bench/pipeline.sh "$(RELEASE_BIN)" --packets 200000 --runs 1 --out build/bench-smoke-pipeline.json
	bash bench/config-bench.sh "$(RELEASE_BIN)" --vnics 500 --runs 1 --out build/bench-smoke-config.json
	bash bench/protocol.sh "$(RELEASE_BIN)" --count 20 --runs 1 --out build/bench-smoke-protocol.json

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/vnic
	install -m 0755 $(RELEASE_BIN)/vnicd $(RELEASE_BIN)/vnicadm $(RELEASE_BIN)/vnic-lab $(RELEASE_BIN)/vnic-pktgen $(RELEASE_BIN)/vnic-guest $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BPF_OBJ) $(DESTDIR)$(PREFIX)/lib/vnic/vnic.bpf.o

clean:
	rm -rf build .build
