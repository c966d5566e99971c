#!/usr/bin/env bash
# Restart benchmark of durable storage (issue 15): one syncmesh-node with a
# data dir gets N keys through POST /v1/kv batches, stops (SIGTERM), starts
# again on the same dir, and the script prints how long the load took (the
# node's own "loaded N entries ... in T ms" line), the time from exec to the
# ready line, and the disk used per key. Not a timed test: nothing here
# asserts a speed; the issue's target (1 M keys back in <= 3 s) is printed
# beside the figures.
#
# Usage: tests/bench/restart_bench.sh [--keys=N] [--value-size=B]
#          [--durability=always|batch|none] [--node-bin=PATH]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=node_ready.sh
source "$here/node_ready.sh"
keys=1000000
value_size=64
durability=batch
node_bin="$root/build/bin/syncmesh-node"
for arg in "$@"; do
  case "$arg" in
    --keys=*) keys=${arg#*=} ;;
    --value-size=*) value_size=${arg#*=} ;;
    --durability=*) durability=${arg#*=} ;;
    --node-bin=*) node_bin=${arg#*=} ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "restart_bench: unknown option $arg" >&2; exit 2 ;;
  esac
done

use_scratch_dir

start_node() { # start_node LOG: sets pid, port and ready_ms (exec to ready line)
  local t0 t1
  t0=$(date +%s%N)
  "$node_bin" --host=127.0.0.1 --port=0 --http=127.0.0.1:0 --log-level=info \
    --data-dir="$work/data" --durability="$durability" \
    --expected-keys="$keys" >"$1" 2>&1 &
  pid=$!
  await_ready "$1" "$pid" 120 restart_bench
  t1=$(date +%s%N)
  port=$http_port
  ready_ms=$(((t1 - t0) / 1000000))
}

stop_node() {
  kill "$pid"
  wait "$pid" || true
  pid=
}

start_node "$work/first.log"
echo "restart_bench: loading $keys keys of $value_size bytes (durability $durability)"
/usr/bin/python3 - "$port" "$keys" "$value_size" <<'EOF'
import http.client, json, sys
port, keys, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
value = "v" * size
batch = 1000
for start in range(0, keys, batch):
    items = [{"key": "restart-%d" % i, "value": value}
             for i in range(start, min(keys, start + batch))]
    conn.request("POST", "/v1/kv", json.dumps(items),
                 {"Content-Type": "application/json"})
    res = conn.getresponse()
    res.read()
    if res.status != 200:
        sys.exit("POST /v1/kv answered %d" % res.status)
EOF
stop_node
disk=$(du -sb "$work/data/entries" | cut -f1)
start_node "$work/second.log"
loaded=$(sed -n 's/.*\(loaded [0-9]* entries .* in [0-9]* ms\).*/\1/p' "$work/second.log")
count=$(/usr/bin/python3 -c "
import http.client, json
c = http.client.HTTPConnection('127.0.0.1', $port, timeout=10)
c.request('GET', '/v1/status')
print(json.loads(c.getresponse().read())['keys'])")
stop_node
echo "restart_bench: $loaded; exec to ready line ${ready_ms} ms; keys after restart $count of $keys [target: 1 M keys back in <= 3000 ms]"
echo "restart_bench: disk $disk bytes = $((disk / keys)) bytes/key (key ~14 B + value $value_size B + version and lease)"
