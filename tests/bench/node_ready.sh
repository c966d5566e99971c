# Sourced by the bench scripts that start one syncmesh-node themselves.

# use_scratch_dir: makes the scratch dir $work and, on exit, kills the node
# in $pid (when set) and removes $work.
use_scratch_dir() {
  work=$(mktemp -d)
  pid=
  trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
}

# await_ready LOG PID SECONDS TOOL: polls LOG for the node's ready line
# (10 ms between tries) until SECONDS pass; exits with the log when the
# node dies first. Sets http_port from the ready line.
await_ready() {
  local deadline=$((SECONDS + $3))
  until grep -q "syncmesh-node ready" "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "$4: no ready line in $3 s" >&2; exit 1; }
    sleep 0.01 # between tries of the poll
  done
  http_port=$(sed -n 's/.* http=127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -n1)
}
