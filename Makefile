# feedpipe — every target installs what it needs (Go modules, the emulators'
# Python venv) idempotently, so each works on a fresh clone.
SHELL := /bin/bash
GO ?= go
# The embedded Temporal server is a large build; it is excluded from the race
# build (it has no tests of its own: integration/ drives the built binary).
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /integration -e /cmd/devtemporal -e /internal/temporaldev)

.PHONY: all venv build devtemporal browser test test-unit test-integration test-containers test-demo-busy test-chaos lint stack demo load chaos histories clean

all: build

venv:
	@bash scripts/venv.sh

build:
	$(GO) build ./...

# The Temporal server + UI binary the local stack runs (cold build: minutes; cached after).
devtemporal:
	$(GO) build -o bin/devtemporal ./cmd/devtemporal

# gofmt, go vet, and cfn-lint on the CloudFormation template.
lint: venv
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	.venv/bin/cfn-lint deploy/aws.yaml

test-unit: venv
	$(GO) test -race -count=1 $(UNIT_PKGS)

# Headless Chromium and Prometheus for the integration tests that draw the
# Web UI and the dashboard's queries (integration/ui_test.go), from Debian.
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	@command -v prometheus >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

test-integration: venv devtemporal browser
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) test -race -count=1 -timeout 30m ./integration/...

# The integration tests that run on the container stack too (the clean feed,
# bad lines, the worker killed in each long stage, the stack's own check),
# against the services of docker-compose.yml started by testcontainers-go
# (FEEDPIPE_STACK=containers). Fails if a container or network of the run
# is left afterwards (each carries the run's session label).
test-containers: images
	@session=make-$$$$-$$(date +%s); \
	FEEDPIPE_STACK=containers FEEDPIPE_CONTAINERS_SESSION=$$session TESTCONTAINERS_RYUK_DISABLED=true \
	  $(GO) test -race -count=1 -timeout 30m ./integration/...; rc=$$?; \
	label=io.feedpipe.integration.session=$$session; \
	left=$$(docker ps -aq --filter label=$$label; docker network ls -q --filter label=$$label); \
	if [ -n "$$left" ]; then echo "test-containers: left after the run:"; docker ps -a --filter label=$$label; docker network ls --filter label=$$label; exit 1; fi; \
	echo "test-containers: no container or network of the run is left (docker ps -a: $$(docker ps -aq | wc -l) containers in all)"; exit $$rc

# The demo, as shipped, on a machine kept busy by two CPU hogs.
test-demo-busy: venv devtemporal
	@bash scripts/demo-busy.sh

# A representative part of make chaos, as shipped: a Temporal restart, the
# event faults, a source overwritten while its runs read it, two versions of
# a key confirmed together (replace), and kills inside held writes (proxy).
CHAOS_IN_TEST = temporal-restart,duplicate-events,out-of-order,overwrite-mid-put,new-version,kills-mid-write
test-chaos: venv devtemporal
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) run ./cmd/chaos -faults $(CHAOS_IN_TEST) -run-dir .run/test-chaos

# Everything: format and vet, unit tests with the race detector, the
# integration tests against the local stack (Temporal, MiniStack, fakesnow)
# as processes and then as containers, the demo on a busy machine, then part
# of make chaos.
test: lint build test-unit test-integration test-containers test-demo-busy test-chaos

# Run the local stack in the foreground; Ctrl-C stops it.
stack: venv devtemporal
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) run ./cmd/devstack $(STACK_ARGS)

demo: venv devtemporal
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) run ./cmd/demo $(DEMO_ARGS)

# N feeds at once through the real event path, each reconciled; prints
# per-stage p50/p95, staging reads per feed, worker RSS and a LOAD line.
FEEDS ?= 12
RECORDS ?= 5000
load: venv devtemporal
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) run ./cmd/demo -feeds $(FEEDS) -records $(RECORDS) -bad-every 1000 -run-dir .run/load $(LOAD_ARGS)

# Faults injected into the real binaries on the local stack (see cmd/chaos):
# prints a table and a CHAOS line; fails if a feed is lost, doubled or stuck.
# CHAOS_ARGS='-faults worker-kills,temporal-restart' runs some; -list names them.
chaos: venv devtemporal
	FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) run ./cmd/chaos $(CHAOS_ARGS)

clean:
	rm -rf bin .run

# Record the workflow histories the replay tests replay, after an intended
# change to FeedWorkflow's commands, as a new version of the replay corpus:
# workflows/testdata/histories/$(HISTORY_VERSION)/ (commit it). Recorded
# versions are never overwritten; name the version after the change, e.g.
# make histories HISTORY_VERSION=supersede-v2.
# Checked before the prerequisites, which can take minutes on a fresh clone.
histories-version:
	@if [ -z "$(HISTORY_VERSION)" ]; then \
	  echo "make histories needs HISTORY_VERSION=name: the new version's directory under workflows/testdata/histories/ (existing: $$(ls workflows/testdata/histories | tr '\n' ' '))" >&2; exit 2; fi
	@if [ -e "workflows/testdata/histories/$(HISTORY_VERSION)" ]; then \
	  echo "workflows/testdata/histories/$(HISTORY_VERSION) already exists: recorded versions are never overwritten; choose a new HISTORY_VERSION" >&2; exit 2; fi

histories: histories-version venv devtemporal
	FEEDPIPE_RECORD_HISTORIES=1 FEEDPIPE_HISTORY_VERSION='$(HISTORY_VERSION)' FEEDPIPE_DEVTEMPORAL=$(CURDIR)/bin/devtemporal $(GO) test -count=1 -timeout 30m \
	  -run 'TestFeed(CleanLandsIntact|OverThreshold|WorkerKilled|GlueModeLands)|TestCancelledRunCleansUp' ./integration/

# Container images of every part (docker/*.Dockerfile) for docker-compose.yml,
# built FROM a debootstrap base (no image registry): scripts/docker.sh installs
# Docker Engine from Debian and starts dockerd if needed (stop it with
# `scripts/docker.sh stop`). compose-up starts the stack, compose-down removes
# it with its volumes.
.PHONY: images compose-up compose-down
images:
	@bash scripts/docker.sh images

compose-up: images
	@bash scripts/docker.sh compose up -d

compose-down:
	@bash scripts/docker.sh compose down -v
