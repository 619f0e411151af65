# berth build. `make` builds bin/berth and bin/berth-runtime; `make test` is the
# test command the README and CI use.
GO       ?= go
CC       ?= gcc
# The monitor (one per container) and the --init reaper are static C. With
# musl (Debian's musl-tools) they start in a quarter of glibc's time: static
# glibc probes CPU features (cpuid, which traps in some VMs), runs tunables
# and IRELATIVE relocations at every exec. Falls back to $(CC).
HELPER_CC ?= $(shell command -v musl-gcc 2>/dev/null || echo $(CC))
PREFIX   ?= /usr/local
VERSION  ?= 0.1.0-dev
# empty outside a git checkout (not "-dirty" alone)
COMMIT   ?= $(shell c=$$(git rev-parse --short HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null && echo $$c || echo $$c-dirty; })
BUILT    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VPKG     := github.com/berth-dev/berth/internal/version
LDFLAGS  := -s -w -X $(VPKG).Version=$(VERSION) -X $(VPKG).GitCommit=$(COMMIT) -X $(VPKG).BuildTime=$(BUILT)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'

# berth-runtime's C parts (nsexec and the C init) are all that runs in a
# container's init before it execs the container's process; with musl the
# init skips glibc's static start too. musl-gcc sees musl's headers only:
# the kernel's (linux-libc-dev) come in through a directory of links.
ifneq ($(findstring musl,$(HELPER_CC)),)
KHDR        := $(CURDIR)/bin/.kernel-headers
RUNTIME_CGO := CC=$(HELPER_CC) CGO_CFLAGS="-O2 -isystem $(KHDR)"
endif

.PHONY: all build install deps test test-short lint bench clean

all: build

# The CLI is pure Go (CGO_ENABLED=0): a static binary that starts without
# the dynamic loader. berthd (the daemon, run by `berth daemon`) links the
# runtime's C parts.
build:
ifdef KHDR
	mkdir -p $(KHDR)
	ln -sfn /usr/include/linux $(KHDR)/linux
	ln -sfn /usr/include/asm-generic $(KHDR)/asm-generic
	ln -sfn /usr/include/$$($(CC) -print-multiarch)/asm $(KHDR)/asm
endif
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o bin/berth ./cmd/berth
	$(GO) build $(GOFLAGS_BUILD) -o bin/berthd ./cmd/berthd
	$(RUNTIME_CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS) -extldflags=-static' -o bin/berth-runtime ./cmd/berth-runtime
	$(HELPER_CC) -O2 -static -Wall -Wextra -o bin/berth-monitor internal/monitor/cmonitor/monitor.c
	$(HELPER_CC) -O2 -static -Wall -Wextra -o bin/berth-init internal/monitor/cinit/init.c

# deps installs the build and test dependencies from Debian (root).
deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		gcc make libc6-dev libseccomp-dev pkg-config busybox-static ca-certificates git musl-tools

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -m 0755 bin/berthd $(DESTDIR)$(PREFIX)/bin/berthd
	install -m 0755 bin/berth-runtime $(DESTDIR)$(PREFIX)/bin/berth-runtime
	install -m 0755 bin/berth-monitor $(DESTDIR)$(PREFIX)/bin/berth-monitor
	install -m 0755 bin/berth-init $(DESTDIR)$(PREFIX)/bin/berth-init

# test runs every test; tests needing root or a kernel feature skip themselves
# with the reason when it is absent. CI runs this as root.
test: build
	BERTH_BIN=$(CURDIR)/bin $(GO) test -race -count=1 -timeout 40m ./...

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@test -z "$$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: build
	bash bench/runtime.sh

clean:
	rm -rf bin
