#!/usr/bin/env bash
# Installs missing dependencies, configures and builds into build/, and runs
# every test under ctest. The exit code is the tests' verdict.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

deploy/install-deps.sh

build_type=${SYNCMESH_BUILD_TYPE:-RelWithDebInfo}
jobs=${SYNCMESH_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type" -DSYNCMESH_BUILD_TESTS=ON
cmake --build build -j "$jobs"
cd build
ctest --output-on-failure -j "$jobs" "$@"
