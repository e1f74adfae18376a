#!/usr/bin/env bash
# Acceptance and interop checks of `immdata shard` / `verify` / `export`:
#   - shard twice on the same input gives byte-identical shards and index.json, and parts
#     written by 4 workers give the same dataset as 1 worker;
#   - SIGKILL during shard at several points + rerun with --resume gives the same dataset;
#   - verify passes, and exits 1 after one flipped byte in a shard;
#   - DuckDB (@duckdb/node-api) reads every shard and agrees with index.json on rows and
#     keys, and reads the same latent and token values of one sample as our loader
#     (scripts/checks.d/shards-duckdb.mjs), on encoded-like and raw-schema parts;
#   - export --format webdataset: Python's tarfile + numpy, grouping members as webdataset
#     does, read every tar and agree with index.json and with our loader's values
#     (scripts/checks.d/shards-wds.py).
# Needs scripts/deps.d/shards.sh. Under CI=true a missing peer fails; elsewhere it skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
export IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
NPM="$IMMKIT_CACHE/npm-duckdb"
missing() {
  if [ "${CI:-}" = "true" ]; then echo "shards check: $1 missing (run scripts/deps.d/shards.sh)"; exit 1; fi
  echo "shards check: SKIP: $1 missing (run scripts/deps.d/shards.sh)"; exit 0
}
command -v node >/dev/null || missing node
/usr/bin/python3 -c "import numpy" 2>/dev/null || missing "python3-numpy"
[ -f "$NPM/node_modules/@duckdb/node-api/package.json" ] || missing "@duckdb/node-api"
fail() { echo "shards check: FAIL: $*"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="$work/immdata"
gen="$work/interopgen"
go build -o "$bin" ./cmd/immdata
go build -o "$gen" ./shards/internal/interopgen

# 1. Determinism: twice on the same input, and 1 vs 4 part-writing workers.
"$gen" parts -o "$work/enc1" -n 3000 -workers 1
"$gen" parts -o "$work/enc4" -n 3000 -workers 4
cmp -s "$work/enc1/keys.json" "$work/enc4/keys.json" || fail "generator keys differ"
"$bin" shard -q "$work/enc1" -o "$work/a" --seed 7 --val-fraction 0.1 --shard-size 256KiB >/dev/null
"$bin" shard -q "$work/enc1" -o "$work/b" --seed 7 --val-fraction 0.1 --shard-size 256KiB >/dev/null
"$bin" shard -q "$work/enc4" -o "$work/c" --seed 7 --val-fraction 0.1 --shard-size 256KiB >/dev/null
diff -r "$work/a" "$work/b" >/dev/null || fail "two runs on the same input differ"
diff -r "$work/a" "$work/c" >/dev/null || fail "4 part files give other shards than 1"
nshards=$(find "$work/a" -name 'shard-*.parquet' | wc -l)
[ "$nshards" -ge 4 ] || fail "only $nshards shards; the size target did not cut"
echo "shards check: deterministic ($nshards shards identical across runs and 1 vs 4 workers)"

# 2. SIGKILL during shard, then --resume.
"$gen" parts -o "$work/big" -n 40000 -workers 4
"$bin" shard -q "$work/big" -o "$work/big-ref" --seed 3 --shard-size 1MiB >/dev/null
for delay in 0.2 0.5 0.9 1.5; do
  out="$work/big-kill"
  rm -rf "$out"
  "$bin" shard -q "$work/big" -o "$out" --seed 3 --shard-size 1MiB >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  state="killed"
  [ -f "$out/index.json" ] && state="had finished"
  "$bin" shard -q "$work/big" -o "$out" --seed 3 --shard-size 1MiB --resume >/dev/null
  diff -r "$work/big-ref" "$out" >/dev/null || fail "kill at ${delay}s ($state) + --resume differs from an uninterrupted run"
  echo "shards check: kill -9 at ${delay}s ($state) + --resume gives the same dataset"
done

# 3. verify catches a flipped byte.
"$bin" verify "$work/a" >/dev/null || fail "verify fails on a fresh dataset"
cp -r "$work/a" "$work/flip"
victim="$work/flip/train/shard-00001.parquet"
size=$(stat -c %s "$victim")
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$victim" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of="$victim" bs=1 seek="$off" conv=notrunc status=none
set +e
"$bin" verify "$work/flip" >"$work/verify.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "verify after a flipped byte exited $rc, want 1: $(cat "$work/verify.txt")"
grep -q "MISMATCH train/shard-00001.parquet: sha256" "$work/verify.txt" || fail "verify did not name the shard: $(cat "$work/verify.txt")"
echo "shards check: verify exits 1 on a flipped byte"

# 4. DuckDB reads the shards.
"$gen" expect "$work/a"
node scripts/checks.d/shards-duckdb.mjs "$NPM" "$work/a" "$work/enc1/keys.json" "$work/a.expect.json"
"$gen" raw -o "$work/raw" -n 800
"$bin" shard -q "$work/raw" -o "$work/rawshards" --shard-size 64KiB >/dev/null
node scripts/checks.d/shards-duckdb.mjs "$NPM" "$work/rawshards" "$work/raw/keys.json"

# 5. webdataset export read by tarfile + numpy.
"$bin" export --format webdataset "$work/a" -o "$work/wds" >/dev/null
/usr/bin/python3 scripts/checks.d/shards-wds.py "$work/a" "$work/wds" "$work/a.expect.json"
"$bin" export --format webdataset "$work/rawshards" -o "$work/rawwds" >/dev/null
/usr/bin/python3 scripts/checks.d/shards-wds.py "$work/rawshards" "$work/rawwds"
echo "shards check: ok"
