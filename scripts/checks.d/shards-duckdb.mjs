// Independent reader check of a shard dataset (scripts/checks.d/shards.sh): DuckDB reads
// every shard listed in index.json and must agree with it on row counts, with KEYS.json on
// the set of keys (each exactly once across train and val, sha256 unique), and with
// EXPECT.json (the first sample our loader yields, when given) on the latent and token
// values of that sample.
// Usage: node shards-duckdb.mjs NPM_PREFIX SHARDS KEYS.json [EXPECT.json]
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const [prefix, dir, keysPath, expectPath] = process.argv.slice(2);
const require = createRequire(join(resolve(prefix), "package.json"));
const { DuckDBInstance } = require("@duckdb/node-api");
const fail = (m) => { console.log("shards duckdb check: FAIL: " + m); process.exit(1); };

const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
const wantKeys = JSON.parse(readFileSync(keysPath, "utf8"));
const inst = await DuckDBInstance.create(":memory:");
const conn = await inst.connect();
const q = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJS();
const lit = (s) => "'" + s.replaceAll("'", "''") + "'";

const seen = new Map();
let rows = 0;
for (const s of index.shards) {
  const path = lit(join(dir, s.path));
  const [{ n }] = await q(`SELECT count(*)::INTEGER AS n FROM read_parquet(${path})`);
  if (n !== s.rows) fail(`${s.path}: DuckDB reads ${n} rows, index.json says ${s.rows}`);
  for (const { key } of await q(`SELECT key FROM read_parquet(${path})`)) {
    if (seen.has(key)) fail(`key ${key} in ${s.path} and ${seen.get(key)}`);
    seen.set(key, s.path);
  }
  const [{ d }] = await q(`SELECT count(DISTINCT sha256)::INTEGER AS d FROM read_parquet(${path})`);
  if (d !== s.rows) fail(`${s.path}: ${d} distinct sha256 in ${s.rows} rows`);
  rows += n;
}
for (const split of Object.keys(index.totals)) {
  const t = index.totals[split];
  const sum = index.shards.filter((s) => s.split === split).reduce((a, s) => a + s.rows, 0);
  if (sum !== t.rows) fail(`totals.${split}.rows ${t.rows} != ${sum}`);
}
if (seen.size !== wantKeys.length) fail(`DuckDB reads ${seen.size} keys, want ${wantKeys.length}`);
for (const k of wantKeys) if (!seen.has(k)) fail(`key ${k} missing from the shards`);

if (expectPath) {
  const want = JSON.parse(readFileSync(expectPath, "utf8"));
  const path = lit(join(dir, seen.get(want.key)));
  const [row] = await q(`SELECT image_latent::FLOAT[] AS lat, text_tokens AS tok FROM read_parquet(${path}) WHERE key = ${lit(want.key)}`);
  if (!row) fail(`DuckDB does not find key ${want.key}`);
  const lat = Array.from(row.lat);
  if (lat.length !== want.image_latent.length) fail(`latent of ${want.key}: ${lat.length} values, want ${want.image_latent.length}`);
  for (let i = 0; i < lat.length; i++) {
    if (Math.fround(lat[i]) !== Math.fround(want.image_latent[i])) fail(`latent of ${want.key}[${i}]: DuckDB ${lat[i]}, ours ${want.image_latent[i]}`);
  }
  const tok = Array.from(row.tok);
  if (JSON.stringify(tok) !== JSON.stringify(want.text_tokens)) fail(`tokens of ${want.key}: DuckDB ${tok}, ours ${want.text_tokens}`);
  console.log(`shards duckdb check: latent (${lat.length} values) and tokens of ${want.key} match`);
}
console.log(`shards duckdb check: ok: ${index.shards.length} shards, ${rows} rows, ${seen.size} keys agree with index.json`);
