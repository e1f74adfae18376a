// Reference token ids from tiktoken itself (the npm `tiktoken` package: tiktoken's Rust core
// built as WASM), for the Go tests of encoders/text. Our own code, not a copy of the peer's.
//
// usage: node tiktoken_ref.cjs NODE_MODULES_DIR < requests.json > responses.json
// requests:  an array of {"encoding": "cl100k_base", "peer": "tiktoken"|"gpt-tokenizer",
//            "allowed_special": "all"|[...]|null, "texts": ["..."], "files": ["path"]}
// responses: an array of {"texts": [[ids...]...], "files": [[ids...]...],
//            "ms": [per-file encode milliseconds]}
'use strict';
const fs = require('fs');
const path = require('path');
const nm = path.resolve(process.argv[2]);
const encodings = {};
function run(req) {
let encode;
if ((req.peer || 'tiktoken') === 'tiktoken') {
  const { get_encoding } = require(path.join(nm, 'tiktoken'));
  const enc = encodings[req.encoding] || (encodings[req.encoding] = get_encoding(req.encoding));
  if (req.allowed_special) {
    encode = (s) => Array.from(enc.encode(s, req.allowed_special, []));
  } else {
    encode = (s) => Array.from(enc.encode_ordinary(s));
  }
} else {
  const name = req.encoding === 'gpt2' ? 'r50k_base' : req.encoding;
  const g = require(path.join(nm, 'gpt-tokenizer', 'cjs', 'encoding', name + '.js'));
  encode = (s) => g.encode(s, { disallowedSpecial: new Set() });
}
const out = { texts: [], files: [], ms: [] };
for (const t of req.texts || []) out.texts.push(encode(t));
for (const f of req.files || []) {
  const s = fs.readFileSync(f, 'utf8');
  const t0 = process.hrtime.bigint();
  out.files.push(encode(s));
  out.ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
return out;
}
const reqs = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(reqs.map(run)));
