package text

import (
	"bytes"
	"testing"
)

// FuzzReadHFTokenizer feeds arbitrary bytes to the tokenizer.json importer: it never panics,
// rejects what it cannot reproduce with an error, and what it accepts encodes and decodes
// text losslessly and survives a write and re-read with the same ranks and special tokens.
// Seeds: the export of a trained vocabulary for each pattern, and small hand-made files.
func FuzzReadHFTokenizer(f *testing.F) {
	for _, pat := range []Pattern{PatternCL100k, PatternO200k, PatternGPT2} {
		var b bytes.Buffer
		if err := WriteHFTokenizer(&b, trainedSmall(f, pat), nil); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "x"}}}`))
	f.Add([]byte(`{"model": {"type": "WordPiece"}}`))
	f.Add([]byte(`{"normalizer": {}, "model": {"type": "BPE"}}`))
	sample := []byte("Hello, wörld! 123 \t\n  ça va? 你好 🙂 <|endoftext|>")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ReadHFTokenizer(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		ids := e.Encode(nil, sample)
		back, err := e.Decode(nil, ids)
		if err != nil || !bytes.Equal(back, sample) {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", sample, back, err)
		}
		var out bytes.Buffer
		if err := WriteHFTokenizer(&out, e, nil); err != nil {
			t.Fatalf("write accepted tokenizer: %v", err)
		}
		e2, err := ReadHFTokenizer(&out, "again")
		if err != nil {
			t.Fatalf("re-reading our own export: %v", err)
		}
		if !sameMap(e.Ranks(), e2.Ranks()) || !sameMap(e.Special(), e2.Special()) || e.Pattern() != e2.Pattern() {
			t.Fatal("ranks, special tokens or pattern changed in a write and re-read")
		}
	})
}

func sameMap[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
