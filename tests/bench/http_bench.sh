#!/usr/bin/env bash
# The HTTP benchmark of issue 14: syncmesh-node's API beside a 3-member etcd
# 3.4 and a trivial Beast server (syncmesh-http-ceiling, the ceiling of this
# machine), all driven by wrk with the same settings in one run, everything on
# 127.0.0.1. Prints one table per wrk thread count, then the batch, idle-
# connection and watcher measures. Not a timed test: nothing here asserts a
# speed; the targets of the issue are printed beside the figures.
#
# Usage: tests/bench/http_bench.sh [options]
#   --threads=LIST      wrk thread counts, one table each (default 2,1)
#   --conns=N           wrk connections (default 16)
#   --duration=D        wrk duration, e.g. 10s (default 10s)
#   --keys=N            key space of the single-key PUT/GET (default 1000)
#   --batch=N           sets per POST /v1/kv request (default 1000)
#   --idle-conns=N      idle keep-alive connections held (default 10000)
#   --probe-seconds=S   how long /healthz is probed meanwhile (default 10)
#   --watchers=N        /v1/watch streams (default 1000)
#   --watch-writes=N    writes the watchers must see (default 100)
#   --idle-open-seconds=S  most time to open the idle connections and see
#                       each answered once (default 30)
#   --node-bin=[LABEL=]PATH  a syncmesh-node to measure; repeat to compare
#                       builds (default: build/bin/syncmesh-node, "syncmesh")
#   --ceiling-bin=PATH  default: build/bin/syncmesh-http-ceiling
#   --parts=LIST        table (PUT/GET rows) and/or extras (batch, idle,
#                       watchers); default table,extras
#   --no-etcd           skip etcd
#   --no-install        do not apt-get wrk/etcd when missing
#   --smoke             tiny run for ctest: -d1s, small counts, never
#                       installs anything, etcd only if already installed
#
# Packages: wrk, etcd-server, etcd-client from Debian, installed with apt-get
# when missing (idempotent: dpkg-query first). tests/bench/README.md has the
# numbers of a run and what they mean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tools=(/usr/bin/python3 "$here/http_tools.py")
lua="$here/http_wrk.lua"

threads_list=2,1
conns=16
duration=10s
keys=1000
batch=1000
idle_conns=10000
probe_seconds=10
watchers=1000
watch_writes=100
idle_open_seconds=30
node_bins=()
ceiling_bin="$root/build/bin/syncmesh-http-ceiling"
with_etcd=1
install=1
smoke=0
parts=table,extras

for arg in "$@"; do
  case "$arg" in
    --threads=*) threads_list=${arg#*=} ;;
    --conns=*) conns=${arg#*=} ;;
    --duration=*) duration=${arg#*=} ;;
    --keys=*) keys=${arg#*=} ;;
    --batch=*) batch=${arg#*=} ;;
    --idle-conns=*) idle_conns=${arg#*=} ;;
    --probe-seconds=*) probe_seconds=${arg#*=} ;;
    --watchers=*) watchers=${arg#*=} ;;
    --watch-writes=*) watch_writes=${arg#*=} ;;
    --idle-open-seconds=*) idle_open_seconds=${arg#*=} ;;
    --node-bin=*) node_bins+=("${arg#*=}") ;;
    --ceiling-bin=*) ceiling_bin=${arg#*=} ;;
    --parts=*) parts=${arg#*=} ;;
    --no-etcd) with_etcd=0 ;;
    --no-install) install=0 ;;
    --smoke)
      smoke=1 install=0 threads_list=1 conns=4 duration=1s keys=100 batch=10
      idle_conns=50 probe_seconds=1 watchers=4 watch_writes=10
      idle_open_seconds=5
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "http_bench: unknown option $arg (--help lists them)" >&2
      exit 2
      ;;
  esac
