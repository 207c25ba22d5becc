# concierge — proxy-wasm HTTP filters in Go.
# `make` builds every plugin; `make test` is what CI runs.

GO       ?= go
PLUGINS  := $(notdir $(patsubst %/,%,$(wildcard plugins/*/)))
WASM     := $(addprefix build/,$(addsuffix .wasm,$(PLUGINS)))
GOFILES  := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null)

.PHONY: all build test test-race bench fmt vet tidy clean

all: build

build: $(WASM)

build/%.wasm: $(GOFILES) go.mod go.sum
	@mkdir -p build
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o $@ ./plugins/$*

# The whole suite: native tests, every plugin as compiled .wasm in hosttest.
test: vet
	$(GO) test -count=1 ./...

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
vet:
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugins/... ./shared/... $(addprefix ./,$(wildcard hosttest/testdata/*/))

clean:
	rm -rf build/*.wasm build/oci
