# HSRCPAY API-key service. Plain `make` = `make all` (check-generate, then test); `make run` serves a sandbox demo;
# `make help` lists every target with its `## ` comment.
SHELL := bash
GO    ?= go
OAPI  := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen

.PHONY: all help generate check-generate build run test test-race vet lint services-note fuzz check-observability

# golangci-lint, pinned; `make lint` installs it into bin/ when missing or not this version.
GOLANGCI_LINT_VERSION := v2.6.2
GOLANGCI_LINT         := $(CURDIR)/bin/golangci-lint

## all: what plain `make` does: check-generate, then test (vet and every test)
all: check-generate test

## help: list the targets and what each does (from their ## comments)
help:
	@echo "usage: make [TARGET ...]   (plain 'make' runs 'all')"
	@awk '/^## [A-Za-z0-9_.-]+: / { line = substr($$0, 4); i = index(line, ": "); \
	  printf "  %-16s %s\n", substr(line, 1, i - 1), substr(line, i + 2) }' $(MAKEFILE_LIST)

## generate: regenerate gen/api (server side) and client/oapi (client side) from openapi.yaml
generate:
	$(OAPI) -config oapi-codegen.yaml openapi.yaml
	$(OAPI) -config client/oapi/oapi-codegen.yaml openapi.yaml

## check-generate: fail if the committed generated code differs from what openapi.yaml produces
check-generate: generate
	@changes="$$(git status --porcelain -- gen client)"; \
	if [ -n "$$changes" ]; then \
	  echo "Generated code is out of date with openapi.yaml (run 'make generate' and commit):"; \
	  echo "$$changes"; git --no-pager diff --stat -- gen client; exit 1; \
	fi; echo "generated code is up to date"

# The version the binaries report (version, --version, the start log line, hsrcpay_build_info):
# `git describe --tags --always --dirty` when a tag precedes HEAD, else dev+<commit>[-dirty]; and the
# commit. Stamped with -ldflags -X into internal/buildinfo (go build records no VCS revision in a git
# worktree, and "(devel)" as the version of any build from a checkout). Override: make build BUILD_VERSION=v1.2.3.
# BIN_DIR: where build puts the binaries (the version test builds into a temporary directory).
BUILD_VERSION  ?= $(shell v=$$(git describe --tags --dirty 2>/dev/null) && echo "$$v" || echo "dev+$$(git describe --always --dirty 2>/dev/null || echo unknown)")
BUILD_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_LDFLAGS  := -X github.com/hsrcpay/apikeys/internal/buildinfo.version=$(BUILD_VERSION) -X github.com/hsrcpay/apikeys/internal/buildinfo.revision=$(BUILD_REVISION)
BIN_DIR        ?= bin

## build: compile the server and the hsrcpay CLI into bin/, stamped with the version (git describe) and commit
build:
	$(GO) build -ldflags '$(BUILD_LDFLAGS)' -o $(BIN_DIR)/hsrcpay-server ./cmd/hsrcpay-server
	$(GO) build -ldflags '$(BUILD_LDFLAGS)' -o $(BIN_DIR)/hsrcpay ./cmd/hsrcpay

## run: serve on 127.0.0.1:8080 with SQLite in ./data and a sandbox demo account
run: build
	HSRCPAY_DEMO_ACCOUNT=$${HSRCPAY_DEMO_ACCOUNT:-acct_demo} ./bin/hsrcpay-server serve

