#!/usr/bin/env bash
# Runs a cluster of syncmesh-node processes on 127.0.0.1 for development.
#
#   deploy/local-cluster.sh up [N] [--tls]
#                                    install deps, build if needed, start N
#                                    nodes (default 3), wait until they have
#                                    peered, check replication, print addresses;
#                                    --tls: peer mutual TLS with a cluster CA
#                                    and node certificates made by
#                                    deploy/certs.sh in $SYNCMESH_CLUSTER_DIR/certs
#   deploy/local-cluster.sh status   show each node: pid, state, addresses,
#                                    peers and keys
#   deploy/local-cluster.sh down     stop every node (SIGTERM, then SIGKILL as
#                                    a last resort); leaves no process behind
#
# Environment:
#   SYNCMESH_CLUSTER_DIR  state (pids, logs, data); default
#                         ${TMPDIR:-/tmp}/syncmesh-cluster
#   SYNCMESH_BIN_DIR      use the syncmesh-node and syncmesh binaries from
#                         this directory; skips installing deps and building
#   SYNCMESH_NO_BUILD=1   never build; fail if build/bin has no binaries
#   SYNCMESH_LOG_LEVEL    the nodes' --log-level (default info)
#   SYNCMESH_TIMEOUT      seconds to wait for each stage of `up` (default 30)
set -euo pipefail

readonly prog="local-cluster.sh"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
cluster_dir="${SYNCMESH_CLUSTER_DIR:-${TMPDIR:-/tmp}/syncmesh-cluster}"
readonly log_level="${SYNCMESH_LOG_LEVEL:-info}"
readonly stage_timeout="${SYNCMESH_TIMEOUT:-30}"
use_tls=0 # up --tls

if [ -n "${SYNCMESH_BIN_DIR:-}" ]; then
  bin_dir="$SYNCMESH_BIN_DIR"
else
  bin_dir="$repo_root/build/bin"
fi
node_bin="$bin_dir/syncmesh-node"
cli_bin="$bin_dir/syncmesh"

say() { printf '%s: %s\n' "$prog" "$*"; }
warn() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
  warn "error: $*"
  exit 1
}

usage() {
  cat <<EOF
usage: deploy/local-cluster.sh up [N] [--tls] | status | down | help

  up [N]   start N nodes (default 3) on 127.0.0.1 with free ports, wait until
           they have peered, write a key on the first node and read it back on
           the last, print each node's addresses; with --tls the peer links
           use mutual TLS (certificates from deploy/certs.sh, kept in
           \$SYNCMESH_CLUSTER_DIR/certs; each node's ID is its certificate's)
  status   show the nodes of the cluster (exit 0 when all run, 1 when some
           have stopped, 3 when no cluster is up)
  down     stop all nodes (SIGTERM, wait, SIGKILL as a last resort)

State lives in \$SYNCMESH_CLUSTER_DIR (now: $cluster_dir).
EOF
}

# -- helpers -------------------------------------------------------------------

now() { date +%s; }

# is_our_node PID DIR: PID is a live syncmesh-node started for node DIR (its
# command line names DIR's data directory), so a recycled PID is never killed.
is_our_node() {
  local pid="$1" dir="$2" cmdline
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  # A zombie has an empty command line: treat it as gone.
  [[ "$cmdline" == *syncmesh-node* && "$cmdline" == *"--data-dir=$dir/data"* ]]
}

# stray_pids: every syncmesh-node process whose command line points into the
# cluster directory (also nodes whose pid file was lost).
stray_pids() {
  local p cmdline
  for p in /proc/[0-9]*; do
    cmdline="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
    if [[ "$cmdline" == *syncmesh-node* && "$cmdline" == *"--data-dir=$cluster_dir/node"* ]]; then
      printf '%s\n' "${p#/proc/}"
    fi
  done
}

node_dirs() {
  local d
  for d in "$cluster_dir"/node[0-9]*; do
    [ -d "$d" ] && printf '%s\n' "$d"
  done | sort -V
}

# cli NODE_ADDR ARGS...: the syncmesh CLI against one node, bounded in time.
cli() {
  local addr="$1"
  shift
  timeout 10 "$cli_bin" --node="$addr" "$@"
}

# status_number TEXT FIELD: the integer FIELD of `syncmesh status` output
# ("FIELD: N" lines) or of /v1/status JSON ("FIELD":N).
status_number() {
  sed -E -n "s/(^|.*[^A-Za-z0-9_])\"?$2\"?[[:space:]]*:[[:space:]]*([0-9]+).*/\2/p" <<<"$1" | head -n 1
}

