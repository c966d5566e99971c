-- wrk script of the HTTP benchmark (issue 14), run by tests/bench/http_bench.sh.
-- What each request is comes from the environment, so one file serves every
-- target with the same wrk settings:
--   BENCH_MODE    put | get          syncmesh API (and the ceiling server)
--                 etcd_put | etcd_get   etcd's JSON gateway (/v3/kv/...)
--                 batch              POST /v1/kv, a JSON list of BENCH_BATCH sets
--   BENCH_KEYS    key space (keys "<BENCH_PREFIX><n>", n < BENCH_KEYS)
--   BENCH_PREFIX  key prefix (default "bench-")
--   BENCH_BATCH   sets per batch request (default 1000)
--   BENCH_VALUE_SIZE  bytes per value (default 64)
-- done() prints one "WRKRESULT ..." line the script parses.
--
-- Every per-thread value is a global: wrk loads this file into each thread's
-- own Lua state and setup() hands each thread its number with thread:set(),
-- which sets a global; a file-scope `local` of the same name would shadow it.

mode = os.getenv("BENCH_MODE") or "get"
key_space = tonumber(os.getenv("BENCH_KEYS") or "1000")
prefix = os.getenv("BENCH_PREFIX") or "bench-"
batch_size = tonumber(os.getenv("BENCH_BATCH") or "1000")
value_size = tonumber(os.getenv("BENCH_VALUE_SIZE") or "64")

threads_started = 0

function setup(thread)
  thread:set("thread_index", threads_started)
  threads_started = threads_started + 1
end

b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Base64 (etcd's gateway takes bytes fields as base64).
function b64(s)
  return ((s:gsub(".", function(c)
    local bits, byte = "", c:byte()
    for i = 8, 1, -1 do
      bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0")
    end
    return bits
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local n = 0
    for i = 1, 6 do
      n = n + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
    end
    return b64chars:sub(n + 1, n + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

function make_value(n)
  return string.sub("v" .. n .. "-" .. string.rep("x", value_size), 1,
                    value_size)
end

function init(args)
  thread_index = thread_index or 0
  counter = thread_index * 7919 -- threads start at different keys
  math.randomseed(12345 + thread_index)
  value = make_value(thread_index)
  if mode == "etcd_put" or mode == "etcd_get" then
    etcd_keys = {}
    for i = 0, key_space - 1 do
      etcd_keys[i] = b64(prefix .. i)
    end
    etcd_value = b64(value)
  elseif mode == "batch" then
    -- A few bodies per thread, reused in turn: building 1,000 JSON objects
    -- per request would make wrk, not the server, the bottleneck.
    bodies = {}
    for b = 1, 8 do
      local items = {}
      for j = 1, batch_size do
        local key = prefix .. "t" .. thread_index .. "-" .. (b * batch_size + j)
        items[j] = '{"key":"' .. key .. '","value":"' .. value .. '"}'
      end
      bodies[b] = "[" .. table.concat(items, ",") .. "]"
    end
    batch_turn = 0
  end
end

json_headers = { ["Content-Type"] = "application/json" }
bytes_headers = { ["Content-Type"] = "application/octet-stream" }

function request()
  counter = counter + 1
  if mode == "put" then
    return wrk.format("PUT", "/v1/kv/" .. prefix .. (counter % key_space),
                      bytes_headers, value)
  elseif mode == "get" then
    return wrk.format("GET", "/v1/kv/" .. prefix .. math.random(0, key_space - 1))
  elseif mode == "etcd_put" then
    return wrk.format("POST", "/v3/kv/put", json_headers,
                      '{"key":"' .. etcd_keys[counter % key_space]
                        .. '","value":"' .. etcd_value .. '"}')
  elseif mode == "etcd_get" then
    return wrk.format("POST", "/v3/kv/range", json_headers,
                      '{"key":"' .. etcd_keys[math.random(0, key_space - 1)]
                        .. '","serializable":true}')
  elseif mode == "batch" then
    batch_turn = batch_turn % #bodies + 1
    return wrk.format("POST", "/v1/kv", json_headers, bodies[batch_turn])
  end
  error("unknown BENCH_MODE " .. mode)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d duration_us=%d non2xx=%d sockerr=%d "
      .. "p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
