#!/usr/bin/env bash
# Configures and builds with a CMake preset (default: "default"; CI uses "ci", which adds -Werror).
# Usage: ci/build.sh [PRESET [TARGET...]] (no target: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
shift || true
targets=()
[ "$#" -gt 0 ] && targets=(--target "$@")
cmake --preset "$preset" -G Ninja >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" "${targets[@]}"
