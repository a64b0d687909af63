#!/usr/bin/env bash
# Benchmarks exbridge side by side with HAProxy, nginx and stunnel in one run, on loopback, behind the same
# TLS 1.0 upstream (nginx serving files from tmpfs), and prints a table plus JSON (bench.json):
#   bulk download   1 GiB over TLS 1.0 upstream -> TLS 1.3 client: MB/s and the proxy's CPU-seconds per GB
#   bulk upload     1 GiB request body (an RPC_IN_DATA-sized PUT) client -> upstream
#   keep-alive      1 KiB responses over 50 keep-alive connections (wrk): requests/s, the proxy's CPU microseconds
#                   per request, p50/p99 latency
#   new TLS conns   "Connection: close" requests (a full TLS 1.3 handshake each): connections/s, the proxy's CPU
#                   microseconds per connection, and upstream connections it opened per client connection
#   idle memory     N idle keep-alive TLS connections held through the proxy (one 1 KiB request each, then
#                   silence): the proxy's RSS per connection (all its processes) and how many it held
#   crypto floor    `openssl speed` of the two ciphers in use, and each proxy's CPU per GB as a multiple of it
# Every proxy gets one worker thread/process, so the figures compare work per core. Each peer's config is
# printed. The upstream's own speed (curl straight to it) is measured first and printed, to show that it is
# not the bottleneck. Knobs: EXBRIDGE_BENCH_MB (bulk size, default 1024), EXBRIDGE_BENCH_SECONDS (wrk runs,
# default 10), EXBRIDGE_BENCH_IDLE (idle connections, default 10000), EXBRIDGE_BENCH_PEERS (default "exbridge haproxy nginx stunnel"), EXBRIDGE_BENCH_OUT (default
# build/bench), EXBRIDGE_BIN_DIR (where exbridge is; default build/bin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mb=${EXBRIDGE_BENCH_MB:-1024}
seconds=${EXBRIDGE_BENCH_SECONDS:-10}
idle=${EXBRIDGE_BENCH_IDLE:-10000}
peers=${EXBRIDGE_BENCH_PEERS:-"exbridge haproxy nginx stunnel"}
out=${EXBRIDGE_BENCH_OUT:-$root/build/bench}

need() { command -v "$1" >/dev/null 2>&1; }
missing=""
for tool in nginx haproxy stunnel4 wrk curl openssl; do need "$tool" || missing="$missing $tool"; done
if [ -n "$missing" ]; then
  echo "bench: installing$missing (ci/install-deps.sh)" >&2
  "$root/ci/install-deps.sh" >&2
