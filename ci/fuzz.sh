#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, preset "fuzz": clang, ASan + UBSan) and runs each for a while
# on a copy of its seed corpus. Fails on any crash, UB report, leak, timeout or out-of-memory, and leaves
# the reproducer (crash-*, leak-*, timeout-*, oom-*) in build-fuzz/fuzz-run/TARGET/ with the log beside it.
# Usage: ci/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s, every target; 0 = replay the seeds only,
# the README's longer run 600 s). EXBRIDGE_FUZZ_SEED=N fixes libFuzzer's random seed, so a run explores the
# same inputs in the same order every time (CI: 20 s per target with seed 1, so that a CI failure is a code
# change, not luck; checked beforehand with the same seed for longer). Replay a reproducer: build-fuzz/bin/TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_http_request fuzz_http_response fuzz_ntlm fuzz_ews_request
                                     fuzz_config_exbridge fuzz_config_fake_exchange fuzz_scenario fuzz_rts
                                     fuzz_dcerpc fuzz_rpc_call fuzz_fasttransfer fuzz_lz77
                                     fuzz_emsmdb_reply)

[ -n "${EXBRIDGE_DEPS_INSTALLED:-}" ] || ci/install-deps.sh
started=$(date +%s)
[ -f build-fuzz/CMakeCache.txt ] || cmake --preset fuzz -G Ninja
cmake --build --preset fuzz --target fuzz -j "$(nproc)"
echo "fuzz: built in $(( $(date +%s) - started )) s"

run_root=build-fuzz/fuzz-run
failed=()
summary=()
for t in "${targets[@]}"; do
  dir="$run_root/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/tmp"
  cp tests/fuzz/corpus/"$t"/* "$dir/corpus/"
  seeds=$(ls "$dir/corpus" | wc -l)
  # 0 seconds: replay the seed corpus once (every regression seed), deterministic.
  if [ "$seconds" -eq 0 ]; then budget=(-runs=0); else budget=(-max_total_time="$seconds"); fi
  args=("${budget[@]}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$dir/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  if [ -n "${EXBRIDGE_FUZZ_SEED:-}" ]; then args+=(-seed="$EXBRIDGE_FUZZ_SEED"); fi
  echo "fuzz: $t for $seconds s on $seeds seeds${EXBRIDGE_FUZZ_SEED:+, random seed $EXBRIDGE_FUZZ_SEED}"
  status=0
  # TMPDIR: the config targets write each input to a temporary file.
  TMPDIR="$dir/tmp" "build-fuzz/bin/$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  done_line=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$dir/log" | tail -1 || true)  # DONE, or the last progress line
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corpus=$(ls "$dir/corpus" | wc -l)
  line=$(printf '%-27s %12s execs  cov %6s  ft %7s  corpus %5s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus")
  if [ "$status" -ne 0 ]; then
    artifact=$(ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null | head -1 || true)
    line="$line  FAILED (exit $status) ${artifact:-no artifact}"
    failed+=("$t")
    grep -E 'ERROR:|runtime error:|fuzz invariant broken|SUMMARY:|Test unit written' "$dir/log" | head -8 | sed 's/^/  /'
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary ($seconds s per target, $(( $(date +%s) - started )) s in all):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers and logs in $run_root/)" >&2
  exit 1
fi
echo "fuzz: no crash, UB, leak or timeout"
