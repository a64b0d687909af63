#!/usr/bin/env bash
# The HTML report renders in a real browser: runs the seed story, then loads report.html in headless
# Chromium (Debian's chromium package), checks that the DOM holds the timeline SVG with its rows, and takes
# a screenshot that must not be blank. Prints SKIPPED (and exits 0) when chromium is not installed.
set -euo pipefail
bin_dir=${1:?bin dir}
source_dir=${2:?source dir}
out=${3:?output dir}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIPPED (chromium is not installed; apt-get install chromium)"
  exit 0
fi
rm -rf "$out" && mkdir -p "$out"
"$bin_dir/rehearse" run "$source_dir/scenarios/basics/seed-story.toml" --out "$out" > "$out/rehearse.txt"
report="$out/report.html"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$out/chromium-profile")
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$report" > "$out/dom.html" 2> "$out/chromium.log"
for needle in '<svg' 'connection 1' 'seed-story' 'tls-version-refused'; do
  grep -q -- "$needle" "$out/dom.html" || { echo "FAIL: the rendered DOM lacks '$needle' (see $out/dom.html)"; exit 1; }
done
timeout 120 "$browser" "${flags[@]}" --window-size=1100,1400 --screenshot="$out/report.png" "file://$report" \
  >> "$out/chromium.log" 2>&1
size=$(stat -c %s "$out/report.png")
# A blank 1100x1400 PNG compresses to a few kilobytes; the report with tables and a chart is far larger.
if [ "$size" -lt 30000 ]; then
  echo "FAIL: screenshot $out/report.png is only $size bytes (blank page?)"
  exit 1
fi
echo "report renders: DOM has the timeline, screenshot $out/report.png is $size bytes"
