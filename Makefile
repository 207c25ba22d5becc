# concierge — proxy-wasm HTTP filters in Go.
# `make` builds every plugin; `make test` is what CI runs.

GO       ?= go
PLUGINS  := $(notdir $(patsubst %/,%,$(wildcard plugins/*/)))
WASM     := $(addprefix build/,$(addsuffix .wasm,$(PLUGINS)))
GOFILES  := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null)

.PHONY: all build test test-native vet-wasm test-race bench fmt vet tidy clean

all: build

build: $(WASM)

build/%.wasm: $(GOFILES) go.mod go.sum
	@mkdir -p build
	@echo "== building $@"
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $@ ./plugins/$*

# The whole suite: native tests, every plugin as compiled .wasm in hosttest.
# `go test -vet=all` vets each package in the same compile as its tests (one
# pass instead of a separate `go vet ./...`); the wasm-side vet runs beside it.
test:
	@echo "== make test: vet + tests. A first run on an empty cache compiles Envoy's protos, wazero and every plugin (about 5 minutes on 2 cores); a warm run takes about 2."
	@$(MAKE) --no-print-directory -j2 test-native vet-wasm

test-native:
	@echo "== go vet: the packages without tests"
	$(GO) vet $$($(GO) list -f '{{if not (or .TestGoFiles .XTestGoFiles)}}{{.ImportPath}}{{end}}' ./...)
	@echo "== go test -vet=all ./... (native tests, and each plugin as .wasm through hosttest)"
	$(GO) test -count=1 -vet=all ./...

# The host side under the race detector (worker VMs run in parallel).
test-race:
	$(GO) test -count=1 -race ./hosttest/...

# Speed and memory live in benchmarks, never in timed tests.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -s -w $$(git ls-files '*.go')

# Plugins and shared packages are also vetted as the wasm they become; the
# test plugins under testdata are invisible to ./... patterns, so each is named.
vet: vet-wasm
	$(GO) vet ./...

vet-wasm:
	@echo "== go vet for GOOS=wasip1 (the plugins and shared packages as the wasm they become)"
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugins/... ./shared/... $(addprefix ./,$(wildcard hosttest/testdata/*/))

clean:
	rm -rf build/*.wasm build/oci

# --- The local gateway, OCI images and load (issue 3) ---------------------
# make run    builds the filters, starts the demo services on loopback and
#             concierge-gateway on 127.0.0.1:8080 serving envoy/local.yaml,
#             and prints a demo token and curl lines to try.
# make oci    packages each build/<name>.wasm as an OCI image layout under
#             build/oci/<name>/ that Istio's WasmPlugin fetcher accepts
#             (tag: OCI_TAG; push with crane/skopeo/oras).
# make load   drives the gateway with a bounded Go load generator: req/s and
#             latency percentiles without filters, with each filter alone,
#             and with all of them, beside a plain reverse proxy (Go's
#             httputil.ReverseProxy; nginx too when on PATH), in interleaved
#             rounds (median, min-max). LOAD_FLAGS='-concurrency 1,2,4'
#             shows worker scaling; -rounds, -duration, -cpuprofile.
#             Not part of `make test`.
# make envoy  runs the real Envoy (if on PATH) with envoy/local.yaml in
#             front of the same demo services. Documented; not run in CI.
OCI_TAG ?= dev
LOAD_FLAGS ?=
# PORT_OFFSET moves every port of the tour together: make run PORT_OFFSET=1000
# serves the gateway on 9080 and admin on 10901.
PORT_OFFSET ?= $(or $(CONCIERGE_PORT_OFFSET),0)

.PHONY: run oci load envoy cache-tests

# A built binary, not `go run`: go run exits 1 on Ctrl-C whatever its child
# does, and the demo's own exit status is 0 on a clean stop.
run: build
	@echo "== building concierge-demo (the first build compiles Envoy's protos and wazero: a minute or two)"
	$(GO) build -o build/concierge-demo ./hosttest/cmd/concierge-demo
	./build/concierge-demo -c envoy/local.yaml --port-offset $(PORT_OFFSET)

oci: build
	$(GO) run ./hosttest/cmd/ocipack -out build/oci -tag $(OCI_TAG) $(WASM)

load: build
	$(GO) run ./hosttest/cmd/concierge-load $(LOAD_FLAGS)

envoy: build
	@command -v envoy >/dev/null 2>&1 || { echo "envoy is not on PATH: install Envoy (1.33 or later) to run envoy/local.yaml with it; make run serves the same file with concierge-gateway"; exit 1; }
	$(GO) build -o build/concierge-demo ./hosttest/cmd/concierge-demo
	./build/concierge-demo --services-only & demo=$$!; trap 'kill $$demo' EXIT INT TERM; envoy -c envoy/local.yaml --concurrency 2

# make ratelimit-e2e  rate-limit's global mode for real: redis-server and
#             Envoy's reference rate limit service (the `ratelimit` binary of
#             github.com/envoyproxy/ratelimit) on loopback, two gateway
#             replicas pointed at it, and a client alternating between them,
#             limited by the shared count. Needs both binaries on PATH;
#             documented in plugins/rate-limit/README.md. Not run in CI.
.PHONY: ratelimit-e2e
ratelimit-e2e: build
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is not on PATH: apt-get install redis-server (Debian)"; exit 1; }
	@command -v ratelimit >/dev/null 2>&1 || { echo "ratelimit is not on PATH: build it from github.com/envoyproxy/ratelimit (go build -o ratelimit ./src/service_cmd) and put it on PATH"; exit 1; }
	$(GO) run ./hosttest/cmd/ratelimit-e2e

# make cache-tests  runs the public HTTP cache test suite (npm
#             http-cache-tests@0.4.5) against response-cache behind the
#             local gateway and prints pass counts by kind beside the
#             published results of other caches. Needs node and npm; not
#             part of `make test`. CACHE_TESTS_FLAGS: -config '{...}'.
CACHE_TESTS_FLAGS ?=
cache-tests: build/response-cache.wasm
	$(GO) run ./hosttest/cmd/concierge-cachetests $(CACHE_TESTS_FLAGS)

# make sdk-examples SDK=/path/to/proxy-wasm-go-sdk  runs the Go SDK's own
#             e2e tests (written against Envoy) with concierge-gateway as
#             "envoy": every example built and served with its envoy.yaml
#             unmodified, in a private network namespace (Linux, unshare)
#             with a local httpbin.org stand-in. SDK_RUN narrows the tests
#             (a go test -run regexp). Not run in CI (see RATIONALE.md).
SDK ?=
SDK_RUN ?=
.PHONY: sdk-examples
sdk-examples:
	@test -n "$(SDK)" || { echo "usage: make sdk-examples SDK=/path/to/a/clone/of/proxy-wasm-go-sdk"; exit 2; }
	$(GO) build -o build/sdk-examples ./hosttest/cmd/sdk-examples
	./build/sdk-examples -sdk "$(SDK)" $(if $(SDK_RUN),-run '$(SDK_RUN)')
