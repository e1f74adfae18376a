// Times the npm `tiktoken` package (tiktoken's Rust core as WASM) on the benchmark inputs and
// prints Go benchmark lines, so benchstat reads them beside the Go figures.
// usage: node tiktoken_bench.cjs NODE_MODULES_DIR CORPUS_DIR COUNT
'use strict';
const fs = require('fs');
const path = require('path');
const [nm, dir, countArg] = process.argv.slice(2);
const count = Number(countArg || 6);
const { get_encoding } = require(path.join(path.resolve(nm), 'tiktoken'));
for (const name of ['opticks.txt', 'gosrc-8M.txt', 'prose-1M.txt']) {
  const text = fs.readFileSync(path.join(dir, name), 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  for (const enc of ['cl100k_base', 'o200k_base']) {
    const e = get_encoding(enc);
    const tokens = e.encode_ordinary(text).length; // warm up
    for (let k = 0; k < count; k++) {
      const iters = name === 'gosrc-8M.txt' ? 1 : 3;
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iters; i++) e.encode_ordinary(text);
      const ns = Number(process.hrtime.bigint() - t0) / iters;
      const c = process.cpuUsage(c0);
      const cpuNs = (c.user + c.system) * 1000 / iters;
      const mbs = bytes / ns * 1e3;
      console.log(`BenchmarkEncode/impl=npm-tiktoken/enc=${enc}/in=${name} \t${iters}\t${ns.toFixed(0)} ns/op\t${mbs.toFixed(2)} MB/s\t${cpuNs.toFixed(0)} cpu-ns/op\t${tokens} tokens`);
    }
    e.free();
  }
}
