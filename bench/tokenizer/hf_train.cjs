// Trains a byte-level BPE with the npm `tokenizers` package (HF tokenizers, native) on the
// same files and split pattern as `immdata tokenizer train --pattern cl100k`, times the
// training and measures bytes per token on the held-out file. Prints one result line.
// usage: node hf_train.cjs NODE_MODULES_DIR CORPUS_DIR VOCAB_SIZE
'use strict';
const fs = require('fs');
const path = require('path');
const [nm, dir, vocabArg] = process.argv.slice(2);
const { Tokenizer } = require(path.join(path.resolve(nm), 'tokenizers'));
const cl100k = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const spec = {
  version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
  pre_tokenizer: { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: cl100k }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
  post_processor: null,
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab: {}, merges: [] },
};
(async () => {
  const tok = Tokenizer.fromString(JSON.stringify(spec));
  const files = ['opticks.txt', 'gosrc-8M.txt'].map((f) => path.join(dir, f));
  const t0 = process.hrtime.bigint();
  tok.train(files); // the model's default BpeTrainer: vocab_size 30000, no special tokens
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const vocab = tok.getVocabSize(true);
  tok.save(path.join(dir, 'hf-30k.tokenizer.json'));
  const held = fs.readFileSync(path.join(dir, 'heldout.txt'), 'utf8');
  const enc = await tok.encode(held);
  const n = enc.getIds().length;
  console.log(`train impl=hf-tokenizers seconds=${secs.toFixed(3)} heldout_bytes=${Buffer.byteLength(held)} heldout_tokens=${n} vocab=${vocab} requested=${vocabArg}`);
})().catch((e) => { console.error(e); process.exit(1); });
