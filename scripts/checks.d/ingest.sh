#!/usr/bin/env bash
# Interop and acceptance checks of `immdata ingest` / `immdata inspect` on the synthetic
# corpus with its malformed set and tar shards:
#   - every malformed file is exactly one reject, inputs = samples + duplicates + rejected,
#     peak RSS of the whole run (huge.png included) under 300 MB (GNU time -v);
#   - exit codes: 0 with rejects, non-zero with --strict, 2 for unusable arguments;
#   - DuckDB (@duckdb/node-api) reads the parts: row counts, keys, image byte lengths and
#     rejects match ingest-stats.json and the corpus (scripts/checks.d/ingest-duckdb.mjs);
#   - four worker processes give the same set of rows as one;
#   - SIGKILL at random points + --resume gives the same rows (scripts/ingest-kill-test.sh);
#   - inspect prints the schema and writes a contact sheet.
# Needs scripts/deps.d/ingest.sh. Under CI=true a missing peer fails; elsewhere it skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
export IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
missing() {
  if [ "${CI:-}" = "true" ]; then echo "ingest check: $1 missing (run scripts/deps.d/ingest.sh)"; exit 1; fi
  echo "ingest check: SKIP: $1 missing (run scripts/deps.d/ingest.sh)"; exit 0
}
[ -x /usr/bin/time ] || missing "/usr/bin/time (GNU time)"
command -v node >/dev/null || missing node
[ -f "$IMMKIT_CACHE/npm-duckdb/node_modules/@duckdb/node-api/package.json" ] || missing "@duckdb/node-api"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="$work/immdata"
go build -o "$bin" ./cmd/immdata
corpus="$work/shapes"
"$bin" gen -q --out "$corpus" --samples 300 --image-size 96 --image-format mixed --bad --tar --shard-samples 64 >/dev/null
fail() { echo "ingest check: FAIL: $*"; exit 1; }

# 1. Full run with the malformed set, peak RSS measured.
out="$work/out"
/usr/bin/time -v -o "$work/time.txt" "$bin" ingest -q "$corpus" --out "$out" --exclude manifest.jsonl --part-rows 50 >"$work/ingest.txt" \
  || fail "ingest exited $? with rejects present (want 0): $(cat "$work/ingest.txt")"
cat "$work/ingest.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
echo "ingest check: peak RSS ${rss_kb} kB"
[ "$rss_kb" -lt 307200 ] || fail "peak RSS ${rss_kb} kB >= 300 MB"
nbad=$(ls -A "$corpus/bad" | wc -l)
node -e '
const s = require(process.argv[1]); const nbad = +process.argv[2];
const bad = (m) => { console.log("ingest check: FAIL: " + m); process.exit(1); };
if (s.inputs !== s.samples + s.duplicates + s.rejected) bad("inputs != samples + duplicates + rejected");
if (s.rejected !== nbad) bad(`rejected ${s.rejected}, want one per malformed file (${nbad})`);
for (const [r, n] of Object.entries(s.rejected_by_reason)) { if (n !== 1) bad(`reason ${r} counted ${n} times`); if (r === "error") bad("generic reason"); }
if (!s.complete) bad("stats not complete");
' "$out/ingest-stats.json" "$nbad"

# 2. Exit codes.
set +e
"$bin" ingest -q "$corpus/bad" --out "$work/strict" --strict >/dev/null 2>"$work/strict.err"; rc=$?
"$bin" ingest -q "$work/does-not-exist" --out "$work/x" >/dev/null 2>"$work/usage.err"; rc2=$?
set -e
[ "$rc" -eq 1 ] || fail "--strict with rejects exited $rc, want 1"
[ "$rc2" -eq 2 ] || fail "missing source exited $rc2, want 2"
[ "$(wc -l <"$work/usage.err")" -eq 1 ] || fail "usage error is not one line: $(cat "$work/usage.err")"
echo "ingest check: exit codes ok (strict: $(cat "$work/strict.err"))"

# 3. DuckDB reads the parts.
node scripts/checks.d/ingest-duckdb.mjs "$out" --stats "$out/ingest-stats.json" --corpus "$corpus" >"$work/duckdb.json" \
  || { cat "$work/duckdb.json"; fail "DuckDB disagrees with ingest-stats.json or the corpus"; }
echo "ingest check: DuckDB read $(node -e 'const r=require(process.argv[1]); console.log(`${r.rows} rows, ${r.parts} parts, ${r.image_bytes} image bytes`)' "$work/duckdb.json")"

# 4. Four worker processes against one.
"$bin" inspect "$out" --sha256 | sort -u >"$work/one.sha"
pids=()
for w in 0 1 2 3; do
  "$bin" ingest -q "$corpus" --out "$work/four" --exclude manifest.jsonl --part-rows 50 --num-workers 4 --worker-index "$w" >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a worker failed"; done
"$bin" inspect "$work/four" --sha256 | sort -u >"$work/four.sha"
cmp -s "$work/one.sha" "$work/four.sha" || fail "4 workers give $(wc -l <"$work/four.sha") distinct rows, 1 worker $(wc -l <"$work/one.sha")"
node -e 'const s=require(process.argv[1]); if (!s.complete || s.workers_done.length !== 4) { console.log("ingest check: FAIL: merged stats of 4 workers incomplete"); process.exit(1) }' "$work/four/ingest-stats.json"
node scripts/checks.d/ingest-duckdb.mjs "$work/four" --stats "$work/four/ingest-stats.json" >/dev/null || fail "DuckDB disagrees with the 4-worker stats"
echo "ingest check: 4 workers = 1 worker ($(wc -l <"$work/one.sha") distinct rows)"

# 5. SIGKILL + resume.
bash scripts/ingest-kill-test.sh "$bin" "$corpus" 2

# 6. inspect.
"$bin" inspect "$out" --rows 3 --grid "$work/grid.png" >"$work/inspect.txt"
grep -q "huggingface features" "$work/inspect.txt" || fail "inspect shows no feature metadata"
grep -q "^rows: $(node -e 'console.log(require(process.argv[1]).samples)' "$out/ingest-stats.json")$" "$work/inspect.txt" || fail "inspect row count differs from the stats"
[ -s "$work/grid.png" ] || fail "no contact sheet"
echo "ingest check: ok"
