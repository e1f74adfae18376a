#!/usr/bin/env bash
# Crash consistency of ingest, encode, shard and training (toy and multimodal; issue #11): each command is run,
# killed with SIGKILL at a random moment, checked for torn output (no final-named file that
# is incomplete; a shard directory with index.json must pass verify), restarted with
# --resume, killed again, ... until a run finishes (at most CRASH_MAX_KILLS kills, then it
# is left to finish), and its output is compared with an uninterrupted run:
#   ingest: sorted sample sha256 list, part and reject bytes, ingest-stats.json counts
#   encode: every output file byte for byte (row content per key follows)
#   shard:  every shard and index.json byte for byte
#   toy:    `immtrain toy` checkpoints (weights, EMA, Adam moments, RNG) and samples bit for
#           bit on the CPU, metrics.jsonl without wall times
#   multimodal: `immtrain multimodal` on the shard output: the final checkpoint and the
#           sample sheet bit for bit on the CPU, metrics.jsonl without rates and wall times
# Usage: scripts/reliability/crash.sh [TRIALS]   (default 20 per stage)
# Env: CRASH_SEED (kill times; printed), CRASH_STAGES (default "ingest encode shard toy multimodal"),
#      CRASH_MAX_KILLS (default 6), CRASH_SUMMARY (write a JSON summary there),
#      RELIABILITY_WORK / RELIABILITY_KEEP (see lib.sh).
# Exit 1 on any mismatch or torn file.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
trials="${1:-20}"
stages="${CRASH_STAGES:-ingest encode shard toy multimodal}"
max_kills="${CRASH_MAX_KILLS:-6}"
seed="${CRASH_SEED:-$(( $(date +%s%N) / 1000 % 32768 ))}"
rel_init crash
command -v node >/dev/null || rel_fail "node is needed (JSON and safetensors checks)"
RANDOM=$seed
rel_log "seed $seed (CRASH_SEED=$seed repeats the kill times), $trials trials per stage, at most $max_kills kills per trial"

rel_corpus "$work/corpus"
rel_ingest_in="$work/corpus"
rel_encode_in="$work/ref-ingest"
rel_shard_in="$work/ref-encode"
rel_mm_data="$work/ref-shard"

bad=0
summary="{"
for stage in $stages; do
  ref="$work/ref-$stage"
  # Encode, shard and multimodal take the reference outputs of the earlier stages as input.
  [ "$stage" = ingest ] || [ -d "$rel_encode_in" ] || rel_run ingest "$rel_encode_in" >/dev/null
  case "$stage" in shard | multimodal) [ -d "$rel_shard_in" ] || rel_run encode "$rel_shard_in" >/dev/null ;; esac
  [ "$stage" != multimodal ] || [ -d "$rel_mm_data" ] || rel_run shard "$rel_mm_data" >/dev/null
  if [ ! -d "$ref" ]; then
    rm -rf "$ref.tmp"
    start=$(date +%s%N)
    rel_run "$stage" "$ref.tmp" >/dev/null
    ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    mv "$ref.tmp" "$ref"
  else
    start=$(date +%s%N)
    rel_run "$stage" "$work/timing-$stage" >/dev/null
    ref_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    rm -rf "$work/timing-$stage"
  fi
  ref_bytes=$(rel_bytes "$stage" "$ref")
  rel_log "$stage: uninterrupted run ${ref_ms} ms, $ref_bytes bytes compared per trial"
  kills_total=0 mism=0 finished_early=0
  for t in $(seq 1 "$trials"); do
    out="$work/$stage-$t"
    rm -rf "$out"
    kills=0 delays="" resume=()
    while :; do
      "rel_args_$stage" "$out" "${resume[@]}"
      "${rel_cmd[@]}" >"$work/log" 2>&1 &
      pid=$!
      resume=(--resume)
      if [ "$kills" -lt "$max_kills" ]; then
        # somewhere in 3-100% of an uninterrupted run (resumed runs are shorter, so later
        # kills may miss; the trial then ends with fewer kills)
        delay_ms=$(( ref_ms * (3 + RANDOM % 98) / 100 ))
        rel_ms_sleep "$delay_ms"
        if kill -KILL "$pid" 2>/dev/null; then
          wait "$pid" 2>/dev/null || true
          kills=$((kills + 1))
          delays="$delays ${delay_ms}"
          if ! why=$(rel_no_torn "$stage" "$out"); then
            rel_log "$stage: trial $t: FAIL after SIGKILL at ${delay_ms} ms: $why"
            bad=1; mism=$((mism + 1)); continue 2
          fi
          continue
        fi
      fi
      if ! wait "$pid"; then
        rel_log "$stage: trial $t: FAIL: run exited non-zero after $kills kills:"; cat "$work/log"
        bad=1; mism=$((mism + 1)); continue 2
      fi
      break
    done
    [ "$kills" -gt 0 ] || finished_early=$((finished_early + 1))
    kills_total=$((kills_total + kills))
    if ! diffs=$(rel_same "$stage" "$ref" "$out" 2>&1); then
      rel_log "$stage: trial $t: FAIL: $kills kills (at${delays} ms), output differs from the uninterrupted run:"
      echo "$diffs" | head -20
      bad=1; mism=$((mism + 1))
    else
      rel_log "$stage: trial $t: $kills kills (at${delays:- -} ms), output identical"
    fi
    [ "${RELIABILITY_KEEP:-}" = 1 ] || rm -rf "$out"
  done
  rel_log "$stage: $trials trials, $kills_total kills survived ($finished_early trials finished before the first kill), $mism mismatches, bytes lost 0 of $ref_bytes per trial$([ "$mism" -eq 0 ] || echo ' (NOT: see above)')"
  summary="$summary\"$stage\":{\"trials\":$trials,\"kills\":$kills_total,\"mismatches\":$mism,\"ref_ms\":$ref_ms,\"bytes_compared\":$ref_bytes},"
done
summary="${summary%,}, \"seed\": $seed}"
[ -z "${CRASH_SUMMARY:-}" ] || echo "$summary" >"$CRASH_SUMMARY"
[ "$bad" -eq 0 ] || rel_fail "see the trials above (seed $seed)"
rel_log "ok (seed $seed)"