fi
bin=${EXBRIDGE_BIN_DIR:-$root/build/bin}
[ -x "$bin/exbridge" ] && [ -x "$bin/exbridge-bench-hold" ] || "$root/ci/build.sh" default >&2

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
rm -rf "$out" && mkdir -p "$out"
work=$(mktemp -d /dev/shm/exbridge-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# --- lab PKI: a CA, the public name Exchange Online uses, the Exchange 2007 server's name -----------------
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=exbridge bench CA" 2>/dev/null
for leg in down up; do
  name=mail.contoso.example; [ "$leg" = up ] && name=ex2007.contoso.example
  openssl req -newkey rsa:2048 -nodes -keyout $leg.key -out $leg.csr -subj "/CN=$name" 2>/dev/null
  printf "subjectAltName=DNS:%s,IP:127.0.0.1\n" "$name" > $leg.ext
  openssl x509 -req -in $leg.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $leg.leaf -days 2 -extfile $leg.ext 2>/dev/null
  cat $leg.leaf ca.crt > $leg.crt
  cat $leg.crt $leg.key > $leg.pem
done
mkdir -p www dav tmp logs
chmod 755 "$work" www && chmod 777 dav tmp  # nginx workers run as nobody
head -c $((mb * 1048576)) /dev/zero > www/bulk
head -c 1024 /dev/zero > www/1k
head -c $((mb * 1048576)) /dev/zero > upload.bin

# Peers whose configs take a fixed port (stunnel, nginx, HAProxy) get one below the kernel's ephemeral range:
# a port in that range can be taken by one of the bench's own client connections between the check and the
# peer's bind ("Address already in use").
read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
(( ephemeral_low > 11000 )) || ephemeral_low=32768
# EXBRIDGE_BENCH_PERF=1: `perf record -g` of each proxy during the download, keep-alive and new-connection runs,
# into $out/PEER-download.perf, $out/PEER-keepalive.perf and $out/PEER-newconn.perf (look with
# `perf report -i FILE`; the figures of a profiled run are lower than those of a plain one).
perf_pid=""
perf_start() {
  [ -n "${EXBRIDGE_BENCH_PERF:-}" ] || return 0
  need perf || { echo "bench: EXBRIDGE_BENCH_PERF needs perf (apt-get install linux-perf)" >&2; exit 1; }
  perf record -q -g -o "$out/$1.perf" -p "$ppid$(pgrep -d, -P "$ppid" | sed 's/^/,/')" 2>/dev/null &
  perf_pid=$!
  sleep 0.2  # perf attaches before the load starts
}
perf_stop() {
  [ -n "$perf_pid" ] || return 0
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=""
}

free_port() {  # a random port nothing listens on
  local p
  while :; do
    p=$(shuf -i 10000-$((ephemeral_low - 1)) -n 1)
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_port() {  # until something listens on $1 (or 10 s)
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: nothing listens on port $1; see $out/*.log" >&2; exit 1
}
cpu_ticks() {  # utime+stime of a process and its children (clock ticks)
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r /proc/$p/stat ] && total=$((total + $(awk '{print $14 + $15}' /proc/$p/stat)))
  done
  echo $total
}
hz=$(getconf CLK_TCK)
tcp_active_opens() {  # connections this machine has opened (connect) since boot: /proc/net/snmp Tcp ActiveOpens
  awk '$1=="Tcp:" && $6 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp
}
rss_kb() {  # resident memory of a process and its children (nginx's workers), in KiB
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [ -r /proc/$p/status ] && total=$((total + $(awk '/^VmRSS:/{print $2}' /proc/$p/status)))
  done
  echo $total
}
# Each held connection costs the proxy two descriptors (downstream and upstream; stunnel's chain four):
# HAProxy refuses to start with a maxconn its descriptor limit cannot carry.
haproxy_maxconn=$(( ($(ulimit -n) - 200) / 2 ))
[ "$haproxy_maxconn" -gt 20000 ] && haproxy_maxconn=20000

# --- the TLS 1.0 upstream: nginx as Exchange 2007 would negotiate (TLS 1.0, AES256-SHA, and no
# encrypt-then-MAC: Windows Server 2008 predates RFC 7366, so the proxies decrypt MAC-then-encrypt records, as
# the crypto floor below assumes) -----------------------------------------------------------------------------
up_port=$(free_port)
cat > upstream.conf <<CONF
worker_processes 1;
daemon off;
error_log $work/logs/upstream.err;
pid $work/upstream.pid;
events { worker_connections 20000; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$up_port ssl;
    ssl_certificate $work/up.crt; ssl_certificate_key $work/up.key;
    ssl_protocols TLSv1; ssl_ciphers 'AES256-SHA:@SECLEVEL=0'; ssl_prefer_server_ciphers on;
    ssl_conf_command Options -EncryptThenMac;
    keepalive_requests 10000000; keepalive_timeout 300s;
    client_max_body_size 0; client_body_temp_path $work/tmp;
    root $work/www;
    location /dav/ { root $work; dav_methods PUT; create_full_put_path on; }
  }
}
CONF
nginx -c "$work/upstream.conf" -p "$work" >"$out/upstream.log" 2>&1 &
up_pid=$!; pids+=("$up_pid")
wait_port "$up_port"
direct=$(curl -sS --fail --cacert ca.crt --tlsv1 --tls-max 1.0 --ciphers 'AES256-SHA:@SECLEVEL=0' \
  --resolve "ex2007.contoso.example:$up_port:127.0.0.1" -o /dev/null -w '%{speed_download}' \
  "https://ex2007.contoso.example:$up_port/bulk")
direct_mbs=$(awk -v b="$direct" 'BEGIN{printf "%.0f", b/1e6}')

# --- the proxies under test -------------------------------------------------------------------------------
start_exbridge() {
  "$bin/exbridge" --listen "127.0.0.1:$1" --cert down.crt --key down.key --upstream "127.0.0.1:$up_port" \
    --upstream-sni ex2007.contoso.example --upstream-verify ca:ca.crt --threads 1 >"$out/exbridge.log" 2>&1 &
  echo "exbridge --listen 127.0.0.1:$1 --cert down.crt --key down.key --upstream 127.0.0.1:$up_port --upstream-sni ex2007.contoso.example --upstream-verify ca:ca.crt --threads 1" > "$out/exbridge.conf"
}
start_haproxy() {
  cat > "$out/haproxy.conf" <<CONF
global
  nbthread 1
  maxconn $haproxy_maxconn
  ssl-default-bind-options ssl-min-ver TLSv1.2
  tune.ssl.default-dh-param 2048
defaults
  mode http
  option http-keep-alive
  http-reuse safe
  timeout connect 30s
  timeout client 1h
  timeout server 1h
frontend exo
  bind 127.0.0.1:$1 ssl crt $work/down.pem alpn http/1.1
  default_backend ex2007
backend ex2007
  server ex 127.0.0.1:$up_port ssl verify required ca-file $work/ca.crt verifyhost ex2007.contoso.example sni str(ex2007.contoso.example) ssl-min-ver TLSv1.0 ssl-max-ver TLSv1.0 ciphers AES256-SHA:@SECLEVEL=0
CONF
  haproxy -f "$out/haproxy.conf" -db >"$out/haproxy.log" 2>&1 &
}
start_nginx() {
  cat > "$out/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/logs/nginx.err;
pid $work/nginx.pid;
worker_rlimit_nofile 40000;
events { worker_connections 40000; }
http {
  access_log off;
  upstream ex2007 { server 127.0.0.1:$up_port; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $work/down.crt; ssl_certificate_key $work/down.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 10000000;
    client_max_body_size 0;
    location / {
      proxy_pass https://ex2007;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off;
      proxy_ssl_protocols TLSv1; proxy_ssl_ciphers 'AES256-SHA:@SECLEVEL=0';
      proxy_ssl_server_name on; proxy_ssl_name ex2007.contoso.example;
      proxy_ssl_verify on; proxy_ssl_trusted_certificate $work/ca.crt; proxy_ssl_session_reuse on;
    }
  }
}
CONF
  nginx -c "$out/nginx.conf" -p "$work" >"$out/nginx.log" 2>&1 &
}
start_stunnel() {
  local mid; mid=$(free_port)
  cat > "$out/stunnel.conf" <<CONF
foreground = yes
pid =
[exo]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$mid
cert = $work/down.crt
key = $work/down.key
sslVersionMin = TLSv1.2
[ex2007]
client = yes
accept = 127.0.0.1:$mid
connect = 127.0.0.1:$up_port
sni = ex2007.contoso.example
checkHost = ex2007.contoso.example
CAfile = $work/ca.crt
verifyChain = yes
sslVersionMin = TLSv1
sslVersionMax = TLSv1
ciphers = AES256-SHA:@SECLEVEL=0
securityLevel = 0
CONF
  stunnel4 "$out/stunnel.conf" >"$out/stunnel.log" 2>&1 &
}

client_curl() {  # curl as the Exchange Online side: TLS 1.3, verifies the chain and the name
  curl -sS --fail --cacert ca.crt --tlsv1.2 --resolve "mail.contoso.example:$port:127.0.0.1" "$@"
}

json="$out/bench.json"
echo '{"bulk_mb": '"$mb"', "seconds": '"$seconds"', "idle_connections": '"$idle"', "upstream_direct_mb_s": '"$direct_mbs"', "peers": {' > "$json"
printf '%-9s %9s %9s %9s %9s %10s %8s %8s %8s %9s %9s %5s %10s %7s\n' proxy "down MB/s" "CPU-s/GB" "up MB/s" "CPU-s/GB" "req/s 1K" "CPU-us" "p50 ms" "p99 ms" "conn/s" "CPU-us/cx" "up/cx" "KiB/idle" "held" > "$out/table.txt"
first=1
run_peer() {  # starts a fresh instance of peer $1 (sets port, ppid, url) and checks it answers
  port=$(free_port)
  "start_$1" "$port"
  ppid=$!; pids+=("$ppid")
  wait_port "$port"
  url="https://mail.contoso.example:$port"
  client_curl -o /dev/null "$url/1k"  # warm-up and a correctness check through the proxy
}
stop_peer() { kill "$ppid" 2>/dev/null || true; wait "$ppid" 2>/dev/null || true; }

for peer in $peers; do
  # Idle memory on an instance of its own: RSS before and while $idle connections are held. The other
  # figures come from a second, fresh instance, so that tearing down thousands of connections does not
  # overlap them and the heap they left does not flatter the memory figure.
  run_peer "$peer"
  rss_before=$(rss_kb $ppid)
  coproc HOLD { exec "$bin/exbridge-bench-hold" --connect "127.0.0.1:$port" --count "$idle" --path /1k \
                  --timeout-ms 5000 2>"$out/$peer-hold.txt"; }
  hold_pid=$HOLD_PID
  held_line=""
  read -r held_line <&"${HOLD[0]}" || true  # "held H of N", once every connection is up (or failed)
  rss_held=$(rss_kb $ppid)
  held=$(awk '{print $2 + 0}' <<<"$held_line")
  kill "$hold_pid" 2>/dev/null || true
  wait "$hold_pid" 2>/dev/null || true
  echo "$held_line" >> "$out/$peer-hold.txt"
  [ "${held:-0}" -gt 0 ] || { echo "bench: $peer held no idle connection; see $out/$peer-hold.txt" >&2; exit 1; }
  idle_kib=$(awk -v a="$rss_before" -v b="$rss_held" -v n="$held" 'BEGIN{printf "%.1f", (b - a) / n}')
  stop_peer
  run_peer "$peer"

  t0=$(cpu_ticks $ppid)
  perf_start "$peer-download"
  down=$(client_curl -o /dev/null -w '%{speed_download}' "$url/bulk")
  perf_stop
  t1=$(cpu_ticks $ppid)
  up=$(client_curl -o /dev/null -H 'Expect:' -T upload.bin -w '%{speed_upload}' "$url/dav/upload-$peer")
  t2=$(cpu_ticks $ppid)
  cmp -s upload.bin "dav/upload-$peer" || { echo "bench: $peer: the uploaded file differs" >&2; exit 1; }
  rm -f "dav/upload-$peer"
  gb=$(awk -v mb="$mb" 'BEGIN{print mb/1024*1.073741824}')
  down_cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v gb="$gb" 'BEGIN{printf "%.2f", t/hz/gb}')
  up_cpu=$(awk -v t="$((t2 - t1))" -v hz="$hz" -v gb="$gb" 'BEGIN{printf "%.2f", t/hz/gb}')

  perf_start "$peer-keepalive"
  t3=$(cpu_ticks $ppid)
  wrk -t1 -c50 -d"${seconds}s" --latency "https://127.0.0.1:$port/1k" > "$out/$peer-keepalive.txt" 2>&1
  t4=$(cpu_ticks $ppid)
  perf_stop
  rps=$(awk '/Requests\/sec/{print $2}' "$out/$peer-keepalive.txt")
  # The proxy's CPU per request: steadier than requests/s, which moves with how the 2 cores are shared
  # between wrk, the proxy and the upstream.
  requests=$(awk '/requests in/{print $1}' "$out/$peer-keepalive.txt")
  us_per_rq=$(awk -v t="$((t4 - t3))" -v hz="$hz" -v n="${requests:-0}" 'BEGIN{printf "%.1f", (n > 0 ? t/hz*1e6/n : 0)}')
  p50=$(awk '$1=="50%"{print $2}' "$out/$peer-keepalive.txt")
  p99=$(awk '$1=="99%"{print $2}' "$out/$peer-keepalive.txt")
  perf_start "$peer-newconn"
  t5=$(cpu_ticks $ppid)
  opens0=$(tcp_active_opens)
  wrk -t1 -c50 -d"${seconds}s" -H 'Connection: close' "https://127.0.0.1:$port/1k" > "$out/$peer-newconn.txt" 2>&1
  opens1=$(tcp_active_opens)
  t6=$(cpu_ticks $ppid)
  perf_stop
  cps=$(awk '/Requests\/sec/{print $2}' "$out/$peer-newconn.txt")
  # Per client connection: the proxy's CPU, and how many upstream connections it opened. The machine's TCP
  # active opens count wrk's connections (one per request with Connection: close) and the proxy's own; a proxy
  # that hands idle upstream connections to new clients opens fewer than one upstream connection per client.
  conns=$(awk '/requests in/{print $1}' "$out/$peer-newconn.txt")
  us_per_cx=$(awk -v t="$((t6 - t5))" -v hz="$hz" -v n="${conns:-0}" 'BEGIN{printf "%.0f", (n > 0 ? t/hz*1e6/n : 0)}')
  up_per_cx=$(awk -v o="$((opens1 - opens0))" -v n="${conns:-0}" 'BEGIN{printf "%.2f", (n > 0 ? (o - n)/n : 0)}')
  for figure in "$rps" "$cps"; do
    awk -v f="${figure:-0}" 'BEGIN{exit !(f > 0)}' || { echo "bench: $peer answered no wrk request; see $out/$peer-*.txt" >&2; exit 1; }
  done

  stop_peer
  down_mbs=$(awk -v b="$down" 'BEGIN{printf "%.0f", b/1e6}')
  up_mbs=$(awk -v b="$up" 'BEGIN{printf "%.0f", b/1e6}')
  printf '%-9s %9s %9s %9s %9s %10s %8s %8s %8s %9s %9s %5s %10s %7s\n' "$peer" "$down_mbs" "$down_cpu" "$up_mbs" "$up_cpu" "$rps" "$us_per_rq" "$p50" "$p99" "$cps" "$us_per_cx" "$up_per_cx" "$idle_kib" "$held" >> "$out/table.txt"
  [ $first = 1 ] || echo ',' >> "$json"; first=0
  printf '"%s": {"down_mb_s": %s, "down_cpu_s_per_gb": %s, "up_mb_s": %s, "up_cpu_s_per_gb": %s, "keepalive_rps": %s, "keepalive_cpu_us_per_request": %s, "keepalive_p50": "%s", "keepalive_p99": "%s", "new_conn_per_s": %s, "new_conn_cpu_us": %s, "upstream_conns_per_new_conn": %s, "idle_kib_per_conn": %s, "idle_held": %s, "idle_rss_kib_before": %s, "idle_rss_kib_held": %s}' \
    "$peer" "$down_mbs" "$down_cpu" "$up_mbs" "$up_cpu" "${rps:-0}" "$us_per_rq" "$p50" "$p99" "${cps:-0}" "$us_per_cx" "$up_per_cx" "$idle_kib" "$held" "$rss_before" "$rss_held" >> "$json"
done

# --- the crypto floor: what the two ciphers alone cost per GB on this machine ------------------------------
speed() { openssl speed -elapsed -seconds 2 -bytes 16384 "$@" 2>/dev/null | awk '/^(aes|AES)/{v=$NF; sub(/k$/,"",v); print v*1000}' | tail -1; }
cbc=$(speed -decrypt -evp aes-256-cbc-hmac-sha1)
gcm=$(speed -evp aes-256-gcm)
floor=$(awk -v a="$cbc" -v b="$gcm" 'BEGIN{printf "%.2f", 1e9/a + 1e9/b}')
echo '}, "crypto_floor_cpu_s_per_gb": '"$floor"', "aes256_cbc_hmac_sha1_decrypt_bytes_s": '"$cbc"', "aes256_gcm_encrypt_bytes_s": '"$gcm"'}' >> "$json"

echo "exbridge benchmark: $mb MiB bulk each way, wrk ${seconds}s x 50 connections, $idle idle TLS connections, one worker per proxy, $(nproc) cores"
cat "$out/table.txt"
echo "crypto floor: $floor CPU-s/GB (AES-256-CBC-HMAC-SHA1 decrypt $(awk -v a="$cbc" 'BEGIN{printf "%.0f", a/1e6}') MB/s + AES-256-GCM encrypt $(awk -v b="$gcm" 'BEGIN{printf "%.0f", b/1e6}') MB/s, openssl speed)"
fastest=$(awk 'NR > 1 && $2 > m {m = $2} END {print m + 0}' "$out/table.txt")
verdict="more than the fastest proxy ($fastest MB/s): the upstream is not the bottleneck"
if [ "$direct_mbs" -le "$fastest" ]; then
  verdict="WARNING: not more than the fastest proxy ($fastest MB/s): the upstream may be the bottleneck, bulk figures are a floor"
fi
echo "upstream: nginx serving tmpfs over TLS 1.0 (AES256-SHA) delivers $direct_mbs MB/s to curl on its own, $verdict; it used $(awk -v t="$(cpu_ticks "$up_pid")" -v hz="$hz" 'BEGIN{printf "%.1f", t/hz}') CPU-s in total"
echo "peer configs and raw wrk output: $out/"
for peer in $peers; do echo "--- $peer"; cat "$out/$peer.conf"; done
