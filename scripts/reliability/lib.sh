# Shared helpers of the reliability scripts (sourced, not run). Callers cd to the repo root.
# RELIABILITY_WORK: scratch directory (default: a fresh mktemp -d, removed on exit).
# RELIABILITY_KEEP=1 keeps it for inspection. RELIABILITY_BIN: a directory holding immdata and
# immtrain binaries to use instead of building them from the working tree.

rel_init() { # NAME: sets $work, $bin_data, $bin_train; builds both binaries
  rel_name="$1"
  rel_own_work=""
  if [ -n "${RELIABILITY_WORK:-}" ]; then
    work="$RELIABILITY_WORK"
    mkdir -p "$work"
  else
    work="$(mktemp -d)"
    [ "${RELIABILITY_KEEP:-}" = 1 ] || rel_own_work=1
  fi
  trap 'rel_cleanup' EXIT
  if [ -n "${RELIABILITY_BIN:-}" ]; then
    bin_data="$RELIABILITY_BIN/immdata"
    bin_train="$RELIABILITY_BIN/immtrain"
  else
    bin_data="$work/immdata"
    bin_train="$work/immtrain"
    go build -o "$bin_data" ./cmd/immdata
    go build -o "$bin_train" ./cmd/immtrain
  fi
}

rel_cleanup() { # unmount what we mounted; remove the work directory if we made it
  if [ -n "${rel_mounts:-}" ]; then
    for m in $rel_mounts; do umount "$m" 2>/dev/null || true; done
  fi
  [ -z "$rel_own_work" ] || rm -rf "$work"
}

rel_log() { echo "$rel_name: $*"; }
rel_fail() { echo "$rel_name: FAIL: $*"; exit 1; }

# rel_corpus DIR: the synthetic corpus (300 samples, the malformed set, tar shards).
rel_corpus() {
  [ -d "$1" ] || "$bin_data" gen -q --out "$1" --samples 300 --image-size 48 --image-format mixed --bad --tar --shard-samples 64 >/dev/null
}

# The four pipeline commands under test: rel_args_STAGE OUT [FLAGS...] sets the array
# rel_cmd; run it as "${rel_cmd[@]}" (a simple command, so `&` gives the program's own pid).
# rel_ingest_in, rel_encode_in, rel_shard_in name the inputs.
rel_args_ingest() { local out="$1"; shift; rel_cmd=("$bin_data" ingest -q "$rel_ingest_in" --out "$out" --exclude manifest.jsonl --part-rows 16 "$@"); }
rel_args_encode() { local out="$1"; shift; rel_cmd=("$bin_data" encode -q "$rel_encode_in" -o "$out" --image-size 16 --clip-seconds 0.2 --max-len 8 "$@"); }
rel_args_shard() { local out="$1"; shift; rel_cmd=("$bin_data" shard -q "$rel_shard_in" -o "$out" --seed 5 --val-fraction 0.1 --shard-size 256KiB "$@"); }
rel_args_toy() {
  local out="$1"; shift
  rel_cmd=("$bin_train" -q toy --device cpu --dataset moons --out "$out" --steps 300 --width 32 --depth 2
    --batch 128 --eval-samples 200 --imm-steps 1,2 --fm-steps 1 --save-every 20 "$@")
}
# multimodal trains on rel_shard_in's shard output (rel_mm_data) with rel_encode_in's output's artefacts.
rel_args_multimodal() {
  local out="$1"; shift
  rel_cmd=("$bin_train" -q multimodal --device cpu --data "$rel_mm_data" --artefacts "$rel_shard_in" --out "$out"
    --size tiny --steps 20 --batch 16 --ckpt-every 4 --eval-every 0 --sample-n 2 --sample-steps 1,2 "$@")
}
# rel_run STAGE OUT [FLAGS...]: run in the foreground.
rel_run() { local stage="$1"; shift; "rel_args_$stage" "$@"; "${rel_cmd[@]}"; }

