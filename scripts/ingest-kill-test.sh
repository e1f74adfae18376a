#!/usr/bin/env bash
# SIGKILL + --resume test of `immdata ingest`: a run killed with SIGKILL at random points and
# rerun with --resume must give the same rows (sorted sha256 list, duplicates included, so a
# row written twice fails) and the same counts as an uninterrupted run.
# Usage: scripts/ingest-kill-test.sh IMMDATA_BINARY CORPUS_DIR [TRIALS]
# The corpus is one written by `immdata gen --bad --tar`. Exit 1 on any difference.
set -euo pipefail
bin="$1"
corpus="$2"
trials="${3:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
args=(--exclude manifest.jsonl --part-rows 8 -q)

counts() { # the fields of ingest-stats.json that must not depend on interruptions
  node -e 'const s=require(process.argv[1]); const {seconds, ...rest}=s; console.log(JSON.stringify([rest.inputs, rest.samples, rest.duplicates, rest.rejected, rest.rejected_by_reason, rest.modalities, rest.parts, rest.bytes_out, rest.complete]))' "$1/ingest-stats.json"
}

start=$(date +%s%N)
"$bin" ingest "$corpus" --out "$work/ref" "${args[@]}" >/dev/null
ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))
"$bin" inspect "$work/ref" --sha256 >"$work/ref.sha"
ref_counts=$(counts "$work/ref")
echo "kill test: uninterrupted run ${ref_ms} ms, $(wc -l <"$work/ref.sha") rows"

seed="${KILL_TEST_SEED:-$RANDOM}"
RANDOM=$seed
echo "kill test: seed $seed (set KILL_TEST_SEED to repeat)"
for t in $(seq 1 "$trials"); do
  out="$work/run$t"
  kills=0
  resume=()
  scale=100
  while :; do
    "$bin" ingest "$corpus" --out "$out" "${args[@]}" "${resume[@]}" >"$work/log" 2>&1 &
    pid=$!
    resume=(--resume)
    if [ "$kills" -lt 3 ]; then
      # kill somewhere between 5% and 95% of the uninterrupted run time
      delay_ms=$(( ref_ms * (5 + RANDOM % 91) / 100 * scale / 100 ))
      sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
      if kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        committed=$(ls "$out/parts" 2>/dev/null | grep -c '^part-' || true)
        echo "kill test: trial $t: SIGKILL after ${delay_ms} ms ($committed parts committed)"
        continue
      fi
    fi
    if ! wait "$pid"; then
      echo "kill test: trial $t: run failed:"; cat "$work/log"; exit 1
    fi
    if [ "$kills" -eq 0 ] && [ "$scale" -gt 3 ]; then
      # finished before the first kill: start the trial again, killing earlier
      rm -rf "$out"
      resume=()
      scale=$((scale / 2))
      continue
    fi
    break
  done
  "$bin" inspect "$out" --sha256 >"$work/run$t.sha"
  if ! cmp -s "$work/ref.sha" "$work/run$t.sha"; then
    echo "kill test: trial $t ($kills kills): rows differ from the uninterrupted run:"
    diff "$work/ref.sha" "$work/run$t.sha" | head -20
    exit 1
  fi
  got=$(counts "$out")
  if [ "$got" != "$ref_counts" ]; then
    echo "kill test: trial $t: stats $got, want $ref_counts"; exit 1
  fi
  if ls -a "$out/parts" "$out/rejects" | grep -q '^\.tmp-'; then
    echo "kill test: trial $t: temporary files left in the output"; exit 1
  fi
  echo "kill test: trial $t: $kills kills, resumed output identical ($(wc -l <"$work/run$t.sha") rows)"
done
echo "kill test: ok"
