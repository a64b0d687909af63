#!/usr/bin/env bash
# Quick start (b): sets everything up and runs the whole test suite through ctest.
# Usage: ci/test.sh [PRESET] (default "default"; CI passes "ci" for warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
ci/install-deps.sh
ci/build.sh "$preset"
# The slow label (GiB streams, 500-client runs) runs once, in the plain build; under the sanitizers it would
# cost tens of minutes and prove nothing the CI-size versions of the same tests do not.
labels=()
[ "$preset" = asan ] && labels=(-LE slow)
ctest --preset "$preset" --timeout 1800 -j "$(nproc)" "${labels[@]}"
