#!/usr/bin/env bash
# Loader soak (issue #11): shards.TestLoaderSoak reads a small dataset (600 samples, several
# shards) for DURATION as fast as the loader goes, endless epochs, closing and resuming the
# loader from its state every 10 epochs; at each restart it samples RSS, the live heap and
# the goroutine count and fails on growth (see the test's comment). Prints the figures and
# what fraction of 24 h of reading the run covers at the loader's own rate, and how many
# hours of a training run that reads SOAK_TRAIN_RATE samples/s (default 42, `immtrain
# multimodal --size tiny` on 2 CPU cores) the samples read stand for.
# Usage: scripts/reliability/soak.sh [DURATION]   (default 20m; CI: 1m)
set -euo pipefail
cd "$(dirname "$0")/../.."
d="${1:-20m}"
rate="${SOAK_TRAIN_RATE:-42}"
case "$d" in
  *h) secs=$(( ${d%h} * 3600 )) ;;
  *m) secs=$(( ${d%m} * 60 )) ;;
  *s) secs=${d%s} ;;
  *) secs=0 ;;
esac
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
IMMKIT_LOADER_SOAK="$d" go test ./shards -run '^TestLoaderSoak$' -count=1 -v -timeout 0 >"$log" 2>&1 || { cat "$log"; echo "soak: FAIL"; exit 1; }
grep 'soak:' "$log" | sed 's/^ *loader_soak_reliability_test.go:[0-9]*: /  /'
n=$(grep -o '[0-9]* samples, [0-9]* samples/s' "$log" | head -1 | cut -d' ' -f1)
[ -n "$n" ] || { cat "$log"; echo "soak: FAIL: no summary line"; exit 1; }
awk -v n="$n" -v s="$secs" -v r="$rate" 'BEGIN {
  if (s > 0) printf "soak: %d samples read in %d s = %.2f%% of 24 h of reading at the loader'"'"'s own rate\n", n, s, 100 * s / 86400;
  printf "soak: = %.1f h of a training run reading %d samples/s\n", n / r / 3600, r }'
echo "soak: ok"
