#!/usr/bin/env bash
# Full disk (issue #11): ingest, encode, shard, `immtrain toy` and `immtrain multimodal`
# write into a tmpfs too small for their output. Each must
#   - exit non-zero with a message naming the cause ("no space left on device"), no panic;
#   - leave no file with a final name that is incomplete (Parquet without its footer, JSON
#     that does not parse, a safetensors file shorter than its header says, a shard
#     directory with index.json that fails verify);
# then, after space is freed (the tmpfs is remounted larger), `--resume` must finish with
# the same output as an uninterrupted run on a roomy disk (compared as in crash.sh).
# Needs root (mount -t tmpfs). Without it the script skips, also under CI=true; it fails
# under CI=true only when the mount works and a check fails.
# Usage: scripts/reliability/fulldisk.sh   Env: FULLDISK_STAGES (default all five),
# RELIABILITY_WORK / RELIABILITY_KEEP / RELIABILITY_BIN (see lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/reliability/lib.sh
stages="${FULLDISK_STAGES:-ingest encode shard toy multimodal}"
rel_init fulldisk
command -v node >/dev/null || rel_fail "node is needed (JSON and safetensors checks)"
probe="$work/mount-probe"
mkdir -p "$probe"
if ! mount -t tmpfs -o size=1M tmpfs "$probe" 2>"$work/mount.err"; then
  rel_log "SKIP: cannot mount a tmpfs here ($(head -c 200 "$work/mount.err")); run as root on a machine that allows mounts"
  exit 0
fi
umount "$probe"

rel_corpus "$work/corpus"
rel_ingest_in="$work/corpus"
rel_encode_in="$work/ref-ingest"
rel_shard_in="$work/ref-encode"
rel_mm_data="$work/ref-shard"
for s in ingest encode shard; do
  [ -d "$work/ref-$s" ] || rel_run "$s" "$work/ref-$s" >/dev/null
done

# size of the small tmpfs per stage: well below the finished output
small_size() {
  case "$1" in
    ingest) echo 3M ;;      # output ~11 MB
    encode) echo 600k ;;    # ~2 MB
    shard) echo 600k ;;     # ~2 MB
    toy) echo 200k ;;       # two 105 KB checkpoints + samples + plots
    multimodal) echo 10M ;; # 4.5 MB checkpoints, 3 kept
  esac
}

bad=0
for stage in $stages; do
  ref="$work/ref-$stage"
  [ -d "$ref" ] || rel_run "$stage" "$ref" >/dev/null
  mnt="$work/mnt-$stage"
  mkdir -p "$mnt"
  mount -t tmpfs -o "size=$(small_size "$stage")" tmpfs "$mnt"
  rel_mounts="${rel_mounts:-} $mnt"
  out="$mnt/out"
  set +e
  rel_run "$stage" "$out" >"$work/$stage.out" 2>"$work/$stage.err"
  rc=$?
  set -e
  msg=$(tr '\n' ' ' <"$work/$stage.err" | head -c 400)
  used=$(df --output=used -B1 "$mnt" | tail -1 | tr -d ' ')
  if [ "$rc" -eq 0 ]; then
    rel_log "$stage: FAIL: finished with exit 0 on a $(small_size "$stage") tmpfs (is the output smaller than the disk?)"; bad=1
  elif ! grep -qi 'no space left on device' "$work/$stage.err"; then
    rel_log "$stage: FAIL: exit $rc without naming ENOSPC: $msg"; bad=1
  elif grep -q '^panic:\|^goroutine ' "$work/$stage.err"; then
    rel_log "$stage: FAIL: panicked: $msg"; bad=1
  elif ! why=$(rel_no_torn "$stage" "$out"); then
    rel_log "$stage: FAIL: $why"; bad=1
  else
    rel_log "$stage: disk full at $used bytes: exit $rc, '$msg', no torn file with a final name"
  fi
  # free space and resume
  mount -o remount,size=256M "$mnt"
  set +e
  rel_run "$stage" "$out" --resume >"$work/$stage.out2" 2>"$work/$stage.err2"
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    rel_log "$stage: FAIL: --resume after freeing space exited $rc: $(head -c 400 "$work/$stage.err2")"; bad=1
  elif ! diffs=$(rel_same "$stage" "$ref" "$out" 2>&1); then
    rel_log "$stage: FAIL: --resume after freeing space differs from a clean run:"; echo "$diffs" | head -20; bad=1
  elif ! why=$(rel_no_torn "$stage" "$out"); then
    rel_log "$stage: FAIL after resume: $why"; bad=1
  else
    rel_log "$stage: --resume after freeing space: output identical to a clean run ($(rel_bytes "$stage" "$ref") bytes compared)"
  fi
  umount "$mnt"
  rel_mounts="${rel_mounts/ $mnt/}"
done
[ "$bad" -eq 0 ] || rel_fail "see above"
rel_log ok
