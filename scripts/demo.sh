#!/usr/bin/env bash
# The README's demo job, on built-in synthetic data, into ./out/demo (or $1):
#   1. immtrain multimodal --demo - builds the synthetic "shapes" corpus (image + caption +
#      sound per sample) and runs it through ingest, tokenizer training, encode and shard
#      (the library code of immdata gen|ingest|encode|shard), trains one few-step IMM model
#      over all three modalities, writes sample sheets (rows = 1, 2, 4, 8 sampling steps)
#      and evaluates cross-modal agreement against chance (immtrain eval)
#   2. immdata verify + inspect - the demo's shards and a contact sheet of the real images
#   3. immtrain sample --given image - captions and sounds generated for held-out images
# Needs only Go. Takes about 7-9 minutes on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/demo}"
rm -rf "$out"
mkdir -p "$out" bin
echo "== build"
go build -o bin/ ./cmd/immdata ./cmd/immtrain
echo "== 1. data, training and evaluation (immtrain multimodal --demo)"
bin/immtrain multimodal --demo --out "$out/run"
echo "== 2. the demo's shards"
bin/immdata verify "$out/run/data/shards"
# to a file, then head: piping inspect into head would kill it with SIGPIPE under pipefail
bin/immdata inspect "$out/run/data/ingested" --grid "$out/contact-sheet.png" >"$out/inspect.txt"
head -20 "$out/inspect.txt"
echo "== 3. generation given held-out images"
bin/immtrain sample --run "$out/run" --given image --steps 1,2 --n 8 --out "$out/run/given-image"
echo "demo outputs in $out: run/samples/step-*/grid.png (sample sheets), run/eval.json,"
echo "run/loss.png, run/given-image/ (captions and sounds for held-out images), contact-sheet.png"
