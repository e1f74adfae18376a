#!/usr/bin/env bash
# Benchmark of `immdata ingest` against plain `sha256sum` over the same files, on the
# synthetic corpus of N samples (512x512 JPEG + caption + 2 s 16 kHz WAV each).
# Usage: scripts/bench-ingest.sh [N ...]   (default 20000; e.g. "20000 100000")
# Environment: REPEATS (default 3), BENCH_DIR (corpora, default $IMMKIT_CACHE/bench-ingest),
# IMAGE_SIZE (512), AUDIO_SECONDS (2), KEEP_CORPUS=1 to keep the corpora afterwards.
# Prints, per N: median wall seconds and MB/s of sha256sum and of ingest (REPEATS runs each,
# alternating, page cache warm after a first untimed read), their speed ratio, the CPU
# seconds (user+sys) of each (a load-independent view on a shared machine) and ingest's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
BENCH_DIR="${BENCH_DIR:-$IMMKIT_CACHE/bench-ingest}"
REPEATS="${REPEATS:-3}"
IMAGE_SIZE="${IMAGE_SIZE:-512}"
AUDIO_SECONDS="${AUDIO_SECONDS:-2}"
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(20000)
[ -x /usr/bin/time ] || { echo "bench: needs GNU time (/usr/bin/time); run scripts/deps.d/ingest.sh"; exit 1; }
mkdir -p "$BENCH_DIR"
bin="$BENCH_DIR/immdata"
go build -o "$bin" ./cmd/immdata
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| samples | input MiB | sha256sum wall s (MB/s) | ingest wall s (MB/s) | speed ingest/sha256sum | CPU s sha256sum / ingest | ingest peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  corpus="$BENCH_DIR/shapes-$n-$IMAGE_SIZE"
  if [ ! -f "$corpus/manifest.jsonl" ]; then
    rm -rf "$corpus"
    "$bin" gen -q --out "$corpus" --samples "$n" --image-size "$IMAGE_SIZE" --audio-seconds "$AUDIO_SECONDS" >&2
  fi
  list="$BENCH_DIR/files-$n.txt"
  (cd "$corpus" && find . -type f ! -name manifest.jsonl -print0 | sort -z) >"$list"
  bytes=$( (cd "$corpus" && xargs -0 stat -c %s <"$list") | awk '{s+=$1} END {print s}')
  (cd "$corpus" && xargs -0 cat <"$list" >/dev/null) # warm the page cache once, untimed
  sha_t=(); ing_t=(); rss=(); sha_cpu=(); ing_cpu=()
  for r in $(seq 1 "$REPEATS"); do
    s=$(date +%s%N)
    (cd "$corpus" && /usr/bin/time -f "%U %S" -o "$BENCH_DIR/time-sha.txt" xargs -0 sha256sum <"$list" >/dev/null)
    sha_t+=("$(elapsed "$s")")
    sha_cpu+=("$(awk '{print $1 + $2}' "$BENCH_DIR/time-sha.txt")")
    out="$BENCH_DIR/out-$n"
    rm -rf "$out"
    s=$(date +%s%N)
    /usr/bin/time -v -o "$BENCH_DIR/time.txt" "$bin" ingest -q "$corpus" --out "$out" --exclude manifest.jsonl >&2
    ing_t+=("$(elapsed "$s")")
    rss+=("$(awk -F': ' '/Maximum resident set size/ {print $2}' "$BENCH_DIR/time.txt")")
    ing_cpu+=("$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$BENCH_DIR/time.txt")")
    rm -rf "$out"
  done
  st=$(printf '%s\n' "${sha_t[@]}" | median)
  it=$(printf '%s\n' "${ing_t[@]}" | median)
  sc=$(printf '%s\n' "${sha_cpu[@]}" | median)
  ic=$(printf '%s\n' "${ing_cpu[@]}" | median)
  maxrss=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
  echo "runs n=$n: sha256sum ${sha_t[*]} s (cpu ${sha_cpu[*]}); ingest ${ing_t[*]} s (cpu ${ing_cpu[*]}); RSS ${rss[*]} kB" >&2
  awk -v n="$n" -v b="$bytes" -v st="$st" -v it="$it" -v sc="$sc" -v ic="$ic" -v rss="$maxrss" 'BEGIN {
    printf "| %d | %.0f | %.2f (%.0f) | %.2f (%.0f) | %.2f | %.2f / %.2f | %.0f |\n", n, b/1048576, st, b/st/1e6, it, b/it/1e6, st/it, sc, ic, rss/1024 }'
  [ "${KEEP_CORPUS:-1}" = 1 ] || rm -rf "$corpus"
done
