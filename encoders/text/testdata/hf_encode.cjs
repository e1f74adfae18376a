// Encodes files with a tokenizer.json through the npm `tokenizers` package (HF tokenizers,
// native), for the Go tests of encoders/text. Our own code, not a copy of the peer's.
// usage: node hf_encode.cjs NODE_MODULES_DIR TOKENIZER_JSON FILE... > ids.json
// output: a JSON array with one array of ids per file.
'use strict';
const fs = require('fs');
const path = require('path');
const [nm, tj, ...files] = process.argv.slice(2);
const { Tokenizer } = require(path.join(path.resolve(nm), 'tokenizers'));
(async () => {
  const tok = Tokenizer.fromFile(tj);
  const out = [];
  for (const f of files) {
    const enc = await tok.encode(fs.readFileSync(f, 'utf8'), null, { addSpecialTokens: false });
    out.push(Array.from(enc.getIds()));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
