#!/usr/bin/env bash
# Quick start (b): sets everything up and runs the whole test suite through ctest.
# Usage: ci/test.sh [PRESET] (default "default"; CI passes "ci" for warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
ci/install-deps.sh
ci/build.sh "$preset"
ctest --preset "$preset" --timeout 600 -j "$(nproc)"
