# meshtls: two commands set it up and test it.
#   make setup   install Envoy 1.40 (bin/envoy), Go modules, a Docker engine if none answers
#   make test    lint (gofmt, vet, staticcheck), the unit tests under -race,
#                every test, unit and live (real Envoy in Docker), and the
#                differential against Istio's own config generator (oracle/),
#                static and live (the same pods under istiod's config)
GO ?= go
export TESTCONTAINERS_RYUK_DISABLED ?= true

.PHONY: setup test test-short test-stress lint race build bench fuzz test-envoy-versions oracle oracle-build oracle-test oracle-live

setup:
	bash scripts/setup.sh

# gofmt, go vet and staticcheck (pinned, installed into bin/ by make setup;
# deliberate reads of deprecated fields carry //lint:ignore with a reason).
STATICCHECK = $(CURDIR)/bin/staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd oracle && $(GO) vet ./...
	@test -x $(STATICCHECK) || { echo "bin/staticcheck is missing: run make setup"; exit 1; }
	$(STATICCHECK) ./...

# The unit tests under the race detector (-short skips the live tests), and
# the Runtime's concurrency contract live: checks while config is pushed.
race:
	$(GO) test -race -short -count=1 ./...
	$(GO) test -race -count=1 -run '^TestRuntimeConcurrentUse$$' ./harness/

# The oracle (module oracle/, Istio's config generator) is built first: the
# crosscheck tests compare every bundle with it.
test: lint race oracle-build
	MESHTLS_ORACLE=$(ORACLE) $(GO) test -count=1 -timeout 30m ./...

# Istio's own config generator as a program (docs/oracle.md). A separate
# module: its dependencies are Istio's, pinned by Istio, not ours.
ORACLE = $(CURDIR)/bin/meshtls-oracle
oracle-build:
	cd oracle && $(GO) build -o $(ORACLE) ./cmd/meshtls-oracle

# The static differential on BUNDLE (default: every bundle we ship); exit 1
# on a behavioural difference the allowlist does not explain.
oracle: oracle-build
	MESHTLS_ORACLE=$(ORACLE) $(GO) run ./cmd/meshtls oracle $(or $(BUNDLE),scenarios/testdata bench/matrix)

# The live differential alone: every shipped bundle on the same pods under
# meshtls's config and istiod's (docs/oracle.md); make test runs it too.
oracle-live: oracle-build
	MESHTLS_ORACLE=$(ORACLE) $(GO) test -count=1 -timeout 60m -run 'TestLiveDifferential|TestLiveSwitchACKs' ./crosscheck/

oracle-test: oracle-build
	MESHTLS_ORACLE=$(ORACLE) $(GO) test -count=1 ./crosscheck/

# make test RUNS times in a row (default 5) with every CPU saturated by
# stress-ng (scripts/stress-test.sh, which installs Debian's stress-ng when
# missing and run as root); on a machine no one else is using.
test-stress:
	bash scripts/stress-test.sh

# The quick local loop: unit tests only (live tests skip with -short).
test-short:
	$(GO) test -short ./...

build:
	mkdir -p bin
	$(GO) build -o bin/meshtls ./cmd/meshtls

# Figures, not assertions (BENCHMARKS.md): translating one sidecar's config in
# a 1,000-service mesh, then the live bench (cold start of 6 pods, the 64-check
# sidecar matrix of bench/matrix, marginal check, push-to-ACK for 6 proxies),
# each of RUNS (default 3) in a fresh process, medians printed; then the
# soak (SOAK=1000 sequential checks and 50 pushes on one mesh: control-plane
# goroutines, fds and heap before and after, and nothing left behind);
# then generated meshes of SCALE (default 10,50,100) sidecar pods: start,
# checks, where the start time and CPU went, memory per pod, and push-to-ACK
# of mesh-wide and one-workload changes; then the same generated mesh of
# SCALE_SCOPED (default 100) pods with each proxy scoped by Istio Sidecars.
# (SCALE is a variable: $(or) would split its commas into arguments.)
SCALE ?= 10,50,100
bench:
	$(GO) test -run '^$$' -bench BenchmarkTranslate1000Services -benchmem -count $(or $(RUNS),3) ./translate/
	$(GO) build -o bin/meshtls-bench ./cmd/meshtls-bench
	./bin/meshtls-bench -runs $(or $(RUNS),3)
	./bin/meshtls-bench -soak $(or $(SOAK),1000) -soak-pushes 50
	./bin/meshtls-bench -scale $(SCALE)
	./bin/meshtls-bench -scale $(or $(SCALE_SCOPED),100) -scale-scoped

# Every bundle of scenarios/testdata/ on each pinned Envoy release
# (docs/envoy-versions.md); prints the checks whose outcome differs.
# VERSIONS="1.36.4 1.40.0" limits the list.
test-envoy-versions: build
	bash scripts/envoy-versions.sh
