package text

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// trainedSmall trains a small vocabulary on the multilingual test file; it needs no cache.
func trainedSmall(t testing.TB, pat Pattern) *Encoding {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Train(TrainConfig{VocabSize: 1000, Pattern: pat, Special: []string{"<|endoftext|>"}}, [][]byte{b, b[:len(b)/2]})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Name: "small", Pattern: pat, Ranks: tr.Ranks, Special: tr.Special})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestLongMergeMatchesScan checks the O(n log n) merge against tiktoken's quadratic scan
// on random long pieces over small alphabets, where many pairs tie.
func TestLongMergeMatchesScan(t *testing.T) {
	encs := []*Encoding{trainedSmall(t, PatternCL100k)}
	if _, err := os.Stat(filepath.Join(cacheDirForTest(t), rankFile("cl100k_base"))); err == nil {
		encs = append(encs, loadEncoding(t, "cl100k_base"))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{"a", "ab", "abc", " ", " \n", "0", "é", "aA", "xyzzy"}
	for _, e := range encs {
		st := new(mergeState) // its pair cache belongs to one encoding
		for trial := range 300 {
			al := []rune(alphabets[trial%len(alphabets)])
			n := 2 + rng.IntN(3000)
			var buf bytes.Buffer
			for buf.Len() < n {
				buf.WriteRune(al[rng.IntN(len(al))])
			}
			p := buf.Bytes()
			want := e.scanMerge(st, nil, p)
			got := e.longMerge(st, nil, p)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: heap merge of %q (%d bytes) = %v, scan gives %v", e.Name(), p[:min(40, len(p))], len(p), got[:min(10, len(got))], want[:min(10, len(want))])
			}
		}
	}
}

func cacheDirForTest(t testing.TB) string {
	if d := os.Getenv("IMMKIT_CACHE"); d != "" {
		return d
	}
	return filepath.Join("..", "..", ".cache")
}

// TestDecoderStreams feeds ids one at a time and checks that every write is valid UTF-8
// (no character split) and that the stream reproduces the text.
func TestDecoderStreams(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if err != nil {
		t.Fatal(err)
	}
	e := trainedSmall(t, PatternO200k)
	ids := e.Encode(nil, src)
	var out bytes.Buffer
	w := &checkWriter{t: t, buf: &out}
	d := e.NewDecoder(w)
	split := 0
	for _, id := range ids {
		if !utf8.Valid(e.TokenBytes(id)) {
			split++
		}
		if err := d.Write([]int32{id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), src) {
		t.Fatalf("streamed decode differs from the input")
	}
	if split == 0 {
		t.Fatalf("no token ends inside a character; the test does not exercise the decoder")
	}
	// Invalid bytes are passed through at Flush.
	out.Reset()
	d = e.NewDecoder(&out)
	bad := e.Encode(nil, []byte("ok\xe4\xb8"))
	if err := d.Write(bad); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ok" {
		t.Fatalf("before Flush got %q, want %q", out.String(), "ok")
	}
	d.Flush()
	if out.String() != "ok\xe4\xb8" {
		t.Fatalf("after Flush got %q", out.String())
	}
	if _, err := e.Decode(nil, []int32{e.MaxID() + 1}); err == nil {
		t.Fatal("Decode accepted an unknown id")
	}
}

type checkWriter struct {
	t   *testing.T
	buf *bytes.Buffer
}

func (w *checkWriter) Write(p []byte) (int, error) {
	if !utf8.Valid(p) {
		w.t.Fatalf("decoder wrote a split character: %q", p)
	}
	return w.buf.Write(p)
}

// TestEncodeBatchOrder checks that the parallel batch gives each document's own ids, for
// EncodeBatch and for EncodeBatchInto with one Batch reused across calls of different sizes
// (a stale id or offset from an earlier call would show up as a difference).
func TestEncodeBatchOrder(t *testing.T) {
	e := trainedSmall(t, PatternCL100k)
	src, _ := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	lines := bytes.SplitAfter(src, []byte("\n"))
	lines = append(lines, nil, src, []byte("x")) // an empty document, a long one, one byte
	check := func(what string, docs [][]byte, got func(i int) []int32) {
		t.Helper()
		for i, d := range docs {
			want := e.Encode(nil, d)
			if !slices.Equal(got(i), want) {
				t.Fatalf("%s, document %d of %d: batch ids differ from Encode", what, i, len(docs))
			}
			if n := e.Count(d); n != len(want) {
				t.Fatalf("%s, document %d: Count %d, Encode gives %d ids", what, i, n, len(want))
			}
		}
	}
	var b Batch
	for _, workers := range []int{1, 2, 4, 7} {
		for _, docs := range [][][]byte{lines, lines[:5], lines[len(lines)-3:], lines[:1], nil} {
			what := fmt.Sprintf("%d workers, %d documents", workers, len(docs))
			out := e.EncodeBatch(docs, workers)
			if len(out) != len(docs) {
				t.Fatalf("%s: EncodeBatch returned %d results", what, len(out))
			}
			check("EncodeBatch, "+what, docs, func(i int) []int32 { return out[i] })
			e.EncodeBatchInto(&b, docs, workers)
			if b.Len() != len(docs) || len(b.Offsets) != len(docs)+1 || b.Offsets[0] != 0 || b.Offsets[len(docs)] != len(b.IDs) {
				t.Fatalf("%s: Batch has %d documents, offsets %d..%d over %d ids", what, b.Len(), b.Offsets[0], b.Offsets[len(b.Offsets)-1], len(b.IDs))
			}
			check("EncodeBatchInto, "+what, docs, b.Doc)
		}
	}
	// The slices EncodeBatch returns are capped: appending to one must not overwrite the next.
	out := e.EncodeBatch(lines[:3], 2)
	want := slices.Clone(out[1])
	_ = append(out[0], -1, -1, -1)
	if !slices.Equal(out[1], want) {
		t.Fatal("appending to one EncodeBatch result changed the next")
	}
}

