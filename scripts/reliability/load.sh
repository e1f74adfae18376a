#!/usr/bin/env bash
# Load (issue #11): `immdata ingest` of N small items (default 1,000,000 tiny 8x8 PNGs with
# a caption, all distinct, as webdataset tar shards of 10,000 written by
# scripts/reliability/tinygen) under GNU time -v. Reports throughput (and, as a peer, the
# time of `cat *.tar | sha256sum` over the same bytes) and peak RSS, at N/10
# and at N items, so growth with the item count shows; fails when the peak RSS at N
# reaches LOAD_MAX_RSS_MB (default 500) or when not every item became a sample.
# Usage: scripts/reliability/load.sh [N]   Env: LOAD_MAX_RSS_MB, RELIABILITY_WORK /
# RELIABILITY_KEEP / RELIABILITY_BIN (see lib.sh). Needs about 2.4 KB of free disk per item
# (corpus + output; 2.5 GB for a million) in the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
n="${1:-1000000}"
max_mb="${LOAD_MAX_RSS_MB:-500}"
[ -x /usr/bin/time ] || { echo "load: SKIP: GNU time (/usr/bin/time) missing"; exit 0; }
rel_init load
need_kb=$(( n * 24 / 10 ))
free_kb=$(df --output=avail -k "$work" | tail -1 | tr -d ' ')
[ "$free_kb" -gt "$need_kb" ] || rel_fail "needs about $((need_kb / 1024)) MiB free in $work, has $((free_kb / 1024)) MiB"
go build -o "$work/tinygen" ./scripts/reliability/tinygen

run() { # COUNT
  local c="$1" corpus="$work/tiny-$1" out="$work/out-$1"
  if [ ! -f "$corpus.done" ]; then
    rm -rf "$corpus"
    local t0=$(date +%s%N)
    "$work/tinygen" -n "$c" -o "$corpus"
    touch "$corpus.done"
    rel_log "$c items: corpus written in $(( ($(date +%s%N) - t0) / 1000000 )) ms ($(du -sm "$corpus" | cut -f1) MiB)"
  fi
  rm -rf "$out"
  /usr/bin/time -v -o "$work/time-$c.txt" "$bin_data" ingest -q "$corpus" --out "$out" >"$work/ingest-$c.txt"
  local rss_kb wall user sys
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$c.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time-$c.txt")
  user=$(awk -F': ' '/User time/ {print $2}' "$work/time-$c.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$work/time-$c.txt")
  node -e '
const s = require(process.argv[1]); const n = +process.argv[2];
if (s.inputs !== n || s.samples !== n || !s.complete) { console.log(`load: FAIL: ${n} items gave ${JSON.stringify(s)}`); process.exit(1); }
console.log(`load: ${n} items: ${s.samples} samples in ${s.seconds.toFixed(1)} s of ingest = ${(n / s.seconds).toFixed(0)} items/s, ${(s.bytes_out / 1048576).toFixed(1)} MiB out`);
' "$out/ingest-stats.json" "$c"
  rel_log "$c items: peak RSS $((rss_kb / 1024)) MiB, wall $wall, user ${user} s, sys ${sys} s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  # peer in the same run: read and hash the same tar bytes with sha256sum (one core)
  local p0=$(date +%s%N)
  cat "$corpus"/*.tar | sha256sum >/dev/null
  local peer_ms=$(( ($(date +%s%N) - p0) / 1000000 ))
  rel_log "$c items: peer: cat *.tar | sha256sum of the same $(du -sm "$corpus" | cut -f1) MiB took ${peer_ms} ms"
  eval "rss_$2=$rss_kb"
  [ "${RELIABILITY_KEEP:-}" = 1 ] || rm -rf "$out"
}
run $((n / 10)) small
run "$n" full
rel_log "peak RSS $((rss_small / 1024)) MiB at $((n / 10)) items, $((rss_full / 1024)) MiB at $n items (bound $max_mb MB)"
[ "$rss_full" -lt $((max_mb * 1000)) ] || rel_fail "peak RSS $((rss_full / 1024)) MiB >= $max_mb MB"
rel_log ok
