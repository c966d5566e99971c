#!/usr/bin/env bash
# Partition test of syncmesh-node on a private network of Linux network
# namespaces (needs root and iproute2):
#
#   one namespace holds a bridge; each node gets its own namespace with a
#   veth pair into that bridge and an address 10.<a>.<b>.(10+i)/24. The script
#   starts a node in each, checks that a write on one reaches all, cuts the
#   last node off (its veth link down), writes on both sides, heals the link
#   and checks that every node converges.
#
# Nothing is created in the caller's network namespace; namespaces, links and
# processes are removed on exit, also when the test fails or is interrupted.
#
#   deploy/netns-cluster.sh [--nodes=N] [--strict-skip] [--keep-logs]
#                           [--default-intervals] [--tls]
#
# --tls runs the nodes with peer mutual TLS: deploy/certs.sh makes a cluster
# CA and one certificate per node in the work directory, and each node gets
# --tls-cert/--tls-key/--tls-ca (its ID comes from its certificate).
#
# The daemon's failure detection and repair intervals (peer timeout 10 s,
# redial backoff up to 30 s, anti-entropy 30 s) are lowered when its --help
# lists the options, so the test takes a few seconds; --default-intervals
# keeps the defaults (and the longer deadlines they need: about a minute).
#
# When namespaces cannot be made here (not root, no `ip`, `ip netns add` or a
# bridge/veth fails) it prints "SKIP: <reason>" and exits 0, or 77 with
# --strict-skip. Environment:
#   SYNCMESH_BIN_DIR        binaries (default: <repo>/build/bin)
#   SYNCMESH_NETNS_SUBNET   first three octets of the private /24
#                           (default 10.231.77)
#   SYNCMESH_LOG_LEVEL      the nodes' --log-level (default info)
set -euo pipefail

readonly prog="netns-cluster.sh"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
bin_dir="${SYNCMESH_BIN_DIR:-$repo_root/build/bin}"
readonly node_bin="$bin_dir/syncmesh-node"
readonly cli_bin="$bin_dir/syncmesh"
readonly subnet="${SYNCMESH_NETNS_SUBNET:-10.231.77}"
readonly log_level="${SYNCMESH_LOG_LEVEL:-info}"
readonly port=7440
readonly http_port=7441

nodes=3
strict_skip=0
keep_logs=0
default_intervals=0
use_tls=0
for arg in "$@"; do
  case "$arg" in
  --nodes=*) nodes="${arg#--nodes=}" ;;
  --strict-skip) strict_skip=1 ;;
  --keep-logs) keep_logs=1 ;;
  --default-intervals) default_intervals=1 ;;
  --tls) use_tls=1 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "$prog: unknown argument '$arg' (see --help)" >&2
    exit 2
    ;;
  esac
done
if ! [[ "$nodes" =~ ^[0-9]+$ ]] || [ "$nodes" -lt 2 ] || [ "$nodes" -gt 9 ]; then
  echo "$prog: --nodes must be 2..9" >&2
  exit 2
fi

t0=$(date +%s)
say() { printf '%s: [%3ss] %s\n' "$prog" "$(($(date +%s) - t0))" "$*"; }
warn() { printf '%s: %s\n' "$prog" "$*" >&2; }

skip() {
  echo "SKIP: $*"
  failed=0 # not a failure: the EXIT trap (if set) only cleans up
  if [ "$strict_skip" = 1 ]; then exit 77; fi
  exit 0
}

# Names carry our pid: parallel runs do not collide, and a run that was
# SIGKILLed leaves namespaces a later run can recognise as stale.
readonly tag="smn$$"
readonly br_ns="$tag-br"
ns_of() { printf '%s-n%s' "$tag" "$1"; }
ip_of() { printf '%s.%s' "$subnet" "$((10 + $1))"; }

# -- preconditions (skips) -------------------------------------------------------

