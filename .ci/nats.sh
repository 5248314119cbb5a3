#!/usr/bin/env bash
# .ci/nats.sh: build the pinned nats-server for Vigil's cluster fault tests.
#
# The tests start their own nats-server processes (internal/natstest: three nodes as a JetStream
# cluster, killed and restarted by PID), so CI only needs the binary.
#
# Sourced (this is how .ci/run uses it):
#     source .ci/nats.sh
#     vigil_nats_build || exit 1    # build or reuse the binary, export VIGIL_NATS_SERVER
#
# Run directly:
#     bash .ci/nats.sh build                        # build or reuse the binary; print its path
#     export VIGIL_NATS_SERVER="$(bash .ci/nats.sh build)"
#
# Exported for the tests:
#     VIGIL_NATS_SERVER    the nats-server binary
#
# The binary is built once with `go install` (1 to 2 minutes cold on 2 cores: 2m12s with an empty
# build cache on a loaded machine) into a cache directory outside the repository,
# ${VIGIL_NATS_CACHE:-$HOME/.cache/vigil}/nats-server-<version>/nats-server, and reused. The
# version is the one go.mod requires for the embedded server, so both speak the same JetStream.

VIGIL_NATS_VERSION="v2.15.3"

vigil_nats_build() {
	local cache="${VIGIL_NATS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vigil}"
	local dir="$cache/nats-server-$VIGIL_NATS_VERSION"
	if [ -x "$dir/nats-server" ]; then
		VIGIL_NATS_SERVER="$dir/nats-server"
		export VIGIL_NATS_SERVER
		return 0
	fi
	mkdir -p "$dir" || return 1
	local tmp
	tmp="$(mktemp -d "$dir/build.XXXXXX")" || return 1
	echo "nats.sh: building nats-server $VIGIL_NATS_VERSION (1 to 2 minutes cold)..." >&2
	# Build outside the repository so its go.mod plays no part; install into a temporary
	# directory and rename, so an interrupted build is never mistaken for a binary.
	if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/nats-io/nats-server/v2@$VIGIL_NATS_VERSION") >&2; then
		rm -rf "$tmp"
		echo "nats.sh: go install github.com/nats-io/nats-server/v2@$VIGIL_NATS_VERSION failed" >&2
		return 1
	fi
	mv -f "$tmp/nats-server" "$dir/nats-server" && rm -rf "$tmp" || return 1
	VIGIL_NATS_SERVER="$dir/nats-server"
	export VIGIL_NATS_SERVER
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case "${1:-}" in
	build)
		vigil_nats_build && echo "$VIGIL_NATS_SERVER"
		;;
	*)
		echo "usage: $0 build" >&2
		exit 2
		;;
	esac
fi
