#!/usr/bin/env bash
# The project's test command (README): fetch test peers and fixtures, run every Go test,
# then the interop checks that read our outputs with independent tools.
# Each scripts/deps.d/*.sh is idempotent and fast when its peers are already present.
# Environment: IMMKIT_CACHE (default .cache), GO_TEST_FLAGS (extra flags for go test).
set -euo pipefail
cd "$(dirname "$0")/.."
export IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
mkdir -p "$IMMKIT_CACHE"
for s in scripts/deps.d/*.sh; do
  [ -e "$s" ] || continue
  echo "== deps: $s"
  bash "$s"
done
echo "== go test ./..."
# shellcheck disable=SC2086
go test ${GO_TEST_FLAGS:-} ./...
for s in scripts/checks.d/*.sh; do
  [ -e "$s" ] || continue
  echo "== check: $s"
  bash "$s"
done
echo "== all tests passed"
