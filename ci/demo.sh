#!/usr/bin/env bash
# Quick start (a): sets everything up and runs the default rehearsal on loopback, printing its report.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/install-deps.sh
ci/build.sh default
exec build/bin/rehearse run scenarios/seed-story.toml "$@"
