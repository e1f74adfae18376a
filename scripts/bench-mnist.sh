#!/usr/bin/env bash
# Classifier benchmarks for docs/benchmarks.md ("MNIST classifier"): one training step
# (forward + backward of 784-512-10 on 128 images) through evals/mnist (gonum sgemm,
# GOMAXPROCS goroutines) against its naive-loop baseline and against numpy (float32,
# the BLAS numpy links, same thread count; on Debian bookworm python3-numpy uses the
# reference libblas3 unless an optimised BLAS is installed) in the same run, plus Predict
# on a 32x32 RGB picture.
# Environment: COUNT (repetitions, default 5). Prints the medians in images/s.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-5}"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'TrainStep|Predict' -benchtime 2s -count "$COUNT" ./evals/mnist | tee "$out"
OPENBLAS_NUM_THREADS="$(nproc)" /usr/bin/python3 - "$COUNT" <<'PY' | tee -a "$out"
import sys, time
import numpy as np
rng = np.random.default_rng(1)
n, d, h, k = 128, 784, 512, 10
x = rng.random((n, d), dtype=np.float32)
w0 = (rng.standard_normal((h, d)) * 0.05).astype(np.float32); b0 = np.zeros(h, np.float32)
w1 = (rng.standard_normal((k, h)) * 0.05).astype(np.float32); b1 = np.zeros(k, np.float32)
y = rng.integers(0, k, n)
def step():
    a = np.maximum(x @ w0.T + b0, 0)
    z = a @ w1.T + b1
    z = z - z.max(1, keepdims=True)
    p = np.exp(z); p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1; p /= n
    gw1, gb1 = p.T @ a, p.sum(0)
    da = (p @ w1) * (a > 0)
    gw0, gb0 = da.T @ x, da.sum(0)
    return loss
for _ in range(int(sys.argv[1])):
    step(); t = time.perf_counter(); reps = 0
    while time.perf_counter() - t < 2:
        step(); reps += 1
    print(f"BenchmarkTrainStepNumpy\t{reps}\t{(time.perf_counter() - t) / reps * 1e9:.0f} ns/op\t{reps * n / (time.perf_counter() - t):.1f} images/s")
PY
echo "medians (images/s):"
for b in $(awk '/images\/s/ {print $1}' "$out" | sort -u); do
  vals=$(awk -v b="$b" '$1 == b { for (i = 2; i <= NF; i++) if ($i == "images/s") print $(i-1) }' "$out" | sort -g)
  n=$(echo "$vals" | wc -l)
  printf "  %-28s %s (median of %d)\n" "$b" "$(echo "$vals" | sed -n "$(( (n + 1) / 2 ))p")" "$n"
done