# rel_same STAGE REF OUT: prints nothing and returns 0 when OUT equals REF for STAGE;
# otherwise prints the first differences and returns 1.
#   ingest: sorted sample sha256 list, part and reject bytes, counts of ingest-stats.json
#   encode: every file (parts, rejects, artefacts, encode.json, progress) byte for byte
#   shard:  every shard and index.json byte for byte
#   toy:    checkpoints (weights, EMA, optimizer, RNG) and samples byte for byte, metrics
#           without wall times
#   multimodal: the final checkpoint and the sample sheet byte for byte, metrics.jsonl
#           without rates and wall times
rel_same() {
  local stage="$1" ref="$2" out="$3"
  case "$stage" in
    ingest)
      [ -s "$ref.sha256" ] || "$bin_data" inspect "$ref" --sha256 >"$ref.sha256"
      cmp -s "$ref.sha256" <("$bin_data" inspect "$out" --sha256) \
        || { echo "sorted sample sha256 lists differ"; return 1; }
      diff -r "$ref/parts" "$out/parts" && diff -r "$ref/rejects" "$out/rejects" || return 1
      [ "$(rel_ingest_counts "$ref")" = "$(rel_ingest_counts "$out")" ] \
        || { echo "ingest-stats.json counts: $(rel_ingest_counts "$out"), want $(rel_ingest_counts "$ref")"; return 1; }
      ;;
    encode | shard)
      diff -r -x '*.lock' "$ref" "$out" || return 1
      ;;
    toy)
      local f
      for f in "$ref"/*.safetensors "$ref"/*.npy; do
        cmp "$f" "$out/$(basename "$f")" || return 1
      done
      cmp -s <(sed 's/"elapsed_s":[^,}]*//' "$ref/metrics.jsonl") <(sed 's/"elapsed_s":[^,}]*//' "$out/metrics.jsonl") \
        || { echo "metrics.jsonl differs (wall times ignored)"; return 1; }
      ;;
    multimodal)
      local last
      last=$(cat "$ref/ckpt/latest")
      cmp "$ref/ckpt/$last" "$out/ckpt/$last" && diff -r "$ref/samples" "$out/samples" || return 1
      cmp -s <(sed 's/"samples_per_s":[^,}]*//; s/"elapsed_s":[^,}]*//' "$ref/metrics.jsonl") \
        <(sed 's/"samples_per_s":[^,}]*//; s/"elapsed_s":[^,}]*//' "$out/metrics.jsonl") \
        || { echo "metrics.jsonl differs (rates and wall times ignored)"; return 1; }
      ;;
  esac
}

# rel_bytes STAGE DIR: the bytes rel_same compares.
rel_bytes() {
  case "$1" in
    ingest) find "$2/parts" "$2/rejects" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}' ;;
    multimodal) { stat -c '%s' "$2/ckpt/$(cat "$2/ckpt/latest")"; find "$2/samples" "$2/metrics.jsonl" -type f -printf '%s\n'; } | awk '{s+=$1} END {print s+0}' ;;
    toy) find "$2" -maxdepth 1 \( -name '*.safetensors' -o -name '*.npy' -o -name metrics.jsonl \) -printf '%s\n' | awk '{s+=$1} END {print s+0}' ;;
    *) find "$2" -type f ! -name '*.lock' -printf '%s\n' | awk '{s+=$1} END {print s+0}' ;;
  esac
}

rel_ingest_counts() {
  node -e 'const s=require(require("path").resolve(process.argv[1])); console.log(JSON.stringify([s.inputs, s.samples, s.duplicates, s.rejected, s.rejected_by_reason, s.modalities, s.parts, s.bytes_out, s.complete]))' "$1/ingest-stats.json"
}

# rel_no_torn STAGE DIR: every file under DIR with a final name (no .tmp) is complete:
# Parquet files start and end with PAR1, JSON files parse, safetensors headers describe
# exactly the bytes that follow; and a shard dataset with an index.json passes verify.
# Prints the offending file and returns 1 otherwise.
rel_no_torn() {
  local stage="$1" dir="$2" f
  [ -d "$dir" ] || return 0
  while IFS= read -r -d '' f; do
    case "$(basename "$f")" in .tmp* | *.tmp) continue ;; esac
    case "$f" in
      *.parquet)
        if [ "$(head -c4 "$f")" != PAR1 ] || [ "$(tail -c4 "$f")" != PAR1 ]; then
          echo "torn Parquet file with a final name: $f ($(stat -c %s "$f") bytes)"; return 1
        fi ;;
      *.json)
        node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$f" 2>/dev/null \
          || { echo "torn JSON file with a final name: $f"; return 1; } ;;
      *.safetensors)
        node -e '
const b = require("fs").readFileSync(process.argv[1]);
const n = Number(b.readBigUInt64LE(0)); const h = JSON.parse(b.subarray(8, 8 + n).toString());
let end = 0; for (const [k, v] of Object.entries(h)) if (k !== "__metadata__") end = Math.max(end, v.data_offsets[1]);
if (8 + n + end !== b.length) process.exit(1);' "$f" 2>/dev/null \
          || { echo "torn safetensors file with a final name: $f"; return 1; } ;;
    esac
  done < <(find "$dir" -type f -print0)
  if [ "$stage" = shard ] && [ -f "$dir/index.json" ]; then
    "$bin_data" verify "$dir" >/dev/null 2>&1 || { echo "index.json present but verify fails"; return 1; }
  fi
  return 0
}

# rel_ms_sleep MS
rel_ms_sleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
