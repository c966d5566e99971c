#!/bin/bash
# Memory per key of one syncmesh-node, with or without durable storage
# (issue 15: "memory per key no worse than without storage; count RssAnon
# apart from the engine's mapped files and caches"). Starts a node, loads
# --keys keys of 64-byte values through POST /v1/kv (batches of 1,000),
# and prints RssAnon growth per key, the engine's memory (write buffers,
# block cache, table readers, from /v1/status) and RssAnon less that per
# key, right after the load and once RssAnon stops falling (jemalloc
# returns freed pages to the OS over its 10 s decay; at most 30 s). Options after -- go to the node, e.g.
#   tests/bench/memory_probe.sh -- --data-dir=/var/tmp/d --durability=batch
# MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0 in the environment makes
# the allocator return freed pages at once: what is left is what is held.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=node_ready.sh
source "$here/node_ready.sh"
node_bin="$root/build/bin/syncmesh-node"
keys=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --node-bin=*) node_bin=${1#*=} ;;
    --keys=*) keys=${1#*=} ;;
    --) shift; break ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "memory_probe: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

use_scratch_dir

"$node_bin" --host=127.0.0.1 --port=0 --http=127.0.0.1:0 --log-level=warning \
  --expected-keys=$((keys + keys / 10)) "$@" >"$work/log" 2>&1 &
pid=$!
await_ready "$work/log" "$pid" 60 memory_probe
port=$http_port

anon() { awk '/^RssAnon:/ {print $2 * 1024}' "/proc/$pid/status"; }
engine() {
  /usr/bin/python3 -c "
import http.client, json
c = http.client.HTTPConnection('127.0.0.1', $port, timeout=10)
c.request('GET', '/v1/status')
s = json.loads(c.getresponse().read())['storage']
print(s.get('engine', {}).get('memory_bytes', 0))"
}

anon0=$(anon)
engine0=$(engine)
/usr/bin/python3 - "$port" "$keys" <<'PY'
import http.client, json, sys
port, keys = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for start in range(0, keys, 1000):
    items = [{"key": "t/%d" % i, "value": "%020d " % i + "v" * 43}
             for i in range(start, min(keys, start + 1000))]
    c.request("POST", "/v1/kv", json.dumps(items),
              {"Content-Type": "application/json"})
    res = c.getresponse()
    res.read()
    if res.status != 200:
        sys.exit("POST /v1/kv answered %d" % res.status)
PY
report() { # report WHEN
  local a e
  a=$(anon)
  e=$(engine)
  echo "memory_probe: $1: RssAnon +$(((a - anon0) / keys)) B/key;" \
    "engine memory $((e / 1048576)) MiB;" \
    "RssAnon less engine +$((((a - e) - (anon0 - engine0)) / keys)) B/key" \
    "(key and value: ~72 B/key)"
}
echo "memory_probe: $keys keys, node args: ${*:-(memory only)}"
report "after the load"
# jemalloc returns freed pages over its 10 s decay: poll RssAnon (every
# 0.5 s) until it has not fallen for 3 s, at most 30 s.
started=$SECONDS
last=$(anon)
steady=0
while [ $steady -lt 6 ] && [ $((SECONDS - started)) -lt 30 ]; do
  sleep 0.5 # between tries of the poll
  now=$(anon)
  if [ "$now" -lt "$last" ]; then steady=0; else steady=$((steady + 1)); fi
  last=$now
done
report "$((SECONDS - started)) s later, RssAnon settled"