command -v ip >/dev/null 2>&1 || skip "iproute2 ('ip') is not installed"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (running as uid $(id -u))"
command -v timeout >/dev/null 2>&1 || skip "timeout (coreutils) is not installed"
if [ ! -x "$node_bin" ] || [ ! -x "$cli_bin" ]; then
  warn "error: $node_bin and $cli_bin are needed (build first: cmake -S . -B build && cmake --build build -j2)"
  exit 1
fi

# -- cleanup ---------------------------------------------------------------------

work_dir=""
pids=()
created_ns=()
failed=1

kill_and_wait() {
  local sig pid deadline alive=("$@")
  for sig in TERM KILL; do
    [ ${#alive[@]} -gt 0 ] || return 0
    kill "-$sig" "${alive[@]}" 2>/dev/null || true
    deadline=$(($(date +%s) + 5))
    while [ ${#alive[@]} -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
      local still=()
      for pid in "${alive[@]}"; do
        # Reap our own children; anything else is polled.
        if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
          still+=("$pid")
        else
          wait "$pid" 2>/dev/null || true
        fi
      done
      alive=("${still[@]+"${still[@]}"}")
      [ ${#alive[@]} -eq 0 ] || sleep 0.1
    done
  done
}

# delete_ns NS: kill whatever still runs inside NS, then delete it (its veth
# ends and the bridge go with it).
delete_ns() {
  local ns="$1" left
  mapfile -t left < <(ip netns pids "$ns" 2>/dev/null || true)
  [ ${#left[@]} -eq 0 ] || kill_and_wait "${left[@]}"
  ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ "$failed" = 1 ] && [ -n "$work_dir" ] && [ ${#pids[@]} -gt 0 ]; then
    local i
    for ((i = 0; i < ${#pids[@]}; i++)); do
      warn "--- node $i: last lines of $work_dir/n$i/stderr.log ---"
      tail -n 15 "$work_dir/n$i/stderr.log" >&2 2>/dev/null
    done
  fi
  [ ${#pids[@]} -eq 0 ] || kill_and_wait "${pids[@]}"
  local ns
  for ns in "${created_ns[@]+"${created_ns[@]}"}"; do
    delete_ns "$ns"
  done
  if [ -n "$work_dir" ]; then
    if [ "$failed" = 1 ] || [ "$keep_logs" = 1 ]; then
      warn "logs kept in $work_dir"
    else
      rm -rf "$work_dir"
    fi
  fi
  if [ "$rc" -eq 0 ] && [ "$failed" = 1 ]; then rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Namespaces left by runs that were killed without cleaning up.
remove_stale_namespaces() {
  local ns owner
  while read -r ns _; do
    [[ "$ns" =~ ^smn([0-9]+)-(br|n[0-9]+)$ ]] || continue
    owner="${BASH_REMATCH[1]}"
    [ "$owner" != "$$" ] || continue
    if ! grep -qs netns-cluster "/proc/$owner/cmdline"; then
      say "removing stale namespace $ns (its run, pid $owner, is gone)"
      delete_ns "$ns"
    fi
  done < <(ip netns list 2>/dev/null || true)
}

# -- the network -----------------------------------------------------------------

# try DESCRIPTION CMD...: runs CMD; on failure the environment cannot host the
# test, so skip with CMD's error.
try() {
  local what="$1" err
  shift
  if ! err="$("$@" 2>&1)"; then
    skip "$what failed: ${err:-exit status $?}"
  fi
}

build_network() {
  local i ns
  try "ip netns add" ip netns add "$br_ns"
  created_ns+=("$br_ns")
  try "creating a bridge" ip -n "$br_ns" link add br0 type bridge
  try "bringing up the bridge" ip -n "$br_ns" link set br0 up
  for ((i = 0; i < nodes; i++)); do
    ns="$(ns_of "$i")"
    try "ip netns add" ip netns add "$ns"
    created_ns+=("$ns")
    try "creating a veth pair" ip -n "$br_ns" link add "v$i" type veth peer name eth0 netns "$ns"
    try "attaching a veth to the bridge" ip -n "$br_ns" link set "v$i" master br0
    try "bringing up a veth" ip -n "$br_ns" link set "v$i" up
    try "assigning an address" ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
    try "bringing up eth0" ip -n "$ns" link set eth0 up
    try "bringing up lo" ip -n "$ns" link set lo up
    try "ip netns exec" ip netns exec "$ns" true
  done
  say "network: bridge in $br_ns; nodes $(ip_of 0)..$(ip_of $((nodes - 1))) in $tag-n0..$((nodes - 1))"
}

# -- talking to nodes ----------------------------------------------------------------

# cli_in I ARGS...: the CLI inside node I's namespace, against node I.
cli_in() {
  local i="$1"
  shift
  timeout 10 ip netns exec "$(ns_of "$i")" "$cli_bin" --node="$(ip_of "$i"):$http_port" "$@"
}

peer_count() {
  local json
  json="$(cli_in "$1" status 2>/dev/null)" || return 1
  # `syncmesh status` prints "peers: N" (the API's JSON has "peers":N).
  sed -E -n 's/(^|.*[^A-Za-z0-9_])"?peers"?[[:space:]]*:[[:space:]]*([0-9]+).*/\2/p' <<<"$json" | head -n 1
}

# has_value I KEY VALUE: node I reads VALUE for KEY (printed as is or JSON-quoted).
has_value() {
  local got
  got="$(cli_in "$1" get "$2" 2>/dev/null)" || return 1
  [ "$got" = "$3" ] || [ "$got" = "\"$3\"" ]
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.25 s until it succeeds.
wait_for() {
  local limit="$1" what="$2" deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      warn "error: timed out after ${limit} s waiting for: $what"
      return 1
    fi
    sleep 0.25
  done
}

all_peered() {
  local i want="$1" n
  for ((i = 0; i < nodes; i++)); do
    n="$(peer_count "$i")" || return 1
    [ "${n:-0}" -ge "$want" ] || return 1
  done
}

# on_all KEY VALUE [NODES...]: every listed node (default all) reads VALUE.
on_all() {
  local key="$1" value="$2" i list=()
  shift 2
  if [ $# -gt 0 ]; then list=("$@"); else for ((i = 0; i < nodes; i++)); do list+=("$i"); done; fi
  for i in "${list[@]}"; do
    has_value "$i" "$key" "$value" || return 1
  done
}

partition_seen() {
  local i n
  n="$(peer_count "$cut")" || return 1
  [ "${n:-1}" -eq 0 ] || return 1
  for ((i = 0; i < cut; i++)); do
    n="$(peer_count "$i")" || return 1
    [ "${n:-0}" -le $((nodes - 2)) ] || return 1
  done
}

# -- main ----------------------------------------------------------------------------

remove_stale_namespaces
build_network
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/syncmesh-netns.XXXXXX")"

# Faster failure detection and repair, if this daemon has the options.
help_text=""
if [ "$default_intervals" = 0 ]; then
  # CAF prints --help to stderr.
  help_text="$("$node_bin" --help 2>&1 || true)"
fi
extra=()
fast=0
has_option() { grep -q -- "--$1\\b" <<<"$help_text"; }
if has_option anti-entropy-interval; then extra+=(--anti-entropy-interval=2s); fi
if has_option redial-max; then
  extra+=(--redial-max=1s)
  fast=1
fi
if has_option peer-timeout; then
  if has_option heartbeat-interval; then extra+=(--heartbeat-interval=500ms); fi
  extra+=(--peer-timeout=3s)
fi
if [ ${#extra[@]} -gt 0 ]; then
  say "daemon options for a quicker test: ${extra[*]}"
else
  say "default intervals (--default-intervals, or none of the options in --help): longer deadlines"
fi
# Defaults: peers are dropped after 10 s of silence; redial backoff grows to
# 30 s; anti-entropy runs on connect.
if has_option peer-timeout; then detect_limit=15; else detect_limit=30; fi
if [ "$fast" = 1 ]; then heal_limit=25; else heal_limit=70; fi

if [ "$use_tls" = 1 ]; then
  "$repo_root/deploy/certs.sh" ca "$work_dir/pki" >/dev/null
  for ((i = 0; i < nodes; i++)); do
    "$repo_root/deploy/certs.sh" node "$work_dir/pki" "n$i" >/dev/null
  done
  say "peer TLS on (certificates in $work_dir/pki)"
fi
tls_args() {
  [ "$use_tls" = 1 ] || return 0
  printf '%s\n' "--tls-cert=$work_dir/pki/n$1.pem" "--tls-key=$work_dir/pki/n$1.key" \
    "--tls-ca=$work_dir/pki/ca.pem"
}

for ((i = 0; i < nodes; i++)); do
  tls=()
  mapfile -t tls < <(tls_args "$i")
  peers=()
  for ((j = 0; j < nodes; j++)); do
    [ "$j" -eq "$i" ] || peers+=("$(ip_of "$j"):$port")
  done
  mkdir -p "$work_dir/n$i/data"
  ip netns exec "$(ns_of "$i")" "$node_bin" --host="$(ip_of "$i")" --port="$port" \
    --http="$(ip_of "$i"):$http_port" --peers="$(
      IFS=,
      echo "${peers[*]}"
    )" \
    --data-dir="$work_dir/n$i/data" --log-level="$log_level" "${extra[@]+"${extra[@]}"}" \
    "${tls[@]+"${tls[@]}"}" </dev/null >"$work_dir/n$i/stdout.log" 2>"$work_dir/n$i/stderr.log" &
  pids+=("$!")
done

ready_line() { grep -m 1 '^syncmesh-node ready ' "$work_dir/n$1/stdout.log" 2>/dev/null; }
node_ready() {
  if ready_line "$1" >/dev/null; then return 0; fi
  if ! kill -0 "${pids[$1]}" 2>/dev/null; then
    warn "error: node $1 exited before printing its ready line"
    exit 1
  fi
  return 1
}
for ((i = 0; i < nodes; i++)); do
  wait_for 20 "node $i's ready line" node_ready "$i"
  line="$(ready_line "$i")"
  expect="listen=$(ip_of "$i"):$port http=$(ip_of "$i"):$http_port"
  if [[ "$line" != *"$expect"* ]]; then
    warn "error: node $i's ready line lacks '$expect': $line"
    exit 1
  fi
done
say "$nodes nodes ready"

wait_for 30 "a full mesh ($((nodes - 1)) peers each)" all_peered $((nodes - 1))
say "full mesh: every node has $((nodes - 1)) peers"

stamp="$(date +%s)-$$"
cli_in 0 set netns-check "before-$stamp" >/dev/null
wait_for 15 "netns-check on every node" on_all netns-check "before-$stamp"
say "write on node 0 read on all $nodes nodes"

cut=$((nodes - 1))
ip -n "$br_ns" link set "v$cut" down
say "cut node $cut off (v$cut down); waiting until both sides notice"
wait_for "$detect_limit" "node $cut to lose its peers and the others to drop it" partition_seen
say "partition seen on both sides"

cli_in 0 set netns-majority "a-$stamp" >/dev/null
cli_in "$cut" set netns-minority "b-$stamp" >/dev/null
majority=()
for ((i = 0; i < cut; i++)); do majority+=("$i"); done
if [ ${#majority[@]} -gt 1 ]; then
  wait_for 15 "netns-majority on the connected side" on_all netns-majority "a-$stamp" "${majority[@]}"
fi
if has_value "$cut" netns-majority "a-$stamp" || has_value 0 netns-minority "b-$stamp"; then
  warn "error: a write crossed the partition: the cut did not isolate node $cut"
  exit 1
fi
say "wrote on both sides; neither write crossed the cut"

ip -n "$br_ns" link set "v$cut" up
heal_start=$(date +%s)
say "healed (v$cut up); waiting up to ${heal_limit} s for convergence"
wait_for "$heal_limit" "netns-majority on every node" on_all netns-majority "a-$stamp"
wait_for "$heal_limit" "netns-minority on every node" on_all netns-minority "b-$stamp"
wait_for 10 "netns-check still on every node" on_all netns-check "before-$stamp"
say "all $nodes nodes converged $(($(date +%s) - heal_start)) s after the heal"

failed=0
say "PASS"
