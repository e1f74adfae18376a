#!/usr/bin/env bash
# Acceptance and interop checks of `immdata fit` / `immdata encode` (docs/encode.md):
#   - gen -> ingest -> encode; encode twice gives byte-identical parts and rejects, and 4
#     processes (--num-workers 4 --worker-index I) give the same files as 1;
#   - immdata shard accepts the encode output, shards it byte-identically twice, copies the
#     encoder artefacts and their sha256 into index.json, and verify passes;
#   - DuckDB (@duckdb/node-api, installed by scripts/deps.d/shards.sh) reads every encoded
#     part: row count, distinct keys and the fixed lengths of every column (12288 latent
#     values in [-1, 1], 100 x 80 mel values, 32 text tokens, text_len <= 32, label_id in
#     0..4) must match what encode reported and the config.
# Under CI=true a missing peer fails; elsewhere the DuckDB part skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
export IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
NPM="$IMMKIT_CACHE/npm-duckdb"
fail() { echo "encode check: FAIL: $*"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="$work/immdata"
go build -o "$bin" ./cmd/immdata

"$bin" gen -q --out "$work/shapes" --samples 400 --bad >/dev/null
"$bin" ingest -q "$work/shapes" --out "$work/ing" --exclude manifest.jsonl --part-rows 50 >/dev/null
"$bin" encode -q "$work/ing" -o "$work/e1" --config docs/examples/encode.yaml --stats-json "$work/e1.json" >"$work/e1.txt"
cat "$work/e1.txt"
"$bin" encode -q "$work/ing" -o "$work/e2" --config docs/examples/encode.yaml >/dev/null
"$bin" fit "$work/ing" -o "$work/e4" --config docs/examples/encode.yaml >/dev/null
for i in 0 1 2 3; do
  "$bin" encode -q "$work/ing" -o "$work/e4" --config docs/examples/encode.yaml --fit=false \
    --num-workers 4 --worker-index "$i" >/dev/null
done
for d in e2 e4; do
  for sub in parts rejects; do
    a="$(cd "$work/e1/$sub" && ls)"; b="$(cd "$work/$d/$sub" && ls)"
    [ "$a" = "$b" ] || fail "$d/$sub lists other files than e1/$sub"
    for f in $a; do cmp -s "$work/e1/$sub/$f" "$work/$d/$sub/$f" || fail "$d/$sub/$f differs from e1"; done
  done
done
[ -n "$(ls "$work/e1/parts")" ] || fail "no parts"
echo "encode check: two runs and 1 vs 4 workers give byte-identical parts ($(ls "$work/e1/parts" | wc -l) parts)"

"$bin" shard -q "$work/e1" -o "$work/s1" --seed 3 --shard-size 1MiB >/dev/null
"$bin" shard -q "$work/e4" -o "$work/s2" --seed 3 --shard-size 1MiB >/dev/null
diff -r "$work/s1" "$work/s2" >/dev/null || fail "shard output of e1 and e4 differs"
"$bin" verify -q "$work/s1" >/dev/null || fail "verify of the shards failed"
for name in labels bpe bpe-config; do
  want="$(/usr/bin/python3 -c 'import json,sys; print(next(a["sha256"] for a in json.load(open(sys.argv[1]))["artefacts"] if a["name"]==sys.argv[2]))' "$work/e1/encode.json" "$name")"
  got="$(/usr/bin/python3 -c 'import json,sys; print(next(a["sha256"] for a in json.load(open(sys.argv[1]))["artefacts"] if a["name"]==sys.argv[2]))' "$work/s1/index.json" "$name")"
  file="$(/usr/bin/python3 -c 'import json,sys; print(next(a["path"] for a in json.load(open(sys.argv[1]))["artefacts"] if a["name"]==sys.argv[2]))' "$work/e1/encode.json" "$name")"
  [ "$want" = "$got" ] || fail "artefact $name: index.json has $got, encode.json $want"
  [ "$(sha256sum "$work/e1/$file" | cut -d' ' -f1)" = "$want" ] || fail "artefact $name: file hash differs"
done
echo "encode check: shard accepts encode output, byte-identical twice, artefact hashes carried into index.json"

if ! command -v node >/dev/null || [ ! -f "$NPM/node_modules/@duckdb/node-api/package.json" ]; then
  [ "${CI:-}" = "true" ] && fail "node or @duckdb/node-api missing (run scripts/deps.d/shards.sh)"
  echo "encode check: SKIP DuckDB part: node or @duckdb/node-api missing (run scripts/deps.d/shards.sh)"
  exit 0
fi
rows="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$work/e1.json")"
cat >"$work/check.mjs" <<'JS'
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
const [prefix, dir, wantRows] = process.argv.slice(2);
const require = createRequire(join(resolve(prefix), "package.json"));
const { DuckDBInstance } = require("@duckdb/node-api");
const fail = (m) => { console.log("encode check: FAIL: " + m); process.exit(1); };
const conn = await (await DuckDBInstance.create(":memory:")).connect();
const q = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS();
const src = `read_parquet('${join(dir, "parts", "*.parquet").replaceAll("'", "''")}')`;
const [r] = await q(`SELECT count(*)::INTEGER AS n, count(DISTINCT key)::INTEGER AS k,
  count(*) FILTER (WHERE len(image_latent) <> 12288)::INTEGER AS badlat,
  count(*) FILTER (WHERE list_min(image_latent) < -1 OR list_max(image_latent) > 1)::INTEGER AS rangelat,
  count(*) FILTER (WHERE len(audio_mel) <> 8000)::INTEGER AS badmel,
  count(*) FILTER (WHERE len(text_tokens) <> 32 OR text_len > 32 OR text_len < 1)::INTEGER AS badtok,
  min(label_id)::INTEGER AS lmin, max(label_id)::INTEGER AS lmax FROM ${src}`);
if (r.n !== Number(wantRows) || r.k !== r.n) fail(`DuckDB reads ${r.n} rows, ${r.k} keys; encode accepted ${wantRows}`);
if (r.badlat || r.rangelat || r.badmel || r.badtok) fail(`bad lengths/ranges: ${JSON.stringify(r)}`);
if (r.lmin !== 0 || r.lmax !== 4) fail(`label_id in ${r.lmin}..${r.lmax}, want 0..4`);
console.log(`encode check: DuckDB reads ${r.n} rows, ${r.k} distinct keys, fixed lengths and ranges as configured`);
JS
node "$work/check.mjs" "$NPM" "$work/e1" "$rows"
echo "encode check: ok"
