#!/usr/bin/env bash
# MNIST reproduction: a class-conditional IMM model on real digits, scored by a classifier.
#
#   scripts/mnist.sh [OUT] [--steps N] [--device auto|cpu|cuda] [--size tiny|small|S/2|B/2]
#                    [--batch B] [--limit N] [--image-size S] [--rgb] [--eval-n N] [--data-only]
#                    [-- IMMTRAIN-MULTIMODAL-FLAGS...]
#
#   1. tools/mnist classifier   - MLP digit classifier trained on MNIST train (evals/mnist),
#                                 test accuracy printed and saved in its metadata
#   2. tools/mnist png          - MNIST train as OUT/png/<digit>/<index>.png (--limit: first N)
#   3. immdata ingest           - labels from the folder names (--label-from dir)
#   4. immdata encode           - pixel latents in [-1, 1] at --image-size (default 28, MNIST's
#                                 own), one grey channel (--image-gray; --rgb: three), label
#                                 ids; no audio, no text
#   5. immdata shard + verify
#   6. immtrain multimodal      - class-conditional model on the image segment only, with the
#                                 MNIST recipe (docs/eval.md): identity parameterisation,
#                                 7x7 patches (4x4 when 7 does not divide --image-size),
#                                 label groups, lr 3e-3, guidance 3; defaults --size tiny
#                                 --batch 64 --steps 6000 (about 4 minutes on 2 cores);
#                                 flags after -- are passed on and override the recipe
#   7. immtrain eval --mnist-classifier  - accuracy of generated digits for their labels at
#                                 1/2/4/8 steps (RUN/eval.json); when this immtrain has no
#                                 `eval` command: immtrain sample --label <digit> per digit and
#                                 tools/mnist score-sheets on the sheets (OUT/score.json)
# OUT defaults to out/mnist. --data-only stops after step 5. Reuses OUT/classifier.safetensors
# when present. Needs only Go (the MNIST files come from the Go module proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

out=out/mnist
steps=6000
device=auto
size=tiny
batch=64
limit=0
image_size=28
gray=(--image-gray)
eval_n=256
data_only=0
train=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then out="$1"; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --image-size) image_size="$2"; shift 2 ;;
    --eval-n) eval_n="$2"; shift 2 ;;
    --rgb) gray=(); shift ;;
    --data-only) data_only=1; shift ;;
    --) shift; train=("$@"); break ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "mnist.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

mkdir -p "$out/bin"
bin="$out/bin"
t0=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - t0 ))s)"; }

stamp "build"
go build -o "$bin/" ./cmd/immdata ./cmd/immtrain ./tools/mnist

stamp "1. classifier"
if [ -s "$out/classifier.safetensors" ]; then
  echo "reusing $out/classifier.safetensors"
else
  "$bin/mnist" classifier --out "$out/classifier.safetensors"
fi

stamp "2. MNIST -> PNG"
rm -rf "$out/png" "$out/ingested" "$out/encoded" "$out/shards"
"$bin/mnist" png --out "$out/png" --split train --limit "$limit"

stamp "3. ingest"
"$bin/immdata" ingest "$out/png" --out "$out/ingested" --label-from dir --quiet
cat "$out/ingested/ingest-stats.json"; echo

stamp "4. encode"
"$bin/immdata" encode "$out/ingested" -o "$out/encoded" --image-encoder pixels --image-size "$image_size" "${gray[@]}" \
  --audio-encoder none --text-encoder none --label-encoder labels --quiet

stamp "5. shard + verify"
"$bin/immdata" shard "$out/encoded" -o "$out/shards" --val-fraction 0.02 --seed 1 --quiet
"$bin/immdata" verify "$out/shards"
if [ "$data_only" = 1 ]; then stamp "done (data only): $out/shards"; exit 0; fi

stamp "6. immtrain multimodal ($steps steps, --device $device, --size $size)"
rm -rf "$out/run"
patch=7 # 7x7 patches of a 28x28 digit (16 tokens); 4x4 at sizes 7 does not divide
(( image_size % 7 == 0 )) || patch=4
"$bin/immtrain" multimodal --data "$out/shards" --artefacts "$out/encoded" --out "$out/run" \
  --modalities image --size "$size" --steps "$steps" --device "$device" --batch "$batch" \
  --param identity --image-patch "$patch" --group-labels --lr 3e-3 --cfg 3 "${train[@]}"
cat "$out/run/summary.json"; echo

stamp "7. eval"
if "$bin/immtrain" eval --help >/dev/null 2>&1; then
  "$bin/immtrain" eval --run "$out/run" --mnist-classifier "$out/classifier.safetensors" --n "$eval_n" --device "$device"
  cat "$out/run/eval.json"; echo
else
  echo "this immtrain has no eval command: sampling each digit and scoring the sheets with tools/mnist"
  per=$(( (eval_n + 9) / 10 ))
  rm -rf "$out/sheets"
  for d in 0 1 2 3 4 5 6 7 8 9; do
    "$bin/immtrain" --quiet sample --run "$out/run" --label "$d" --n "$per" --steps 1,2,4,8 \
      --device "$device" --out "$out/sheets/$d" >/dev/null
  done
  "$bin/mnist" score-sheets --classifier "$out/classifier.safetensors" --steps 1,2,4,8 "$out/sheets"
  "$bin/mnist" score-sheets --classifier "$out/classifier.safetensors" --steps 1,2,4,8 --json "$out/sheets" > "$out/score.json"
fi
stamp "done: $out"
