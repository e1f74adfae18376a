#!/usr/bin/env bash
# Loader throughput benchmark (docs/benchmarks.md, "Shards and loader"): shards of
# 4x32x32 float16 latents + up to 64 int32 text tokens, read by shards.Loader under
# GOMAXPROCS=1 (one core) at two prefetch settings, against a naive baseline (pqarrow
# ReadTable of whole shards + arrow's per-value float16 conversion, no shuffle). Reports
# medians of REPEATS runs: decoded payload GB per CPU-second (user+sys of the process; on a
# shared machine the wall clock mostly measures other work), samples per CPU-second, wall
# GB/s, and peak RSS (GNU time); then peak RSS with a slow consumer (200 ms per batch) at
# the two prefetch settings, where the queue fills to its bound. Shards come from the current
# `immdata shard` (latent columns uncompressed, the rest zstd; docs/shards.md).
# Environment: SAMPLES (20000), REPEATS (3), BENCH_DIR (a temp dir; reused when it already
# holds shards).
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES="${SAMPLES:-20000}"
REPEATS="${REPEATS:-3}"
dir="${BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$dir/bin"
go build -o "$dir/bin/immdata" ./cmd/immdata
go build -o "$dir/bin/interopgen" ./shards/internal/interopgen
go build -o "$dir/bin/loaderbench" ./shards/internal/loaderbench
if [ ! -f "$dir/shards/index.json" ]; then
  "$dir/bin/interopgen" parts -o "$dir/enc" -n "$SAMPLES" -workers 2 -c 4 -hw 32 -tokens 64
  "$dir/bin/immdata" shard -q "$dir/enc" -o "$dir/shards" --val-fraction 0 --shard-size 64MiB >/dev/null
fi
[ -x /usr/bin/time ] || { echo "bench-loader: GNU time (/usr/bin/time) is needed for RSS"; exit 1; }
run() { # name, args...
  local name=$1; shift
  for i in $(seq 1 "$REPEATS"); do
    GOMAXPROCS=1 /usr/bin/time -f "%M" -o "$dir/rss.txt" "$dir/bin/loaderbench" "$@" "$dir/shards" >"$dir/out.json"
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["name"]=sys.argv[3]; d["rss_kb"]=int(open(sys.argv[2]).read().split()[-1]); print(json.dumps(d))' \
      "$dir/out.json" "$dir/rss.txt" "$name" >>"$dir/results.jsonl"
  done
}
rm -f "$dir/results.jsonl"
run "loader prefetch=16MiB" -mode loader -prefetch $((16 << 20)) -block 2048 -batch 256
run "loader prefetch=256MiB" -mode loader -prefetch $((256 << 20)) -block 2048 -batch 256
# Three epochs in one process: the one-time costs (shard sha256 check on first open, heap
# growth and page faults of the first blocks and batches) spread over more data.
run "loader prefetch=16MiB, 3 epochs" -mode loader -prefetch $((16 << 20)) -block 2048 -batch 256 -epochs 3
run "loader prefetch=16MiB, no verify" -mode loader -prefetch $((16 << 20)) -block 2048 -batch 256 -no-verify
run "loader 16MiB, 3 epochs, no verify" -mode loader -prefetch $((16 << 20)) -block 2048 -batch 256 -epochs 3 -no-verify
run "naive" -mode naive
# RSS with a slow consumer (200 ms per batch), so the prefetch queue fills to its bound.
run "slow consumer, prefetch=16MiB" -mode loader -prefetch $((16 << 20)) -block 2048 -batch 256 -step-ms 200
run "slow consumer, prefetch=256MiB" -mode loader -prefetch $((256 << 20)) -block 2048 -batch 256 -step-ms 200
/usr/bin/python3 - "$dir/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'run':32} {'GB/cpu-s':>9} {'samples/cpu-s':>14} {'wall GB/s':>10} {'peak RSS MiB':>13}  (medians of {len(rows)//8})")
for name in dict.fromkeys(r["name"] for r in rows):
    rs = [r for r in rows if r["name"] == name]
    med = lambda k: statistics.median(r[k] for r in rs)
    print(f"{name:32} {med('gb_per_cpu_s'):9.3f} {med('samples_per_cpu_s'):14.0f} {med('gb_per_s'):10.3f} {med('rss_kb')/1024:13.0f}")
print(f"samples per epoch: {rows[0]['samples']}, payload per epoch: {rows[0]['payload_bytes']/1e6:.0f} MB")
PY
