#!/usr/bin/env bash
# Installs every Debian 12 package that exbridge's build, tests and demo need. Idempotent and
# non-interactive; uses sudo when not run as root. Nothing is downloaded from anywhere but Debian.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libssl-dev libpugixml-dev libtomlplusplus-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev
  # libFuzzer targets (ci/fuzz.sh): clang 14 and its sanitizer/fuzzer runtimes
  clang libclang-rt-14-dev
  # peers and tools used by tests, benchmarks and rehearsals
  openssl curl haproxy stunnel4 nginx-light wrk sslscan
  # renders rehearse's HTML report in a test (headless)
  chromium
  # a real third-party EWS client against fake-exchange through exbridge (tests/e2e/exchangelib_client.py)
  python3-exchangelib
  # a real third-party RPC over HTTP v2 client, the same way (tests/e2e/impacket_rpch_client.py)
  python3-impacket
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages of the peers start services on install; the tests start their own instances.
for svc in haproxy nginx stunnel4; do
  $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
