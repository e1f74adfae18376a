#!/usr/bin/env bash
# Tokenizer benchmarks for docs/benchmarks.md: encode speed of encoders/text against
# github.com/tiktoken-go/tokenizer and the npm tiktoken package (WASM) in one run, the
# repeated-letter blow-up check, EncodeBatch scaling, and training against HF tokenizers.
# Environment: IMMKIT_CACHE (default .cache), COUNT (repetitions, default 6),
# PARTS (default "encode batch train").
# Output: $IMMKIT_CACHE/bench-tokenizer/{encode,batch}.txt, benchstat tables and train.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export IMMKIT_CACHE="${IMMKIT_CACHE:-$ROOT/.cache}"
COUNT="${COUNT:-6}"
PARTS="${PARTS:-encode batch train}"
DIR="$IMMKIT_CACHE/bench-tokenizer"
NM="$IMMKIT_CACHE/npm-tokenizer/node_modules"
BENCHSTAT="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
bash scripts/deps.d/tokenizer.sh
(cd bench/tokenizer && go run ./corpus "$DIR")
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $PARTS " == *" encode "* ]]; then
  out="$DIR/encode.txt"
  (cd bench/tokenizer && TOKBENCH_DIR="$DIR" GOMAXPROCS=1 go test -run '^$' -bench 'BenchmarkEncode$' \
    -benchtime 2x -count "$COUNT" -timeout 120m .) | tee "$out"
  node bench/tokenizer/tiktoken_bench.cjs "$NM" "$DIR" "$COUNT" | tee -a "$out"
  $BENCHSTAT -col /impl "$out" | tee "$DIR/encode-benchstat.txt"
  $BENCHSTAT -col /impl -filter '.unit:cpu-ns/op' "$out" | tee "$DIR/encode-benchstat-cpu.txt" || true
fi

if [[ " $PARTS " == *" batch "* ]]; then
  out="$DIR/batch.txt"
  (cd bench/tokenizer && TOKBENCH_DIR="$DIR" go test -run '^$' -bench 'BenchmarkEncodeBatch' \
    -cpu 1,2 -benchtime 2x -count "$COUNT" -timeout 60m .) | tee "$out"
  $BENCHSTAT -col .procs "$out" 2>/dev/null | tee "$DIR/batch-benchstat.txt" || true
  # The 1-vs-2-worker ratio per benchmark: median sec/op at -cpu 1 over median at -cpu 2.
  awk '/^BenchmarkEncodeBatch/ {
      name = $1; procs = 1
      if (match(name, /-[0-9]+$/)) { procs = substr(name, RSTART + 1); name = substr(name, 1, RSTART - 1) }
      t[name, procs] = t[name, procs] " " $3; names[name] = 1
    }
    function median(s,   a, n, i, j, x) {
      n = split(s, a, " ")
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      for (n in names) if ((n, 1) in t && (n, 2) in t) {
        m1 = median(t[n, 1]); m2 = median(t[n, 2])
        printf "%s: 1 worker %.1f ms, 2 workers %.1f ms, speed-up %.2fx (medians)\n", n, m1 / 1e6, m2 / 1e6, m1 / m2
      }
    }' "$out" | sort | tee "$DIR/batch-ratio.txt"
fi

if [[ " $PARTS " == *" train "* ]]; then
  out="$DIR/train.txt"
  (cd bench/tokenizer && go build -o "$DIR/trainbench" ./trainbench)
  : >"$out"
  for k in $(seq 1 "$COUNT"); do
    node bench/tokenizer/hf_train.cjs "$NM" "$DIR" 30000 | tee -a "$out"
    "$DIR/trainbench" "$DIR" 30000 | tee -a "$out"
  done
fi