// TestEncodeNoAllocs checks that the hot path does not allocate once the encode states and
// a reused Batch are warm: Encode into a large enough dst, Count, and a one-worker
// EncodeBatchInto (more workers allocate only their goroutines).
func TestEncodeNoAllocs(t *testing.T) {
	e := trainedSmall(t, PatternO200k)
	src, _ := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	docs := bytes.SplitAfter(src, []byte("\n"))
	long := bytes.Repeat([]byte("abcab"), 1000) // a piece longer than smallPiece: longMerge
	dst := e.Encode(nil, src)
	var b Batch
	e.EncodeBatchInto(&b, docs, 1)
	for name, f := range map[string]func(){
		"Encode":               func() { dst = e.Encode(dst[:0], src) },
		"Encode long piece":    func() { dst = e.Encode(dst[:0], long) },
		"Count":                func() { e.Count(src) },
		"EncodeBatchInto, 1 w": func() { e.EncodeBatchInto(&b, docs, 1) },
	} {
		f()
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, n)
		}
	}
	e.EncodeBatchInto(&b, docs, 2)
	if n := testing.AllocsPerRun(20, func() { e.EncodeBatchInto(&b, docs, 2) }); n > 12 {
		t.Errorf("EncodeBatchInto, 2 workers: %.1f allocations per call, want at most 12 (goroutines only)", n)
	}
}

func TestTrainDeterministic(t *testing.T) {
	a := trainedSmall(t, PatternCL100k).Ranks()
	b := trainedSmall(t, PatternCL100k).Ranks()
	if len(a) != 999 {
		t.Fatalf("trained %d mergeable tokens, want 999 (1000 less one special)", len(a))
	}
	for k, v := range a {
		if b[k] != v {
			t.Fatalf("token %q: rank %d in one run, %d in another", k, v, b[k])
		}
	}
	if _, err := Train(TrainConfig{VocabSize: 100, Pattern: PatternCL100k}, nil); err == nil {
		t.Fatal("Train accepted a vocabulary smaller than 256")
	}
}

func TestSaveLoadConfig(t *testing.T) {
	e := trainedSmall(t, PatternO200k)
	p := filepath.Join(t.TempDir(), "small.tiktoken")
	if err := e.Save(p); err != nil {
		t.Fatal(err)
	}
	e2, err := LoadConfig(ConfigPath(p))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if !slices.Equal(e.Encode(nil, src), e2.Encode(nil, src)) || e2.Pattern() != PatternO200k {
		t.Fatal("reloaded encoding differs")
	}
	// A changed rank file is caught by the recorded hash.
	if err := os.WriteFile(p, []byte("YQ== 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(ConfigPath(p)); err == nil {
		t.Fatal("LoadConfig accepted a rank file with another hash")
	}
}

func TestHFRoundTrip(t *testing.T) {
	e := trainedSmall(t, PatternCL100k)
	var buf bytes.Buffer
	if err := WriteHFTokenizer(&buf, e, nil); err != nil {
		t.Fatal(err)
	}
	e2, err := ReadHFTokenizer(&buf, "small")
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := e.Ranks(), e2.Ranks()
	if len(r1) != len(r2) {
		t.Fatalf("%d ranks after the round trip, want %d", len(r2), len(r1))
	}
	for k, v := range r1 {
		if r2[k] != v {
			t.Fatalf("token %q: rank %d, want %d", k, r2[k], v)
		}
	}
	if e2.Special()["<|endoftext|>"] != e.Special()["<|endoftext|>"] {
		t.Fatal("special token lost")
	}
}

func TestReadTiktokenErrors(t *testing.T) {
	for _, in := range []string{"", "YQ==", "YQ== x", "!!! 0", "YQ== 0\nYQ== 1", "YQ== 0\nYg== 0", "YQ== -1", " 0"} {
		if _, err := ReadTiktoken(bytes.NewReader([]byte(in))); err == nil {
			t.Errorf("ReadTiktoken(%q) accepted it", in)
		}
	}
	r, err := ReadTiktoken(bytes.NewReader([]byte("YQ== 0\n\nYg== 7\r\n")))
	if err != nil || r["a"] != 0 || r["b"] != 7 || len(r) != 2 {
		t.Fatalf("ReadTiktoken = %v, %v", r, err)
	}
}

// TestEncodeDoesNotAllocate checks the hot path: encoding into a slice with room allocates
// nothing once the goroutine's scratch space exists.
func TestEncodeDoesNotAllocate(t *testing.T) {
	e := trainedSmall(t, PatternO200k)
	src, _ := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	long := bytes.Repeat([]byte("ab"), 5000)
	dst := e.Encode(nil, src)
	dst = e.Encode(dst, long)
	allocs := testing.AllocsPerRun(20, func() {
		dst = e.Encode(dst[:0], src)
		dst = e.Encode(dst, long)
	})
	if allocs > 0.5 {
		t.Fatalf("Encode allocates %.1f times per call", allocs)
	}
}
