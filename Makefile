# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: build test vet e2e bench fuzz

# A static binary (no cgo: Go's own DNS resolver, no libc mapped) without
# urfave/cli's man-page and Markdown generators, which it never uses: both
# keep the resident code and the heap smaller (README "Performance").
BUILDFLAGS ?= -tags urfave_cli_no_docs
build:
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o bin/cassetteproxy ./cmd/cassetteproxy

vet:
	$(GO) vet ./...

# Unit and end-to-end tests, with the race detector; then the end-to-end
# run, replay and monitor tests again with network isolation forced on and
# off (the first pass isolates replay and strict runs where it can: as root,
# always).
E2E_RUNS = 'Run|Replay|Monitor|Fixture|Isolat'
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...
	CASSETTEPROXY_ISOLATE=on $(GO) test -count=1 -timeout 10m -run $(E2E_RUNS) ./e2e/
	CASSETTEPROXY_ISOLATE=off $(GO) test -count=1 -timeout 10m -run $(E2E_RUNS) ./e2e/

e2e:
	$(GO) test -count=1 -v ./e2e/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Load harness, quick mode (CI): prints the Markdown table, asserts no timings.
.PHONY: bench-quick
bench-quick:
	GO="$(GO)" bench/run.sh --quick

# HTTP/2 replay throughput with h2load (nghttp2-client), quick mode (CI).
.PHONY: bench-h2-quick
bench-h2-quick:
	GO="$(GO)" bench/h2.sh -n 5000 -rounds 1