# ready_field LINE FIELD: FIELD=value from the node's ready line.
ready_field() {
  local word
  for word in $1; do
    if [[ "$word" == "$2="* ]]; then
      printf '%s\n' "${word#"$2="}"
      return 0
    fi
  done
  return 1
}

show_log_tail() {
  local dir="$1"
  warn "--- last lines of $dir/stderr.log ---"
  tail -n 20 "$dir/stderr.log" >&2 2>/dev/null || true
  warn "--- last lines of $dir/stdout.log ---"
  tail -n 5 "$dir/stdout.log" >&2 2>/dev/null || true
}

lock_cluster_dir() {
  mkdir -p "$cluster_dir"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cluster_dir/.lock"
    flock -n 9 || die "another $prog is working on $cluster_dir"
  fi
}

# -- down ----------------------------------------------------------------------

# proc_alive PID: PID runs and is not a zombie (reaps it if it is our child).
proc_alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] || return 1
  if [ "$state" = Z ]; then
    wait "$1" 2>/dev/null || true
    return 1
  fi
  return 0
}

# stop_pids PID...: SIGTERM, wait up to 5 s, then SIGKILL; waits until gone.
stop_pids() {
  local pids=("$@") pid alive signal deadline
  for signal in TERM KILL; do
    alive=()
    for pid in "${pids[@]}"; do
      if proc_alive "$pid"; then alive+=("$pid"); fi
    done
    [ ${#alive[@]} -gt 0 ] || return 0
    if [ "$signal" = KILL ]; then
      warn "still running 5 s after SIGTERM, sending SIGKILL: ${alive[*]}"
    fi
    kill "-$signal" "${alive[@]}" 2>/dev/null || true
    deadline=$(($(now) + 5))
    while [ "$(now)" -lt "$deadline" ]; do
      pids=()
      for pid in "${alive[@]}"; do
        if proc_alive "$pid"; then pids+=("$pid"); fi
      done
      [ ${#pids[@]} -gt 0 ] || return 0
      sleep 0.1
    done
  done
  warn "processes survive SIGKILL: ${pids[*]}"
  return 1
}

stop_cluster() {
  local dir pid pids=() stray
  while IFS= read -r dir; do
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    if is_our_node "$pid" "$dir"; then
      pids+=("$pid")
    fi
  done < <(node_dirs)
  while IFS= read -r stray; do
    [[ " ${pids[*]} " == *" $stray "* ]] || pids+=("$stray")
  done < <(stray_pids)
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping ${#pids[@]} node(s): ${pids[*]}"
    stop_pids "${pids[@]}"
  fi
  rm -f "$cluster_dir"/node*/pid "$cluster_dir/cluster.env"
  [ ${#pids[@]} -gt 0 ]
}

cmd_down() {
  if [ ! -d "$cluster_dir" ]; then
    say "no cluster in $cluster_dir: nothing to stop"
    return 0
  fi
  lock_cluster_dir
  if stop_cluster; then
    say "cluster in $cluster_dir stopped (logs kept in $cluster_dir/node*/)"
  else
    say "no node was running in $cluster_dir"
  fi
  local left
  left="$(stray_pids | tr '\n' ' ')"
  [ -z "$left" ] || die "processes still running: $left"
}

# -- status --------------------------------------------------------------------

cmd_status() {
  if [ ! -f "$cluster_dir/cluster.env" ]; then
    if [ -n "$(stray_pids)" ]; then
      warn "no complete cluster in $cluster_dir, but nodes run there: $(stray_pids | tr '\n' ' ')"
      warn "stop them with: deploy/local-cluster.sh down"
      return 1
    fi
    say "no cluster is up in $cluster_dir (start one with: deploy/local-cluster.sh up)"
    return 3
  fi
  local dir i pid state listen http json peers keys total=0 running=0
  printf '%-5s %-8s %-8s %-22s %-22s %-6s %s\n' node pid state listen api peers keys
  while IFS= read -r dir; do
    i="${dir##*/node}"
    total=$((total + 1))
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    listen=- http=- peers=- keys=-
    if [ -s "$dir/ready" ]; then
      listen="$(ready_field "$(cat "$dir/ready")" listen || echo -)"
      http="$(ready_field "$(cat "$dir/ready")" http || echo -)"
    fi
    if is_our_node "$pid" "$dir"; then
      state=running
      running=$((running + 1))
      if [ "$http" != - ] && [ -x "$cli_bin" ] && json="$(cli "$http" status 2>/dev/null)"; then
        peers="$(status_number "$json" peers)"
        keys="$(status_number "$json" keys)"
      else
        state=no-api
      fi
    else
      state=stopped
      pid="${pid:--}"
    fi
    printf '%-5s %-8s %-8s %-22s %-22s %-6s %s\n' "$i" "$pid" "$state" "$listen" "$http" "${peers:--}" "${keys:--}"
  done < <(node_dirs)
  say "$running of $total node(s) running; state in $cluster_dir"
  [ "$total" -gt 0 ] && [ "$running" -eq "$total" ]
}

# -- up ------------------------------------------------------------------------

# needs_build: the binaries are missing or older than a source file.
needs_build() {
  [ -x "$node_bin" ] && [ -x "$cli_bin" ] || return 0
  local newer
  # find fails on a missing directory: still use what it printed.
  newer="$(cd "$repo_root" && { find CMakeLists.txt cmake messages actors node \
    -newer "$node_bin" -type f -print -quit 2>/dev/null || true; })"
  if [ -n "$newer" ]; then
    say "$newer is newer than build/bin/syncmesh-node"
    return 0
  fi
  return 1
}

prepare_binaries() {
  if [ -n "${SYNCMESH_BIN_DIR:-}" ]; then
    say "using binaries from $bin_dir (no dependency install, no build)"
  else
    say "checking dependencies (deploy/install-deps.sh)"
    "$repo_root/deploy/install-deps.sh" || die "deploy/install-deps.sh failed"
    if needs_build; then
      if [ "${SYNCMESH_NO_BUILD:-0}" = 1 ]; then
        if [ ! -x "$node_bin" ] || [ ! -x "$cli_bin" ]; then
          die "$node_bin or $cli_bin is missing and SYNCMESH_NO_BUILD=1"
        fi
        warn "binaries are older than the sources; not rebuilding (SYNCMESH_NO_BUILD=1)"
      else
        say "building (cmake -S . -B build && cmake --build build -j2)"
        (cd "$repo_root" && cmake -S . -B build && cmake --build build -j2) ||
          die "build failed"
      fi
    else
      say "build/bin is up to date"
    fi
  fi
  [ -x "$node_bin" ] || die "$node_bin not found"
  [ -x "$cli_bin" ] || die "$cli_bin not found"
}

# start_node I [PEERS]: starts node I in the background, records its pid.
start_node() {
  local i="$1" peers="${2:-}" dir="$cluster_dir/node$1"
  local args=(--host=127.0.0.1 --port=0 --http=127.0.0.1:0
    --data-dir="$dir/data" --log-level="$log_level")
  [ -z "$peers" ] || args+=(--peers="$peers")
  if [ "$use_tls" = 1 ]; then
    local certs="$cluster_dir/certs"
    args+=(--tls-cert="$certs/node$i.pem" --tls-key="$certs/node$i.key"
      --tls-ca="$certs/ca.pem")
  fi
  mkdir -p "$dir/data"
  : >"$dir/stdout.log"
  : >"$dir/stderr.log"
  rm -f "$dir/ready"
  "$node_bin" "${args[@]}" </dev/null >"$dir/stdout.log" 2>"$dir/stderr.log" 9>&- &
  echo "$!" >"$dir/pid"
}

# await_ready I: waits for node I's ready line; stores it in node I/ready.
await_ready() {
  local i="$1" dir="$cluster_dir/node$1" pid line deadline
  pid="$(cat "$dir/pid")"
  deadline=$(($(now) + stage_timeout))
  while :; do
    line="$(grep -m 1 '^syncmesh-node ready ' "$dir/stdout.log" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      printf '%s\n' "$line" >"$dir/ready"
      if ! ready_field "$line" listen >/dev/null || ! ready_field "$line" http >/dev/null; then
        die "node $i: malformed ready line: $line"
      fi
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      show_log_tail "$dir"
      die "node $i (pid $pid) exited with status $rc before it was ready"
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      show_log_tail "$dir"
      die "node $i printed no ready line within ${stage_timeout} s"
    fi
    sleep 0.1
  done
}

# await_peered I: polls node I's /v1/status until it reports a peer.
await_peered() {
  local i="$1" dir="$cluster_dir/node$1" http json peers="" deadline
  http="$(ready_field "$(cat "$dir/ready")" http)"
  deadline=$(($(now) + stage_timeout))
  while :; do
    if json="$(cli "$http" status 2>/dev/null)"; then
      peers="$(status_number "$json" peers)"
      [ "${peers:-0}" -lt 1 ] || return 0
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      show_log_tail "$dir"
      die "node $i ($http) has no peer after ${stage_timeout} s (last status: ${json:-none})"
    fi
    sleep 0.2
  done
}

# check_replication: a key written on the first node is read on the last.
check_replication() {
  local first="$1" last="$2" key="local-cluster-check" value got deadline
  value="hello-$(now)-$$-$RANDOM"
  cli "$first" set "$key" "$value" >/dev/null ||
    die "could not write $key on $first"
  deadline=$(($(now) + stage_timeout))
  while :; do
    got="$(cli "$last" get "$key" 2>/dev/null || true)"
    # The CLI may print text as is or JSON-quoted.
    if [ "$got" = "$value" ] || [ "$got" = "\"$value\"" ]; then
      say "replication ok: $key=$value written on $first, read on $last"
      return 0
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      die "$key written on $first did not reach $last within ${stage_timeout} s (got: '${got}')"
    fi
    sleep 0.2
  done
}

up_failed() {
  local rc=$?
  trap - EXIT
  if [ "$rc" -ne 0 ]; then
    warn "up failed; stopping the nodes started so far (logs kept in $cluster_dir)"
    stop_cluster >/dev/null 2>&1 || true
  fi
  exit "$rc"
}

cmd_up() {
  local n="${1:-3}" i first_listen http_first http_last
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 64 ]; then
    die "N must be a number from 1 to 64, not '$n'"
  fi
  lock_cluster_dir
  if [ -n "$(stray_pids)" ]; then
    die "a cluster is already running in $cluster_dir (see: $prog status; stop it with: $prog down)"
  fi
  prepare_binaries
  command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is required"

  # Start from a clean state: old logs, identities and data go.
  rm -rf "$cluster_dir"/node[0-9]* "$cluster_dir/cluster.env"
  if [ "$use_tls" = 1 ]; then
    # The CA and certificates are kept between runs (certs.sh is
    # idempotent); the wiped data dirs take their IDs from them.
    "$repo_root/deploy/certs.sh" ca "$cluster_dir/certs" >/dev/null ||
      die "could not make the cluster CA"
    for ((i = 0; i < n; i++)); do
      "$repo_root/deploy/certs.sh" node "$cluster_dir/certs" "node$i" >/dev/null ||
        die "could not make the certificate of node $i"
    done
    say "peer TLS on: certificates in $cluster_dir/certs"
  fi
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local started
  started=$(now)
  say "starting $n node(s) in $cluster_dir"
  start_node 0
  await_ready 0
  first_listen="$(ready_field "$(cat "$cluster_dir/node0/ready")" listen)"
  for ((i = 1; i < n; i++)); do
    start_node "$i" "$first_listen"
  done
  for ((i = 1; i < n; i++)); do
    await_ready "$i"
  done
  printf 'nodes=%s\nbin_dir=%s\n' "$n" "$bin_dir" >"$cluster_dir/cluster.env"

  if [ "$n" -gt 1 ]; then
    say "waiting until every node has peered"
    for ((i = 0; i < n; i++)); do
      await_peered "$i"
    done
  fi
  http_first="$(ready_field "$(cat "$cluster_dir/node0/ready")" http)"
  http_last="$(ready_field "$(cat "$cluster_dir/node$((n - 1))/ready")" http)"
  check_replication "$http_first" "$http_last"
  trap - EXIT

  say "cluster of $n node(s) up in $(($(now) - started)) s:"
  local dir line
  for ((i = 0; i < n; i++)); do
    dir="$cluster_dir/node$i"
    line="$(cat "$dir/ready")"
    printf '  node %s  pid %-7s api http://%s  peer %s  id %s\n' "$i" \
      "$(cat "$dir/pid")" "$(ready_field "$line" http)" \
      "$(ready_field "$line" listen)" "$(ready_field "$line" node || echo -)"
  done
  say "try: $cli_bin --node=$http_first status"
  say "stop with: deploy/local-cluster.sh down"
}

# -- main ----------------------------------------------------------------------

case "${1:-}" in
up)
  shift
  use_tls=0
  count=3
  for arg in "$@"; do
    case "$arg" in
    --tls) use_tls=1 ;;
    [0-9]*) count="$arg" ;;
    *) die "usage: $prog up [N] [--tls]" ;;
    esac
  done
  cmd_up "$count"
  ;;
status)
  [ $# -eq 1 ] || die "usage: $prog status"
  cmd_status
  ;;
down)
  [ $# -eq 1 ] || die "usage: $prog down"
  cmd_down
  ;;
help | -h | --help)
  usage
  ;;
*)
  usage >&2
  exit 2
  ;;
esac
