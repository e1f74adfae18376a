#!/usr/bin/env bash
# The README's demo job, on built-in synthetic data, into ./out/demo (or $1):
#   1. immdata gen      - a deterministic "shapes" corpus (image + caption + sound per sample),
#                         plus the malformed-input set
#   2. immdata ingest   - to Hugging-Face-compatible Parquet; every bad file becomes a reject
#   3. immdata inspect  - schema, counts and a contact sheet of the first images
#   4. immdata tokenizer train - a small byte-level BPE vocabulary on the ingested captions
#   5. immdata encode   - pixel latents, Whisper log-mel, BPE tokens, label ids
#   6. immdata shard + verify  - shuffled, split, hashed shards with index.json
#   7. immtrain toy     - IMM vs flow matching on a 2-D distribution, samples at 1/2/4/8 steps
# Needs only Go. Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/demo}"
rm -rf "$out"
mkdir -p "$out" bin
echo "== build"
go build -o bin/ ./cmd/immdata ./cmd/immtrain
echo "== 1. synthetic corpus"
bin/immdata gen --out "$out/corpus" --samples 300 --seed 1 --bad
echo "== 2. ingest"
bin/immdata ingest "$out/corpus" --out "$out/ingested" --exclude manifest.jsonl --quiet
cat "$out/ingested/ingest-stats.json"; echo
echo "== 3. inspect"
bin/immdata inspect "$out/ingested" --grid "$out/contact-sheet.png" | head -40
echo "== 4. tokenizer"
bin/immdata tokenizer train --vocab-size 400 --pattern cl100k -o "$out/shapes.tiktoken" "$out"/ingested/parts/*.parquet
echo "a small red triangle in the upper left" | bin/immdata tokenizer encode --encoding "$out/shapes.json"; echo
echo "== 5. encode"
bin/immdata encode "$out/ingested" -o "$out/encoded" --quiet
echo "== 6. shard + verify"
bin/immdata shard "$out/encoded" -o "$out/shards" --val-fraction 0.1 --seed 1
bin/immdata verify "$out/shards"
echo "== 7. IMM toy training (checkerboard)"
bin/immtrain toy --dataset checkerboard --out "$out/toy" --quiet
cat "$out/toy/summary.json"; echo
echo "demo outputs in $out: contact-sheet.png, shards/index.json, toy/grid.png, toy/summary.json"