done
if [ ${#node_bins[@]} -eq 0 ]; then
  node_bins=("syncmesh=$root/build/bin/syncmesh-node")
fi

log() { echo "http_bench: $*" >&2; }

# -- packages ---------------------------------------------------------------
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
if [ "$install" -eq 1 ]; then
  wanted=(wrk)
  [ "$with_etcd" -eq 1 ] && wanted+=(etcd-server etcd-client)
  missing=()
  for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
      "${sudo_cmd[@]}" apt-get update
      "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    fi
  fi
fi
command -v wrk >/dev/null || { log "wrk is not installed"; exit 1; }
if [ "$with_etcd" -eq 1 ] && ! { command -v etcd && command -v etcdctl; } >/dev/null; then
  log "etcd or etcdctl is not installed: its rows are skipped"
  with_etcd=0
fi
[ -x "$ceiling_bin" ] || { log "no $ceiling_bin (build target syncmesh-http-ceiling)"; exit 1; }

# 10,000 idle connections need as many descriptors in the client and the node.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# -- processes: every one we start is killed on exit -------------------------
work=$(mktemp -d /tmp/http_bench.XXXXXX)
shm=$(mktemp -d /dev/shm/http_bench_etcd.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true # reaped here: no "Killed" notice
  done
  pids=()
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# in_background OUT CMD...: runs CMD with stdout to OUT and waits for it in
# a way a signal interrupts (bash runs a trap only once a foreground child
# has exited; `wait` returns at once), so SIGTERM to the script always
# cleans up, even while a tool is stuck on a server that does not answer.
in_background() {
  local out=$1
  shift
  "$@" >"$out" &
  local pid=$! rc=0 kept=() p
  pids+=("$pid")
  wait "$pid" || rc=$?
  for p in "${pids[@]}"; do # gone: never signal a reused pid later
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  pids=("${kept[@]}")
  return $rc
}

# Stops the processes started so far (between parts of the run).
stop_all() {
  local keep_work=$work keep_shm=$shm
  cleanup
  work=$keep_work shm=$keep_shm
  mkdir -p "$work" "$shm"
}

# wait_for FILE PATTERN SECONDS: polls until FILE has a line matching PATTERN.
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out waiting for '$2' in $1:"
      tail -n 20 "$1" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}

free_ports() { # N free TCP ports on 127.0.0.1, chosen by the OS
  /usr/bin/python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start_ceiling() { # sets ceiling_port
  local out="$work/ceiling.log"
  "$ceiling_bin" 0 >"$out" 2>&1 &
  pids+=($!)
  wait_for "$out" "http-ceiling ready" 10
  ceiling_port=$(sed -n 's/.*ready port=\([0-9]*\).*/\1/p' "$out")
}

node_count=0
# start_node BIN [SEED]: sets node_http and node_listen.
start_node() {
  node_count=$((node_count + 1))
  local out="$work/node$node_count.log" extra=()
  [ -n "${2:-}" ] && extra=(--peers="$2")
  "$1" --host=127.0.0.1 --port=0 --http=127.0.0.1:0 --log-level=warning \
    "${extra[@]}" >"$out" 2>&1 &
  pids+=($!)
  wait_for "$out" "syncmesh-node ready" 20
  node_http=$(sed -n 's/.* http=127.0.0.1:\([0-9]*\).*/\1/p' "$out" | head -n1)
  node_listen=$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' "$out" | head -n1)
}

status_field() { # status_field PORT FIELD: a number from /v1/status
  /usr/bin/python3 - "$1" "$2" <<'EOF' 2>/dev/null || echo -1
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/v1/status")
print(json.loads(c.getresponse().read())[sys.argv[2]])
EOF
}

wait_peers() { # wait_peers PORT N: until the node has N peers (20 s)
  local deadline=$((SECONDS + 20))
  until [ "$(status_field "$1" peers)" -ge "$2" ]; do
    [ $SECONDS -ge $deadline ] && { log "node on $1: fewer than $2 peers"; return 1; }
    sleep 0.2
  done
}

start_etcd() { # sets etcd_leader_port (client port of the leader)
  local ports i cluster="" client_urls=""
  read -r -a ports <<<"$(free_ports 6)"
  for i in 0 1 2; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:${ports[$((3 + i))]}"
    client_urls+="${client_urls:+,}http://127.0.0.1:${ports[$i]}"
  done
  for i in 0 1 2; do
    etcd --name "e$i" --data-dir "$shm/e$i" \
      --listen-client-urls "http://127.0.0.1:${ports[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${ports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[$((3 + i))]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((3 + i))]}" \
      --initial-cluster "$cluster" --initial-cluster-token http-bench \
      --initial-cluster-state new --logger zap --log-level error \
      >"$work/etcd$i.log" 2>&1 &
    pids+=($!)
  done
  local deadline=$((SECONDS + 30))
  until ETCDCTL_API=3 etcdctl --endpoints="$client_urls" endpoint health \
    >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && { log "etcd did not become healthy"; tail "$work"/etcd*.log >&2; return 1; }
    sleep 0.3
  done
  # Writes go to the leader: the member whose own id is the leader's.
  etcd_leader_port=$(ETCDCTL_API=3 etcdctl --endpoints="$client_urls" \
    endpoint status -w json | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"].rsplit(":", 1)[1])
        break')
  [ -n "$etcd_leader_port" ] || { log "etcd: no leader found"; return 1; }
}

# run_wrk PORT MODE THREADS [extra env]: one wrk run; sets wrk_* variables.
run_wrk() {
  local port=$1 mode=$2 threads=$3 out
  BENCH_MODE=$mode BENCH_KEYS=$keys BENCH_BATCH=$batch \
    in_background "$work/wrk.out" wrk -t"$threads" -c"$conns" -d"$duration" \
    -s "$lua" "http://127.0.0.1:$port" ||
    { log "wrk failed: $(cat "$work/wrk.out")"; return 1; }
  out=$(cat "$work/wrk.out")
  local line
  line=$(grep '^WRKRESULT' <<<"$out") || { log "wrk printed no result: $out"; return 1; }
  wrk_requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
  wrk_us=$(sed 's/.* duration_us=\([0-9]*\).*/\1/' <<<"$line")
  wrk_non2xx=$(sed 's/.* non2xx=\([0-9]*\).*/\1/' <<<"$line")
  wrk_sockerr=$(sed 's/.* sockerr=\([0-9]*\).*/\1/' <<<"$line")
  wrk_p99=$(sed 's/.* p99_ms=\([0-9.]*\).*/\1/' <<<"$line")
  # Only answers with 2xx count: a server refusing fast is not fast.
  wrk_rate=$(( (wrk_requests - wrk_non2xx) * 1000000 / (wrk_us > 0 ? wrk_us : 1) ))
  wrk_note=""
  [ "$wrk_non2xx" -gt 0 ] && wrk_note+=" non-2xx:$wrk_non2xx"
  [ "$wrk_sockerr" -gt 0 ] && wrk_note+=" sock-err:$wrk_sockerr"
  log "  $mode -t$threads on :$port: $wrk_rate/s p99 ${wrk_p99} ms$wrk_note"
  # The smoke run asserts no speed, only that the target answered at all.
  if [ "$smoke" -eq 1 ] && [ "$wrk_rate" -le 0 ]; then
    log "smoke: no 2xx answer from $mode on :$port"
    return 1
  fi
}

ratio() { # ratio A B: A/B with two decimals
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

rows=()
# measure LABEL PORT THREADS PUT_MODE GET_MODE: one table row.
measure() {
  local label=$1 port=$2 threads=$3 put_rate put_p99 put_note
  run_wrk "$port" "$4" "$threads"
  put_rate=$wrk_rate put_p99=$wrk_p99 put_note=$wrk_note
  run_wrk "$port" "$5" "$threads"
  if [ "$label" = ceiling ]; then
    ceiling_put=$put_rate ceiling_get=$wrk_rate
  fi
  rows+=("$(printf '%-22s %9s %8s %9s %8s %7s %7s %s' "$label" "$put_rate" \
    "$put_p99" "$wrk_rate" "$wrk_p99" "$(ratio "$put_rate" "$ceiling_put")" \
    "$(ratio "$wrk_rate" "$ceiling_get")" "$put_note$wrk_note")")
}

preload() { # preload PORT API: every key of the key space exists
  local out
  in_background "$work/preload.out" "${tools[@]}" preload "$1" --api "$2" \
    --keys "$keys"
  out=$(cat "$work/preload.out")
  grep -q 'failed=0$' <<<"$out" || { log "preload on :$1 failed: $out"; return 1; }
}

extras=()
date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
log "wrk -c$conns -d$duration, threads $threads_list; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

IFS=, read -r -a thread_counts <<<"$threads_list"
run_table=0 run_extras=0
[[ ",$parts," == *,table,* ]] && run_table=1
[[ ",$parts," == *,extras,* ]] && run_extras=1
for threads in "${thread_counts[@]}"; do
  [ "$run_table" -eq 1 ] || break
  rows=()
  log "wrk -t$threads: ceiling"
  start_ceiling
  measure ceiling "$ceiling_port" "$threads" put get
  stop_all
  for entry in "${node_bins[@]}"; do
    label=${entry%%=*} bin=${entry#*=}
    [ "$label" = "$entry" ] && label=syncmesh
    log "wrk -t$threads: $label, 1 node"
    start_node "$bin"
    preload "$node_http" syncmesh
    measure "$label 1 node" "$node_http" "$threads" put get
    stop_all
    log "wrk -t$threads: $label, 3 nodes (writes at A, B and C replicate)"
    start_node "$bin"
    a_http=$node_http a_listen=$node_listen
    start_node "$bin" "$a_listen"
    start_node "$bin" "$a_listen"
    c_http=$node_http
    wait_peers "$a_http" 2
    preload "$a_http" syncmesh
    measure "$label 3 nodes" "$a_http" "$threads" put get
    # The writes reached the other nodes (the key space, no count lost).
    deadline=$((SECONDS + 10))
    until [ "$(status_field "$c_http" keys)" -ge "$(status_field "$a_http" keys)" ]; do
      [ $SECONDS -ge $deadline ] && { log "C holds fewer keys than A after 10 s"; break; }
      sleep 0.2
    done
    stop_all
  done
  if [ "$with_etcd" -eq 1 ]; then
    log "wrk -t$threads: etcd, 3 members on /dev/shm"
    start_etcd
    preload "$etcd_leader_port" etcd
    measure "etcd 3.4 (3 members)" "$etcd_leader_port" "$threads" etcd_put etcd_get
    stop_all
  fi
  echo
  echo "HTTP API, wrk -t$threads -c$conns -d$duration, 64-byte values, key space $keys ($date_utc)"
  printf '%-22s %9s %8s %9s %8s %7s %7s %s\n' target "PUT/s" "p99 ms" "GET/s" \
    "p99 ms" "PUT/ceil" "GET/ceil" notes
  printf '%s\n' "${rows[@]}"
  echo "targets (issue 14): syncmesh 1 node PUT >= 0.50 x ceiling, GET >= 0.70 x ceiling"
done

# -- batch writes, idle connections, watchers: one node per binary ----------
for entry in "${node_bins[@]}"; do
  [ "$run_extras" -eq 1 ] || break
  label=${entry%%=*} bin=${entry#*=}
  [ "$label" = "$entry" ] && label=syncmesh
  echo
  echo "$label, 1 node:"
  start_node "$bin"
  code=$(/usr/bin/python3 - "$node_http" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("POST", "/v1/kv", body='[{"key":"probe","value":"x"}]',
          headers={"Content-Type": "application/json"})
print(c.getresponse().status)
EOF
)
  if [ "$code" = 404 ] || [ "$code" = 405 ]; then
    echo "  batch PUT (POST /v1/kv, $batch sets/request): n/a (endpoint missing: $code)"
  elif [ "${code:0:1}" != 2 ]; then
    echo "  batch PUT (POST /v1/kv, $batch sets/request): n/a (probe answered $code)"
  else
    t=${thread_counts[0]}
    run_wrk "$node_http" batch "$t"
    echo "  batch PUT (POST /v1/kv, $batch sets/request, wrk -t$t -c$conns -d$duration):" \
      "$(( (wrk_requests - wrk_non2xx) * batch * 1000000 / wrk_us )) keys/s ($wrk_rate requests/s, p99 $wrk_p99 ms$wrk_note) [target >= 300000 keys/s]"
  fi
  in_background "$work/idle.out" "${tools[@]}" idle "$node_http" \
    --conns "$idle_conns" --probe-seconds "$probe_seconds" \
    --open-seconds "$idle_open_seconds"
  idle=$(grep '^RESULT' "$work/idle.out")
  echo "  $idle_conns idle keep-alive connections, /healthz probe every 10 ms for ${probe_seconds}s:"
  echo "    ${idle#RESULT } [target p99 <= 10 ms]"
  stop_all
  start_node "$bin"
  in_background "$work/watch.out" "${tools[@]}" watch "$node_http" \
    --watchers "$watchers" --writes "$watch_writes"
  watch=$(grep '^RESULT' "$work/watch.out")
  echo "  $watchers SSE watchers, $watch_writes writes:"
  echo "    ${watch#RESULT } [target: all $watchers open, every event received]"
  stop_all
done
