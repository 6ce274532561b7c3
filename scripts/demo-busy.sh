#!/usr/bin/env bash
# Runs `make demo` (the shipped binaries and config, a 100,000-line feed) while
# two CPU-bound processes keep this machine busy, as a user's laptop or a
# shared CI runner would be. Exits with the demo's status; the hogs are
# stopped whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
hogs=()
stop() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop EXIT
for _ in 1 2; do
  yes >/dev/null &
  hogs+=("$!")
done
echo "demo-busy: running make demo beside 2 CPU hogs (pids ${hogs[*]})" >&2
make --no-print-directory demo DEMO_ARGS="${DEMO_ARGS:-} -run-dir .run/demo-busy"
