#!/usr/bin/env bash
# Corruption (issue #11): a shard or a checkpoint with one flipped byte or a cut tail is
# detected by its hash and named:
#   - `immdata verify` exits 1 and prints a MISMATCH line naming the shard;
#   - the shard loader stops with an error naming the shard (go test ./shards -run
#     TestLoaderDetectsCorruptShard; run here too);
#   - `immtrain toy --resume` refuses a damaged checkpoint with an error naming it;
#   - `immtrain multimodal --resume` names the damaged newest checkpoint, falls back to the
#     previous good one and finishes with the same final checkpoint as an uninterrupted run;
#     with every checkpoint damaged it stops with an error naming them.
# Usage: scripts/reliability/corrupt.sh   Env: RELIABILITY_WORK / RELIABILITY_KEEP /
# RELIABILITY_BIN (see lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
rel_init corrupt
rel_corpus "$work/corpus"
rel_ingest_in="$work/corpus"
rel_encode_in="$work/ref-ingest"
rel_shard_in="$work/ref-encode"
rel_mm_data="$work/ref-shard"
for s in ingest encode shard toy multimodal; do
  [ -d "$work/ref-$s" ] || rel_run "$s" "$work/ref-$s" >/dev/null
done

# damage MODE FILE: flip one byte in the middle, or cut the last 100 bytes
damage() {
  case "$1" in
    flip)
      local size off byte
      size=$(stat -c %s "$2"); off=$((size / 2))
      byte=$(od -An -tu1 -j "$off" -N1 "$2" | tr -d ' ')
      printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of="$2" bs=1 seek="$off" conv=notrunc status=none ;;
    truncate) truncate -s -100 "$2" ;;
  esac
}
expect_fail() { # NAME RC ERRFILE PATTERN...
  local name="$1" rc="$2" err="$3"; shift 3
  [ "$rc" -ne 0 ] || rel_fail "$name: exit 0 on damaged input"
  for p in "$@"; do grep -q -- "$p" "$err" || rel_fail "$name: message does not contain '$p': $(head -c 400 "$err")"; done
  rel_log "$name: exit $rc: $(head -c 300 "$err" | tr '\n' ' ')"
}

for mode in flip truncate; do
  # shards: verify
  d="$work/shard-$mode"; rm -rf "$d"; cp -r "$work/ref-shard" "$d"
  victim=$(cd "$d" && ls train/shard-*.parquet | sed -n 2p)
  damage "$mode" "$d/$victim"
  set +e; "$bin_data" verify "$d" >"$work/err" 2>&1; rc=$?; set -e
  expect_fail "verify, $mode" "$rc" "$work/err" "MISMATCH $victim"
  # toy checkpoint
  d="$work/toy-$mode"; rm -rf "$d"; cp -r "$work/ref-toy" "$d"
  damage "$mode" "$d/imm.safetensors"
  set +e; rel_run toy "$d" --resume >/dev/null 2>"$work/err"; rc=$?; set -e
  expect_fail "toy --resume, $mode checkpoint" "$rc" "$work/err" "imm.safetensors" "sha256"
  # multimodal: newest checkpoint damaged -> fallback, same result
  d="$work/mm-$mode"; rm -rf "$d"; cp -r "$work/ref-multimodal" "$d"
  last=$(cat "$d/ckpt/latest")
  damage "$mode" "$d/ckpt/$last"
  rel_args_multimodal "$d" --resume
  loud=(); for a in "${rel_cmd[@]}"; do [ "$a" = -q ] || loud+=("$a"); done # the warning needs no --quiet
  "${loud[@]}" >"$work/out" 2>&1 || rel_fail "multimodal --resume with a $mode newest checkpoint failed: $(tail -c 400 "$work/out")"
  grep -q "skipping checkpoint .*$last.*sha256" "$work/out" || rel_fail "multimodal: the damaged $last is not named: $(head -c 400 "$work/out")"
  cmp -s "$d/ckpt/$last" "$work/ref-multimodal/ckpt/$last" || rel_fail "multimodal: after the fallback the final checkpoint differs from an uninterrupted run"
  rel_log "multimodal --resume, $mode $last: named, fell back to the previous checkpoint, final checkpoint identical to an uninterrupted run"
  # multimodal: every checkpoint damaged -> error
  for f in "$d"/ckpt/step-*.safetensors; do damage "$mode" "$f"; done
  set +e; rel_run multimodal "$d" --resume >/dev/null 2>"$work/err"; rc=$?; set -e
  expect_fail "multimodal --resume, every checkpoint $mode" "$rc" "$work/err" "sha256"
done

# the loader (in-process)
go test ./shards -run 'TestLoaderDetectsCorruptShard' -count=1 >"$work/gotest" 2>&1 || { cat "$work/gotest"; rel_fail "loader corruption test"; }
rel_log "loader: $(tail -1 "$work/gotest")"
rel_log ok