## vet: go vet every package
vet:
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml (the pinned version, installed into bin/ on first use); fails on any finding
lint:
	@$(GO) version -m $(GOLANGCI_LINT) 2>/dev/null | grep -Eq '^[[:space:]]+mod[[:space:]]+github\.com/golangci/golangci-lint/v2[[:space:]]+$(GOLANGCI_LINT_VERSION)([[:space:]]|$$)' || { \
	  echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into bin/"; \
	  GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); }
	$(GOLANGCI_LINT) run ./...

## services-note: say up front which backing services (PostgreSQL, Redis) are unreachable, so skipped tests are no surprise
services-note:
	@for svc in PostgreSQL:5432:HSRCPAY_TEST_POSTGRES_URL Redis:6379:HSRCPAY_TEST_REDIS_URL; do \
	  IFS=: read -r name port var <<< "$$svc"; \
	  if [ -n "$${!var:-}" ]; then continue; fi; \
	  if ! (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "NOTE: $$name is not reachable on 127.0.0.1:$$port (set $$var to use another): tests that need it will be SKIPPED (listed at the end)"; \
	  fi; \
	done

## test: vet and run every test (end-to-end through the client on real stores), then list every skipped test and why
# go test -json through internal/testsummary: the same ok/FAIL lines and failures as plain go test,
# then each skipped test with its message and "tests: N passed, N failed, N skipped"; it fails the
# run when a test skipped for a service a HSRCPAY_REQUIRE_* switch makes mandatory.
test: services-note vet
	@$(GO) build -o bin/testsummary ./internal/testsummary
	set -o pipefail; $(GO) test -count=1 -json ./... | bin/testsummary

## test-race: every test again under the race detector (go test -race; RACE_PKGS=./server for some packages only); fails on any data race
# The concurrency tests (credential cache, SQLite writer, idempotency claims,
# budgets, usage tracker, log writer) check final states, which a data race
# can leave right; -race reports the race itself. Every package: ./server alone
# takes 3-6 minutes under -race on 2 cores, hence a timeout above go test's 10m.
RACE_PKGS ?= ./...
test-race: services-note
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

## check-observability: promtool check rules on deploy/observability/alerts.yaml (installs Debian's prometheus package for promtool when missing); the metric names the rules and the dashboard use are held to /metrics by TestObservabilityMetricNames (make test)
check-observability:
	@command -v promtool >/dev/null || { echo "installing promtool (Debian's prometheus package)"; \
	  apt-get install -y -qq prometheus >/dev/null || { apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }; }
	promtool check rules deploy/observability/alerts.yaml

## fuzz: run every go test -fuzz target for FUZZTIME each (default 10s); fails on a crasher
fuzz:
	FUZZTIME=$${FUZZTIME:-10s} .ci/fuzz.sh

# =============================================================================================
# Spec gates (issue 4): Spectral lint, oasdiff breaking-change check and changelog, TypeScript
# types. Node tools are pinned in .ci/spec/package.json (+ lock) and installed by `npm ci` into
# .ci/spec/node_modules on first use; oasdiff is pinned below and installed into ./bin on first
# use. Override SPEC to check another file, e.g. `make lint-spec SPEC=/tmp/x.yaml`.
# How to release a baseline or accept a breaking change: .ci/spec/README.md.
# =============================================================================================
SPEC            ?= $(CURDIR)/openapi.yaml
SPEC_BASELINE   ?= $(CURDIR)/.ci/spec/released/openapi.yaml
BREAKING_IGNORE ?= $(CURDIR)/.ci/spec/breaking-ignore.txt
OASDIFF_VERSION := v1.33.0
OASDIFF         := $(CURDIR)/bin/oasdiff
SPEC_CI         := $(CURDIR)/.ci/spec
SPEC_NODE_BIN   := $(SPEC_CI)/node_modules/.bin
SPEC_NODE_STAMP := $(SPEC_CI)/node_modules/.hsrcpay-installed

.PHONY: lint-spec breaking changelog release-spec spec-selftest ts-check spec-oasdiff

# Pinned Node tools (Spectral, openapi-typescript, TypeScript); reinstalled when the lock changes.
$(SPEC_NODE_STAMP): $(SPEC_CI)/package.json $(SPEC_CI)/package-lock.json
	cd $(SPEC_CI) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

## spec-oasdiff: install the pinned oasdiff into bin/ when it is missing or not the pinned version
spec-oasdiff:
	@$(GO) version -m $(OASDIFF) 2>/dev/null | grep -Eq '^[[:space:]]+mod[[:space:]]+github\.com/oasdiff/oasdiff[[:space:]]+$(OASDIFF_VERSION)([[:space:]]|$$)' || { \
	  echo "installing oasdiff $(OASDIFF_VERSION) into bin/"; \
	  GOBIN=$(CURDIR)/bin $(GO) install github.com/oasdiff/oasdiff@$(OASDIFF_VERSION); }

## lint-spec: Spectral with .spectral.yaml on $(SPEC); fails on any warning or error
lint-spec: $(SPEC_NODE_STAMP)
	$(SPEC_NODE_BIN)/spectral lint --ruleset $(CURDIR)/.spectral.yaml --fail-severity=warn $(SPEC)

## breaking: fail if $(SPEC) breaks clients of the released spec (except changes accepted in .ci/spec/breaking-ignore.txt; new error codes are additive)
breaking: spec-oasdiff
	set -o pipefail; $(OASDIFF) breaking --format json --err-ignore $(BREAKING_IGNORE) $(SPEC_BASELINE) $(SPEC) | $(GO) run ./.ci/spec/breakingfilter
	@echo "no unaccepted breaking changes against $(SPEC_BASELINE)"

## changelog: human-readable changes from the released spec to $(SPEC)
changelog: spec-oasdiff
	$(OASDIFF) changelog $(SPEC_BASELINE) $(SPEC)

## release-spec: make $(SPEC) the released baseline (needs a new info.version) and empty breaking-ignore.txt
release-spec: lint-spec breaking
	@ver() { awk '/^info:/{i=1;next} i&&/^[^ ]/{exit} i&&/^  version:/{gsub(/["'\'']/,"",$$2);print $$2;exit}' "$$1"; }; \
	new="$$(ver $(SPEC))"; old="$$(ver $(SPEC_BASELINE))"; \
	if ! cmp -s $(SPEC) $(SPEC_BASELINE) && [ "$$new" = "$$old" ]; then \
	  echo "release-spec: the spec changed but info.version is still $$old; bump it first"; exit 1; fi; \
	cp $(SPEC) $(SPEC_BASELINE); \
	grep '^#' $(BREAKING_IGNORE) > $(BREAKING_IGNORE).tmp || true; mv $(BREAKING_IGNORE).tmp $(BREAKING_IGNORE); \
	echo "released $$new as the baseline $(SPEC_BASELINE) and emptied $(BREAKING_IGNORE): commit both"

