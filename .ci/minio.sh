#!/usr/bin/env bash
# .ci/minio.sh: build, start and stop the pinned MinIO server for Vigil's integration tests.
#
# Sourced (this is how .ci/run uses it):
#     source .ci/minio.sh
#     vigil_minio_start || exit 1   # build or reuse the binary, start, wait until healthy, export
#     trap vigil_minio_stop EXIT    # stop by PID, remove the data directory
#
# Run directly:
#     bash .ci/minio.sh build               # build or reuse the binary; print its path
#     eval "$(bash .ci/minio.sh start)"     # start detached; print export lines (incl. the PID)
#     bash .ci/minio.sh stop "$VIGIL_MINIO_PID" "$VIGIL_MINIO_DATA"
#
# Exported for the tests:
#     VIGIL_MINIO_BIN         the server binary (tests that stop and restart a server start their own)
#     VIGIL_MINIO_ENDPOINT    127.0.0.1:PORT
#     VIGIL_MINIO_ACCESS_KEY  random root user
#     VIGIL_MINIO_SECRET_KEY  random root password
#     VIGIL_MINIO_PID         server PID
#     VIGIL_MINIO_DATA        fresh temporary directory holding the drive and the server log
#
# The binary is built once with `go install` (about 4 minutes cold) into a cache directory outside
# the repository, ${VIGIL_MINIO_CACHE:-$HOME/.cache/vigil}/minio-<version>/minio, and reused.

VIGIL_MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

vigil_minio_build() {
	local cache="${VIGIL_MINIO_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vigil}"
	local dir="$cache/minio-$VIGIL_MINIO_VERSION"
	if [ -x "$dir/minio" ]; then
		VIGIL_MINIO_BIN="$dir/minio"
		export VIGIL_MINIO_BIN
		return 0
	fi
	mkdir -p "$dir" || return 1
	local tmp
	tmp="$(mktemp -d "$dir/build.XXXXXX")" || return 1
	echo "minio.sh: building MinIO $VIGIL_MINIO_VERSION (about 4 minutes cold)..." >&2
	# Build outside the repository so its go.mod plays no part; install into a temporary
	# directory and rename, so an interrupted build is never mistaken for a binary.
	if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$VIGIL_MINIO_VERSION") >&2; then
		rm -rf "$tmp"
		echo "minio.sh: go install github.com/minio/minio@$VIGIL_MINIO_VERSION failed" >&2
		return 1
	fi
	mv -f "$tmp/minio" "$dir/minio" && rm -rf "$tmp" || return 1
	VIGIL_MINIO_BIN="$dir/minio"
	export VIGIL_MINIO_BIN
}

# _vigil_free_port prints a TCP port on 127.0.0.1 that nothing listens on.
_vigil_free_port() {
	local port i
	for i in $(seq 1 100); do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# _vigil_random N prints 2N random hex digits. (No pipe is closed early, so this is safe under
# `set -o pipefail`.)
_vigil_random() {
	od -An -tx1 -N "$1" /dev/urandom | tr -d ' \n'
}

vigil_minio_start() {
	vigil_minio_build || return 1
	local port data
	port="$(_vigil_free_port)" || { echo "minio.sh: no free port" >&2; return 1; }
	data="$(mktemp -d "${TMPDIR:-/tmp}/vigil-minio.XXXXXX")" || return 1
	mkdir -p "$data/drive"
	VIGIL_MINIO_ENDPOINT="127.0.0.1:$port"
	VIGIL_MINIO_ACCESS_KEY="vigil$(_vigil_random 6)"
	VIGIL_MINIO_SECRET_KEY="$(_vigil_random 20)"
	VIGIL_MINIO_DATA="$data"
	MINIO_ROOT_USER="$VIGIL_MINIO_ACCESS_KEY" MINIO_ROOT_PASSWORD="$VIGIL_MINIO_SECRET_KEY" \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		"$VIGIL_MINIO_BIN" server --quiet --address "$VIGIL_MINIO_ENDPOINT" "$data/drive" \
		>"$data/minio.log" 2>&1 </dev/null &
	VIGIL_MINIO_PID=$!
	export VIGIL_MINIO_ENDPOINT VIGIL_MINIO_ACCESS_KEY VIGIL_MINIO_SECRET_KEY VIGIL_MINIO_PID VIGIL_MINIO_DATA
	local i
	# /minio/health/live answers as soon as the process listens; /minio/health/cluster waits
	# until the object layer, bucket metadata and IAM are initialised, so the first test request
	# is not refused with "Server not initialized yet".
	for i in $(seq 1 120); do
		if curl -fsS -o /dev/null "http://$VIGIL_MINIO_ENDPOINT/minio/health/cluster" 2>/dev/null; then
			echo "minio.sh: MinIO $VIGIL_MINIO_VERSION up at $VIGIL_MINIO_ENDPOINT (pid $VIGIL_MINIO_PID)" >&2
			return 0
		fi
		if ! kill -0 "$VIGIL_MINIO_PID" 2>/dev/null; then
			echo "minio.sh: MinIO exited during start; log:" >&2
			cat "$data/minio.log" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "minio.sh: MinIO not healthy after 60 s; log:" >&2
	cat "$data/minio.log" >&2
	vigil_minio_stop
	return 1
}

# vigil_minio_stop [PID [DATA_DIR]] stops the server by PID (default: the one started here) and
# removes its data directory.
vigil_minio_stop() {
	local pid="${1:-${VIGIL_MINIO_PID:-}}" data="${2:-${VIGIL_MINIO_DATA:-}}" i
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 40); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	case "$data" in
	*/vigil-minio.*) rm -rf "$data" || true ;;
	esac
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case "${1:-}" in
	build)
		vigil_minio_build && echo "$VIGIL_MINIO_BIN"
		;;
	start)
		vigil_minio_start || exit 1
		for v in VIGIL_MINIO_BIN VIGIL_MINIO_ENDPOINT VIGIL_MINIO_ACCESS_KEY VIGIL_MINIO_SECRET_KEY VIGIL_MINIO_PID VIGIL_MINIO_DATA; do
			printf 'export %s=%q\n' "$v" "${!v}"
		done
		;;
	stop)
		vigil_minio_stop "${2:-}" "${3:-}"
		;;
	*)
		echo "usage: $0 build | start | stop PID [DATA_DIR]" >&2
		exit 2
		;;
	esac
fi
