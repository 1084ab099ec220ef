# meshtls: two commands set it up and test it.
#   make setup   install Envoy 1.40 (bin/envoy), Go modules, a Docker engine if none answers
#   make test    every test, unit and live (real Envoy in Docker)
GO ?= go
export TESTCONTAINERS_RYUK_DISABLED ?= true

.PHONY: setup test test-short lint build bench fuzz

setup:
	bash scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint
	$(GO) test -count=1 -timeout 30m ./...

# The quick local loop: unit tests only (live tests skip with -short).
test-short:
	$(GO) test -short ./...

build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -o bin/meshtls-pod ./cmd/meshtls-pod
	$(GO) build -o bin/meshtls ./cmd/meshtls