## spec-selftest: prove lint-spec and breaking fail on deliberately broken copies of $(SPEC) and pass on it
spec-selftest: $(SPEC_NODE_STAMP) spec-oasdiff
	MAKE="$(MAKE)" bash $(SPEC_CI)/selftest.sh $(SPEC)

## ts-check: generate TypeScript types from $(SPEC) (openapi-typescript) and type-check .ci/spec/ts/check.ts
ts-check: $(SPEC_NODE_STAMP)
	$(SPEC_NODE_BIN)/openapi-typescript $(SPEC) --default-non-nullable false -o $(SPEC_CI)/ts/gen/schema.d.ts
	$(SPEC_NODE_BIN)/tsc --strict --noEmit -p $(SPEC_CI)/ts

# =============================================================================================
# Benchmarks (issues 5 and 11). Not part of `make test`. `make bench` = in-process Go benchmarks
# (bench_test.go in internal/keys, internal/perm, internal/auth, internal/store/sqlite, server;
# ns/op, cpu-ns/op, allocs/op) then the loopback wrk load test (.ci/bench/load.sh), which prints
# one table: every scenario (baseline, create, regenerate, regenerate_many, rejected_401/403,
# verify, create_validated) on SQLite and PostgreSQL with requests/s, p50, p99, ratio to the bare
# Echo baseline, server CPU, bytes and allocations per request and the target, plus the
# cross-replica revocation delay (two replicas, PostgreSQL, Redis). Median of RUNS=3 runs of
# DURATION=4s, about 4-5 minutes; QUICK=1 (one 2s run) for a smoke test; STORES=sqlite without
# PostgreSQL; STRICT=1 exits 1 on a missed target. Installs wrk with apt-get if missing.
# Numbers are only comparable on an otherwise idle machine: check `uptime` first.
# `make bench-profile SCENARIO=create` writes a CPU profile of the server under load.
# =============================================================================================
BENCHTIME ?= 1s
SCENARIO  ?= create

.PHONY: bench bench-go bench-load bench-profile

## bench: Go benchmarks of the request path's pieces, then the wrk load test (one table, SQLite and PostgreSQL)
bench: bench-go bench-load

