#!/usr/bin/env bash
# Short CI versions of the reliability scripts (issue #11, docs/reliability.md), sharing one
# work directory so the corpus and reference outputs are built once:
#   - crash.sh: 2 trials per stage (ingest, encode, shard, toy, multimodal), at most 3
#     SIGKILLs each, resumed output identical to an uninterrupted run;
#   - fulldisk.sh: every stage into a too-small tmpfs (skips where mounting is not allowed);
#   - corrupt.sh: flipped byte / cut tail in shards and checkpoints detected and named;
#   - load.sh 20000: ingest of 20,000 tiny items, every item a sample, peak RSS < 500 MB;
#   - soak.sh 30s: loader restarts without RSS, heap or goroutine growth.
# The published figures use the long versions (see docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
missing() {
  if [ "${CI:-}" = "true" ]; then echo "reliability check: $1 missing"; exit 1; fi
  echo "reliability check: SKIP: $1 missing"; exit 0
}
command -v node >/dev/null || missing node
[ -x /usr/bin/time ] || missing "/usr/bin/time (GNU time)"
export RELIABILITY_WORK="$(mktemp -d)"
trap 'rm -rf "$RELIABILITY_WORK"' EXIT
go build -o "$RELIABILITY_WORK/bin/immdata" ./cmd/immdata
go build -o "$RELIABILITY_WORK/bin/immtrain" ./cmd/immtrain
export RELIABILITY_BIN="$RELIABILITY_WORK/bin"
CRASH_MAX_KILLS=3 bash scripts/reliability/crash.sh 2
bash scripts/reliability/fulldisk.sh
bash scripts/reliability/corrupt.sh
bash scripts/reliability/load.sh 20000
bash scripts/reliability/soak.sh 30s
echo "reliability check: ok"
