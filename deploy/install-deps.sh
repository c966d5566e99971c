#!/usr/bin/env bash
# Installs the Debian packages syncmesh needs to build and test. Idempotent:
# when everything is present it only runs dpkg-query and exits.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libcaf-dev
  libprotobuf-dev protobuf-compiler
  libboost-test-dev
  libboost-dev # Boost.Beast/Asio headers: the HTTP server (node/daemon/http_server)
  libcpp-httplib-dev prometheus-cpp-dev nlohmann-json3-dev
  libcli11-dev # syncmesh-node's options (node/daemon/node_options.cpp)
  clang libclang-rt-14-dev # libFuzzer targets
  libbenchmark-dev # micro-benchmarks
  wrk # HTTP benchmark smoke run (tests/bench/http_bench.sh; etcd it installs itself)
  libjemalloc-dev # allocator of syncmesh-node and the benchmark (README)
  # py2p wire dialect: msgpack (header-only), SHA-256/384, zlib/gzip
  libmsgpack-cxx-dev libssl-dev zlib1g-dev
  libxxhash-dev # keyed hash of peer-chosen keys (XXH3 with a random seed)
  librocksdb-dev # durable storage of entries (actors/rocksdb_storage.*)
  liblmdb-dev # only syncmesh-storage-bench, the engine comparison (issue 15)
  # interop tests: py2p 0.7.870 on Debian's python3 (tests/interop/README.md)
  python3 python3-base58 python3-u-msgpack python3-pyee
  # browser test of the status page (tests/browser): headless Chromium
  # driven by Selenium from Debian's python3
  chromium chromium-driver python3-selenium
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
  # A fresh machine may have stale package lists: refresh once and retry.
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
