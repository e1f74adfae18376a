// Encodes files with tokenizer.json files through the npm `tokenizers` package (HF
// tokenizers, native), for the Go tests of encoders/text. Our own code, not the peer's.
// usage: node hf_encode.cjs NODE_MODULES_DIR < requests.json > responses.json
// requests:  [{"tokenizer": "path/tokenizer.json", "files": ["path", ...]}, ...]
// responses: [[[ids of file 1], [ids of file 2], ...], ...]
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(path.resolve(process.argv[2]), 'tokenizers'));
(async () => {
  const reqs = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = [];
  for (const r of reqs) {
    const tok = Tokenizer.fromFile(r.tokenizer);
    const ids = [];
    for (const f of r.files) {
      const enc = await tok.encode(fs.readFileSync(f, 'utf8'), null, { addSpecialTokens: false });
      ids.push(Array.from(enc.getIds()));
    }
    out.push(ids);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
