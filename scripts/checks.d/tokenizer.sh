#!/usr/bin/env bash
# Interop check of `immdata tokenizer`: ids from the CLI must equal tiktoken's (npm, WASM) for
# cl100k_base and o200k_base, decode must invert encode, and a vocabulary trained by the CLI
# and exported as tokenizer.json must give the same ids in HF tokenizers (npm, native).
# Needs scripts/deps.d/tokenizer.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
NM="$CACHE/npm-tokenizer/node_modules"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/immdata" ./cmd/immdata
in="$(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt"
{ head -c 100000 "$in"; cat encoders/text/testdata/multilingual.txt; printf '<|endoftext|> done'; } >"$tmp/in.txt"

same() { # same LABEL FILE_A FILE_B: two JSON arrays of ids are equal
  node -e '
    const fs = require("fs");
    const a = JSON.parse(fs.readFileSync(process.argv[2])), b = JSON.parse(fs.readFileSync(process.argv[3]));
    let k = 0; while (k < a.length && a[k] === b[k]) k++;
    if (k < a.length || a.length !== b.length) { console.error(process.argv[1] + ": ids differ at " + k + " (" + a.length + " vs " + b.length + ")"); process.exit(1); }
    console.log(process.argv[1] + ": " + a.length + " ids equal");' "$1" "$2" "$3"
}

for enc in cl100k_base o200k_base; do
  "$tmp/immdata" tokenizer encode --encoding "$enc" --rank-file "$CACHE/tiktoken/$enc.tiktoken" --allowed-special all "$tmp/in.txt" >"$tmp/ours.json"
  node -e 'process.stdout.write(JSON.stringify([{encoding: process.argv[1], allowed_special: "all", files: [process.argv[2]]}]))' "$enc" "$tmp/in.txt" |
    node encoders/text/testdata/tiktoken_ref.cjs "$NM" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify(JSON.parse(s)[0].files[0])))' >"$tmp/ref.json"
  same "tokenizer encode $enc vs tiktoken" "$tmp/ours.json" "$tmp/ref.json"
  "$tmp/immdata" tokenizer encode --encoding "$enc" --rank-file "$CACHE/tiktoken/$enc.tiktoken" --allowed-special all --format lines <"$tmp/in.txt" |
    "$tmp/immdata" tokenizer decode --encoding "$enc" --rank-file "$CACHE/tiktoken/$enc.tiktoken" >"$tmp/back.txt"
  cmp "$tmp/in.txt" "$tmp/back.txt"
  echo "tokenizer decode $enc: round trip ok"
done

"$tmp/immdata" --quiet tokenizer train --vocab-size 2000 --pattern o200k -o "$tmp/small.tiktoken" --hf-out "$tmp/small.tokenizer.json" "$in" >/dev/null
# HF tokenizers always splits out added (special) tokens, so allow them all on our side.
"$tmp/immdata" tokenizer encode --encoding "$tmp/small.json" --allowed-special all "$tmp/in.txt" >"$tmp/ours.json"
node -e 'process.stdout.write(JSON.stringify([{tokenizer: process.argv[1], files: [process.argv[2]]}]))' "$tmp/small.tokenizer.json" "$tmp/in.txt" |
  node encoders/text/testdata/hf_encode.cjs "$NM" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify(JSON.parse(s)[0][0])))' >"$tmp/hf.json"
same "trained tokenizer.json in HF tokenizers" "$tmp/ours.json" "$tmp/hf.json"
