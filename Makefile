# HSRCPAY API-key service. `make run` serves a sandbox demo; `make test` runs every test.
SHELL := bash
GO    ?= go
OAPI  := $(GO) run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen

.PHONY: all generate check-generate build run test vet services-note

all: check-generate test

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

## build: compile the server into bin/
build:
	$(GO) build -o bin/hsrcpay-server ./cmd/hsrcpay-server

## run: serve on 127.0.0.1:8080 with SQLite in ./data and a sandbox demo account
run: build
	HSRCPAY_DEMO_ACCOUNT=$${HSRCPAY_DEMO_ACCOUNT:-acct_demo} ./bin/hsrcpay-server serve

vet:
	$(GO) vet ./...

# Says up front which backing services are missing, so skipped tests are no surprise.
services-note:
	@for svc in PostgreSQL:5432 Redis:6379; do \
	  name=$${svc%%:*}; port=$${svc##*:}; \
	  if ! (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null; then \
	    echo "NOTE: $$name is not reachable on 127.0.0.1:$$port: tests that need it will be SKIPPED (go test -v shows each SKIP)"; \
	  fi; \
	done

## test: vet and run every test (end-to-end through the client on real stores)
test: services-note vet
	$(GO) test -count=1 ./...
