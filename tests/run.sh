#!/usr/bin/env bash
# Installs missing dependencies, configures and builds into build/, runs
# every test under ctest, then builds the libFuzzer targets with clang into
# build-fuzz/ and runs each briefly on its seed corpus. The exit code is the
# tests' verdict.
#
# Environment: SYNCMESH_BUILD_TYPE (RelWithDebInfo), SYNCMESH_JOBS (nproc),
# SYNCMESH_FUZZ_SECONDS (10 per target; 0 skips the fuzz smoke run).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

deploy/install-deps.sh

build_type=${SYNCMESH_BUILD_TYPE:-RelWithDebInfo}
jobs=${SYNCMESH_JOBS:-$(nproc)}
fuzz_seconds=${SYNCMESH_FUZZ_SECONDS:-10}

cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type" -DSYNCMESH_BUILD_TESTS=ON
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs" "$@")

if [ "$fuzz_seconds" -gt 0 ]; then
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DSYNCMESH_BUILD_TESTS=OFF \
    -DSYNCMESH_BUILD_FUZZERS=ON \
    "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address"
  cmake --build build-fuzz -j "$jobs" --target fuzz_frames fuzz_handshake \
    fuzz_anti_entropy \
    fuzz_py2p
  for target in frames handshake py2p anti_entropy; do
    # Work on a copy: libFuzzer adds what it finds to the corpus directory.
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/"$target"/* "$corpus"/
    echo "fuzz smoke: $target for ${fuzz_seconds}s"
    build-fuzz/bin/fuzz_"$target" -max_total_time="$fuzz_seconds" \
      -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
    rm -rf "$corpus"
  done
fi
