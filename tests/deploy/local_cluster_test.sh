#!/usr/bin/env bash
# ctest wrapper: deploy/local-cluster.sh up 3, status, down, in a private
# cluster directory; then no syncmesh-node of that directory may remain.
#
#   tests/deploy/local_cluster_test.sh [BIN_DIR] [--tls]
#
# --tls: `up 3 --tls` (peer mutual TLS); each node's ID must then be the one
# its certificate names.
# BIN_DIR (default <repo>/build/bin) holds syncmesh-node and syncmesh; the
# test never installs or builds anything. Offline; about 5 s.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
script="$repo_root/deploy/local-cluster.sh"
tls=()
for arg in "$@"; do
  case "$arg" in
  --tls) tls=(--tls) ;;
  *) SYNCMESH_BIN_DIR="$arg" ;;
  esac
done
export SYNCMESH_BIN_DIR="${SYNCMESH_BIN_DIR:-$repo_root/build/bin}"
SYNCMESH_CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/syncmesh-cluster-test.XXXXXX")"
export SYNCMESH_CLUSTER_DIR
export SYNCMESH_TIMEOUT="${SYNCMESH_TIMEOUT:-20}"

fail() {
  echo "local_cluster_test: FAIL: $*" >&2
  exit 1
}

# syncmesh-node processes whose command line points into our cluster dir.
our_nodes() {
  local p cmdline
  for p in /proc/[0-9]*; do
    cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
    if [[ "$cmdline" == *syncmesh-node* && "$cmdline" == *"$SYNCMESH_CLUSTER_DIR/"* ]]; then
      printf '%s ' "${p#/proc/}"
    fi
  done
}

finish() {
  local rc=$?
  trap - EXIT
  set +e
  "$script" down >/dev/null 2>&1
  local left
  left="$(our_nodes)"
  if [ -n "$left" ]; then
    echo "local_cluster_test: FAIL: processes left after down: $left" >&2
    local pids
    read -ra pids <<<"$left"
    kill -KILL "${pids[@]}" 2>/dev/null
    rc=1
  fi
  if [ "$rc" -eq 0 ]; then
    rm -rf "$SYNCMESH_CLUSTER_DIR"
  else
    echo "local_cluster_test: logs in $SYNCMESH_CLUSTER_DIR" >&2
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$SYNCMESH_BIN_DIR/syncmesh-node" ] || fail "$SYNCMESH_BIN_DIR/syncmesh-node not found"
[ -x "$SYNCMESH_BIN_DIR/syncmesh" ] || fail "$SYNCMESH_BIN_DIR/syncmesh not found"

start=$(date +%s)
echo "== local-cluster.sh up 3 ${tls[*]+"${tls[*]}"} (SYNCMESH_CLUSTER_DIR=$SYNCMESH_CLUSTER_DIR)"
"$script" up 3 "${tls[@]+"${tls[@]}"}" || fail "up 3 ${tls[*]+"${tls[*]}"} failed"
if [ ${#tls[@]} -gt 0 ]; then
  for i in 0 1 2; do
    want="$(tr -d '[:space:]' <"$SYNCMESH_CLUSTER_DIR/certs/node$i.id")"
    grep -q "node=$want " "$SYNCMESH_CLUSTER_DIR/node$i/ready" ||
      fail "node $i does not run as its certificate's ID $want: $(cat "$SYNCMESH_CLUSTER_DIR/node$i/ready")"
  done
  echo "== every node runs as the ID its certificate names"
fi

echo "== local-cluster.sh status"
status_out="$("$script" status)" || fail "status failed: $status_out"
printf '%s\n' "$status_out"
running="$(grep -c ' running ' <<<"$status_out" || true)"
[ "$running" -eq 3 ] || fail "status shows $running running nodes, expected 3"
grep -q '3 of 3 node(s) running' <<<"$status_out" || fail "status summary missing"
[ -n "$(our_nodes)" ] || fail "no syncmesh-node process found while the cluster is up"

echo "== local-cluster.sh down"
"$script" down || fail "down failed"
left="$(our_nodes)"
[ -z "$left" ] || fail "syncmesh-node processes remain after down: $left"

rc=0
"$script" status >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "status after down exited $rc, expected 3 (no cluster)"

echo "local_cluster_test: PASS in $(($(date +%s) - start)) s"
