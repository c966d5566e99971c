#!/usr/bin/env bash
# ctest wrapper for deploy/netns-cluster.sh: a 3-node partition-and-heal test
# in private network namespaces. Prints "SKIP: <reason>" and exits 0 where
# namespaces cannot be made (not root, no iproute2, ...); with --strict-skip
# it exits 77 instead (ctest: SKIP_RETURN_CODE 77).
#
#   tests/deploy/netns_test.sh [BIN_DIR] [--strict-skip]
#
# BIN_DIR defaults to <repo>/build/bin. Offline: traffic stays inside the
# namespaces it creates. Under 2 minutes (about 25 s with the daemon's tuning
# options, up to about 100 s without them).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
args=()
for arg in "$@"; do
  case "$arg" in
  --*) args+=("$arg") ;;
  *) export SYNCMESH_BIN_DIR="$arg" ;;
  esac
done
export SYNCMESH_BIN_DIR="${SYNCMESH_BIN_DIR:-$repo_root/build/bin}"

# Bounded: the script's own deadlines add up to less, this is a backstop.
# SIGTERM lets its EXIT trap remove namespaces and stop nodes.
exec timeout --kill-after=15 110 "$repo_root/deploy/netns-cluster.sh" "${args[@]+"${args[@]}"}"
