#!/usr/bin/env bash
# Quick start (a): sets everything up and runs the default rehearsal on loopback, printing its report:
# the seed story first (straight to Exchange 2007 fails on TLS 1.0, through exbridge it works), then a whole
# mailbox migrated and verified, NTLM through exbridge, and the seed write-up's own haproxy.cfg (linted, run,
# and explained) next to its corrected version. Reports land in rehearse-out/ (report.html, JSON, JUnit).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/install-deps.sh
ci/build.sh default
exec build/bin/rehearse run scenarios/basics/seed-story.toml scenarios/migration/migrate-mailbox.toml scenarios/ntlm/ntlm-through-exbridge.toml \
  scenarios/haproxy/haproxy-seed.toml scenarios/haproxy/haproxy-fixed.toml "$@"