## bench-go: in-process benchmarks only (BENCHTIME=1s each; about a minute)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) -timeout 10m ./internal/... ./server/

## bench-load: wrk against a bare-Echo baseline and the real server on SQLite and PostgreSQL, plus the revocation delay (RUNS=3 DURATION=4s; QUICK=1 STORES=sqlite STRICT=1)
bench-load:
	bash .ci/bench/load.sh

## bench-profile: CPU/block profile of the server under wrk load (SCENARIO=create|regenerate|rejected_401|rejected_403|verify)
bench-profile:
	bash .ci/bench/profile.sh $(SCENARIO) 10

# =============================================================================================
# Deployment (issue 20): the container image, the Helm chart, the compose file (deploy/).
# `make image` builds the static binary (CGO_ENABLED=0: modernc SQLite is pure Go), assembles
# the build context in IMAGE_CTX and builds deploy/Containerfile FROM scratch with podman (Debian's,
# installed with apt-get when missing; nothing is pulled), tagged IMAGE:IMAGE_TAG (git describe).
# `make chart-check` lints and renders deploy/helm/hsrcpay with the pinned Helm (built into bin/
# on first use) and runs the Go tests that read the rendered manifests and deploy/compose.yaml.
# =============================================================================================
IMAGE        ?= localhost/hsrcpay-server
IMAGE_TAG    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_CTX    ?= $(CURDIR)/bin/image
PODMAN       ?= podman
CA_BUNDLE    := /etc/ssl/certs/ca-certificates.crt
HELM_VERSION := v4.3.2
HELM         := $(CURDIR)/bin/helm
CHART        := $(CURDIR)/deploy/helm/hsrcpay

.PHONY: image image-tools helm chart-check

## image-tools: install podman and Debian's CA bundle with apt-get when missing (the image copies the bundle)
image-tools:
	@command -v $(PODMAN) >/dev/null 2>&1 || { echo "installing podman (apt-get)"; \
	  apt-get install -y podman || { apt-get update && apt-get install -y podman; }; }
	@test -s $(CA_BUNDLE) || { echo "installing ca-certificates (apt-get)"; \
	  apt-get install -y ca-certificates || { apt-get update && apt-get install -y ca-certificates; }; }

## image: the server's image FROM scratch (static binary, CA bundle, uid 65532, no shell) as IMAGE:IMAGE_TAG
image: image-tools
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/data-root/data $(IMAGE_CTX)/tmp-root/tmp
	chmod 0700 $(IMAGE_CTX)/data-root/data && chmod 1777 $(IMAGE_CTX)/tmp-root/tmp # see deploy/Containerfile
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGE_CTX)/hsrcpay-server ./cmd/hsrcpay-server
	cp $(CA_BUNDLE) $(IMAGE_CTX)/ca-certificates.crt
	cp deploy/image/passwd deploy/image/group $(IMAGE_CTX)/
	$(PODMAN) build --quiet --layers=false --file deploy/Containerfile \
	  --build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
	  --tag $(IMAGE):$(IMAGE_TAG) $(IMAGE_CTX)
	@echo "built $(IMAGE):$(IMAGE_TAG)"

## helm: install the pinned Helm into bin/ when it is missing or not this version
helm:
	@$(GO) version -m $(HELM) 2>/dev/null | grep -Eq '^[[:space:]]+mod[[:space:]]+helm\.sh/helm/v4[[:space:]]+$(HELM_VERSION)([[:space:]]|$$)' || { \
	  echo "installing helm $(HELM_VERSION) into bin/"; \
	  GOBIN=$(CURDIR)/bin $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION); }

## chart-check: helm lint and helm template of deploy/helm/hsrcpay, then the tests of the rendered chart and deploy/compose.yaml
chart-check: helm
	$(HELM) lint --strict $(CHART) -f $(CHART)/ci/test-values.yaml
	$(HELM) template hsrcpay $(CHART) -f $(CHART)/ci/test-values.yaml > /dev/null
	HSRCPAY_HELM=$(HELM) HSRCPAY_REQUIRE_HELM=1 $(GO) test -count=1 ./deploy -run 'TestChart|TestCompose'
