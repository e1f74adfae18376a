// Reads an `immdata ingest` output directory with DuckDB (@duckdb/node-api), an
// independent Parquet reader, prints what it found as JSON and, with --stats and --corpus,
// checks it: row counts, per-modality counts and rejects by reason against ingest-stats.json;
// keys and image byte lengths against the synthetic corpus on disk (manifest.jsonl and the
// image files); the Hugging Face feature metadata in every part's footer.
// Usage: node ingest-duckdb.mjs OUT [--stats OUT/ingest-stats.json] [--corpus DIR]
// Needs IMMKIT_CACHE/npm-duckdb (scripts/deps.d/ingest.sh). Exit 1 on any mismatch.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const out = args[0];
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const cache = process.env.IMMKIT_CACHE || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../.cache');
const require = createRequire(path.join(cache, 'npm-duckdb', 'package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

const instance = await DuckDBInstance.create(':memory:');
const con = await instance.connect();
const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson();
const lit = (s) => "'" + s.replaceAll("'", "''") + "'";
const parts = lit(path.join(out, 'parts', '*.parquet'));
const rejectsGlob = path.join(out, 'rejects', '*.parquet');

const found = {};
const [counts] = await q(`SELECT count(*) AS rows,
    count(image) AS image, count(audio) AS audio, count(text) AS text, count(label) AS label,
    coalesce(sum(octet_length(image.bytes)), 0) AS image_bytes,
    count(DISTINCT sha256) AS distinct_sha256, min(octet_length(sha256)) AS sha_min, max(octet_length(sha256)) AS sha_max
  FROM read_parquet(${parts})`);
Object.assign(found, counts);
for (const k of Object.keys(found)) found[k] = Number(found[k]);
found.keys = (await q(`SELECT key FROM read_parquet(${parts}) ORDER BY key`)).map((r) => r.key);
found.image_lengths = Object.fromEntries((await q(`SELECT key, octet_length(image.bytes) AS n
  FROM read_parquet(${parts}) WHERE image IS NOT NULL`)).map((r) => [r.key, Number(r.n)]));
found.rejected_by_reason = {};
if (fs.existsSync(path.join(out, 'rejects')) && fs.readdirSync(path.join(out, 'rejects')).some((f) => f.endsWith('.parquet') && !f.startsWith('.'))) {
  for (const r of await q(`SELECT reason, count(*) AS n FROM read_parquet(${lit(rejectsGlob)}) GROUP BY reason`)) {
    found.rejected_by_reason[r.reason] = Number(r.n);
  }
}
const kv = await q(`SELECT file_name, decode(value) AS value FROM parquet_kv_metadata(${parts}) WHERE decode(key) = 'huggingface'`);
const partFiles = fs.readdirSync(path.join(out, 'parts')).filter((f) => f.endsWith('.parquet') && !f.startsWith('.'));
found.parts = partFiles.length;
found.hf_metadata_files = kv.length;
found.hf_image_type = kv.length ? JSON.parse(kv[0].value).info.features.image._type : null;
found.hf_audio_type = kv.length ? JSON.parse(kv[0].value).info.features.audio._type : null;

const errors = [];
const expect = (what, got, want) => { if (JSON.stringify(got) !== JSON.stringify(want)) errors.push(`${what}: duckdb ${JSON.stringify(got)}, want ${JSON.stringify(want)}`); };
const statsPath = opt('--stats');
if (statsPath) {
  const st = JSON.parse(fs.readFileSync(statsPath, 'utf8'));
  expect('rows = samples', found.rows, st.samples);
  expect('image rows', found.image, st.modalities.image);
  expect('audio rows', found.audio, st.modalities.audio);
  expect('text rows', found.text, st.modalities.text);
  expect('label rows', found.label, st.modalities.label);
  const sorted = (o) => Object.fromEntries(Object.entries(o).sort());
  expect('rejected_by_reason', sorted(found.rejected_by_reason), sorted(st.rejected_by_reason));
  expect('rejected', Object.values(found.rejected_by_reason).reduce((a, b) => a + b, 0), st.rejected);
  expect('parts', found.parts, st.parts);
  if (st.inputs !== st.samples + st.duplicates + st.rejected) errors.push(`stats: inputs ${st.inputs} != samples + duplicates + rejected`);
}
expect('sha256 width', [found.sha_min, found.sha_max], found.rows ? [32, 32] : [null, null]);
expect('huggingface metadata in every part', found.hf_metadata_files, found.parts);
if (found.parts) expect('huggingface feature types', [found.hf_image_type, found.hf_audio_type], ['Image', 'Audio']);
const corpus = opt('--corpus');
if (corpus) {
  // Expected rows: every manifest sample (tar copies are duplicates) plus ok.txt of bad/escape.tar.
  const specs = fs.readFileSync(path.join(corpus, 'manifest.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const wantKeys = specs.map((s) => `${s.label}/${s.key}`);
  if (fs.existsSync(path.join(corpus, 'bad', 'escape.tar'))) wantKeys.push('ok');
  wantKeys.sort();
  expect('keys', found.keys, wantKeys);
  let lenErrors = 0;
  for (const s of specs) {
    const want = fs.statSync(path.join(corpus, s.image)).size;
    const got = found.image_lengths[`${s.label}/${s.key}`];
    if (got !== want && lenErrors++ < 5) errors.push(`${s.label}/${s.key}: image is ${got} bytes in the parts, ${want} on disk`);
  }
  if (lenErrors > 5) errors.push(`... ${lenErrors} image length mismatches in all`);
}
const report = { ...found, keys: found.keys.length, image_lengths: Object.keys(found.image_lengths).length, errors };
console.log(JSON.stringify(report, null, 2));
process.exit(errors.length ? 1 : 0);
