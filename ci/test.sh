#!/usr/bin/env bash
# Quick start (b): sets everything up and runs the whole test suite through ctest.
# Usage: ci/test.sh [PRESET] (default "default"; CI passes "ci" for warnings as errors, then "asan" and "tsan").
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
[ -n "${EXBRIDGE_DEPS_INSTALLED:-}" ] || ci/install-deps.sh
labels=()
if [ "$preset" = tsan ]; then
  # ThreadSanitizer is about exbridge's threads: its integration tests (in-process bridge on several threads,
  # EXBRIDGE_TEST_THREADS in the preset, and the real binary), built alone. The unit tests are
  # single-threaded, the e2e scenarios repeat what the integration tests cover at 5-15x the cost, and the
  # benchmark smoke runs exbridge on one thread.
  ci/build.sh "$preset" exbridge fake-exchange rehearse integration_tests
  labels=(-L integration -LE slow -E '^integration\.bench_smoke$')
elif [ "$preset" = asan ]; then
  # Everything its tests run, not the benchmark tools (the benchmark smoke tests do not run under ASan).
  ci/build.sh "$preset" exbridge fake-exchange rehearse unit_tests integration_tests e2e_tests
else
  ci/build.sh "$preset"
fi
# The slow label (GiB streams, 500-client runs) runs once, in the plain build; under the sanitizers it would
# cost tens of minutes and prove nothing the CI-size versions of the same tests do not. Nor does ASan re-run
# what it cannot improve: the benchmark smoke tests (timing scripts around the same binaries), the HTML
# report's rendering in Chromium and the third-party EWS client (Python code, not ours).
if [ "$preset" = asan ]; then
  labels=(-LE slow -E '^(integration\.bench_smoke|integration\.bench_fake_exchange_smoke|e2e\.report_renders|e2e\.exchangelib_client)$')
fi
ctest --preset "$preset" --timeout 1800 -j "$(nproc)" "${labels[@]}"
