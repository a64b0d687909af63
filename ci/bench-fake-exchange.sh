#!/usr/bin/env bash
# fake-exchange's serving speed, so that a rehearsal can say the synthetic Exchange 2007 was not its bottleneck:
# GetItem with MimeContent for about 1 GiB of large items over TLS 1.0 (AES128-SHA, as a Windows 2008 server
# negotiates it), fake-exchange on its one I/O thread and curl on the other core; and its memory while it streams
# items of 150 MB (it must stay flat: items are produced as they are sent, never held whole).
# Env: EXBRIDGE_FX_BENCH_MB (default 1024), EXBRIDGE_FX_BENCH_ITEM_MB (default 150), EXBRIDGE_BIN_DIR (default
# build/bin), EXBRIDGE_FX_BENCH_OUT (default build/bench-fake-exchange). Prints a summary and writes result.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${EXBRIDGE_BIN_DIR:-build/bin}
total_mb=${EXBRIDGE_FX_BENCH_MB:-1024}
item_mb=${EXBRIDGE_FX_BENCH_ITEM_MB:-150}
out=${EXBRIDGE_FX_BENCH_OUT:-build/bench-fake-exchange}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-fake-exchange: needs $tool (ci/install-deps.sh installs it)" >&2; exit 1; }
done
[ -x "$bin/fake-exchange" ] || { echo "bench-fake-exchange: $bin/fake-exchange is missing; build first (ci/build.sh)" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"

# Items of item_mb (+-10 %), enough of them for total_mb; every Inbox item large.
items=$(( (total_mb + item_mb - 1) / item_mb ))
coproc FX { exec "$bin/fake-exchange" --listen 127.0.0.1:0 --mailbox-items "$items" --large-every 1 \
                 --large-size "$((item_mb * 1000000))" --manifest "$out/manifest.json" 2>"$out/fake-exchange.log"; }
fx_pid=$FX_PID
trap 'kill "$fx_pid" 2>/dev/null || true' EXIT
ready=""
read -r ready <&"${FX[0]}" || true   # "listening https HOST:PORT"
if [ "${ready#listening https }" = "$ready" ]; then
  echo "bench-fake-exchange: fake-exchange did not start; its log:" >&2; cat "$out/fake-exchange.log" >&2; exit 1
fi
addr=${ready##* }

status_kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$fx_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$fx_pid/stat"; }
rss_before=$(status_kb VmRSS)
ticks_before=$(cpu_ticks)
threads=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$fx_pid/status")

python3 - "$out/manifest.json" > "$out/items.tsv" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for folder in m["users"][0]["folders"]:
    if folder["id"] == "inbox":
        for item in folder["items"]:
            print(item["id"], item["size"])
PY

started=$(date +%s.%N)
served=0; item_bytes=0; n=0
while read -r id size; do
  cat > "$out/request.xml" <<XML
<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2007_SP1" /></soap:Header><soap:Body><m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id="$id" /></m:ItemIds></m:GetItem></soap:Body></soap:Envelope>
XML
  # TLS 1.0 with OpenSSL 3 needs security level 0 on the client too.
  got=$(curl -sS -k --tlsv1.0 --tls-max 1.0 --ciphers 'AES128-SHA:@SECLEVEL=0' --fail \
             -u 'alex.wilber@contoso.example:Exbridge-Demo-2007' -H 'Content-Type: text/xml; charset=utf-8' \
             --data-binary @"$out/request.xml" "https://$addr/EWS/Exchange.asmx" -o /dev/null -w '%{size_download}')
  # The base64 MIME is 4/3 of the item; anything much shorter means the item was not served whole.
  if [ "$got" -lt $(( size * 4 / 3 )) ]; then
    echo "bench-fake-exchange: item $id: got $got bytes for a $size-byte item" >&2; exit 1
  fi
  served=$((served + got)); item_bytes=$((item_bytes + size)); n=$((n + 1))
done < "$out/items.tsv"
ended=$(date +%s.%N)
ticks_after=$(cpu_ticks)
rss_after=$(status_kb VmRSS)
hwm=$(status_kb VmHWM)
hz=$(getconf CLK_TCK)

python3 - "$out/result.json" "$n" "$item_bytes" "$served" "$started" "$ended" "$((ticks_after - ticks_before))" "$hz" \
  "$rss_before" "$rss_after" "$hwm" "$threads" "$item_mb" <<'PY'
import json, sys
path, n, item_bytes, served, t0, t1, ticks, hz, rss0, rss1, hwm, threads, item_mb = sys.argv[1:]
seconds = float(t1) - float(t0)
cpu = int(ticks) / int(hz)
r = {
    "items": int(n), "item_mb": int(item_mb), "item_bytes": int(item_bytes), "response_bytes": int(served),
    "seconds": round(seconds, 2),
    "response_mb_s": round(int(served) / seconds / 1e6, 1), "item_mb_s": round(int(item_bytes) / seconds / 1e6, 1),
    "fake_exchange_cpu_s": round(cpu, 2), "fake_exchange_cpu_share": round(cpu / seconds, 2),
    "response_mb_per_cpu_s": round(int(served) / cpu / 1e6, 1) if cpu > 0 else 0,
    "threads": int(threads), "rss_kb_before": int(rss0), "rss_kb_after": int(rss1), "peak_rss_kb": int(hwm),
}
json.dump(r, open(path, "w"), indent=1)
print(f"fake-exchange served {r['items']} items of ~{item_mb} MB ({r['item_bytes']/1e6:.0f} MB of MIME, "
      f"{r['response_bytes']/1e6:.0f} MB of base64 SOAP) over TLS 1.0 AES128-SHA in {seconds:.1f} s: "
      f"{r['response_mb_s']} MB/s on the wire ({r['item_mb_s']} MB/s of items)")
print(f"fake-exchange CPU: {cpu:.1f} s for {seconds:.1f} s of wall time ({cpu/seconds*100:.0f} % of one core; "
      f"{'curl, the client, is the limit' if cpu/seconds < 0.9 else 'fake-exchange is the limit'}); "
      f"{threads} threads (one serves requests)")
print(f"fake-exchange capacity: {r['response_mb_per_cpu_s']} MB on the wire per CPU-second of its serving thread "
      f"(what it would serve on a core of its own)")
print(f"fake-exchange memory: RSS {int(rss0)/1024:.1f} MB before, {int(rss1)/1024:.1f} MB after, "
      f"peak {int(hwm)/1024:.1f} MB while streaming {item_mb} MB items")
PY
