package shards

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// loaderDataset builds a dataset of n samples (several shards, several row groups each)
// and returns its directory and the samples by key.
func loaderDataset(t *testing.T, n int) (string, map[string]sample, []string) {
	t.Helper()
	all := makeSamples(11, n, 20, "L")
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "in"), all, 3, identity(len(all)))
	out := filepath.Join(tmp, "out")
	m := build(t, []string{filepath.Join(tmp, "in")}, out, func(o *BuildOptions) { o.ValFraction = 0.1 })
	if n >= 200 && len(m.SplitShards(SplitTrain)) < 3 {
		t.Fatalf("want several train shards, got %d", len(m.SplitShards(SplitTrain)))
	}
	byKey := map[string]sample{}
	for _, s := range all {
		byKey[s.key] = s
	}
	keys, split, _, _ := readShardRows(t, out, m)
	var train []string
	for i, k := range keys {
		if split[i] == SplitTrain {
			train = append(train, k)
		}
	}
	return out, byKey, train
}

func drain(t *testing.T, l *Loader, max int) []*Batch {
	t.Helper()
	var out []*Batch
	for len(out) < max || max < 0 {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func newLoader(t *testing.T, dir string, o LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLoaderEpochCoversTrainOnce(t *testing.T) {
	dir, byKey, train := loaderDataset(t, 400)
	const seqLen = 8
	for _, w := range []int{1, 2, 3, 4} {
		seen := map[string]int{}
		for r := 0; r < w; r++ {
			l := newLoader(t, dir, LoaderOptions{Seed: 3, GlobalBatch: 12, Rank: r, World: w, ShuffleBlock: 50, Epochs: 1, SeqLen: map[string]int{"text_tokens": seqLen}})
			for _, b := range drain(t, l, -1) {
				lat := b.Latents["image_latent"]
				tok := b.Tokens["text_tokens"]
				if lat == nil || tok == nil || b.Ints["label_id"] == nil {
					t.Fatalf("batch lacks columns: %+v", b)
				}
				if !slices.Equal(lat.Shape, []int{testC, testH, testW}) || tok.SeqLen != seqLen {
					t.Fatalf("shape %v seq len %d", lat.Shape, tok.SeqLen)
				}
				for i, k := range b.Keys {
					seen[k]++
					s, ok := byKey[k]
					if !ok {
						t.Fatalf("unknown key %q", k)
					}
					for j, v := range s.latent {
						if got, want := lat.Data[i*lat.Size+j], float16To32(v.Uint16()); got != want {
							t.Fatalf("%s latent[%d] = %v, want %v", k, j, got, want)
						}
					}
					n := min(len(s.tokens), seqLen)
					if int(tok.Lengths[i]) != n || !slices.Equal(tok.IDs[i*seqLen:i*seqLen+n], s.tokens[:n]) {
						t.Fatalf("%s tokens %v (len %d), want %v", k, tok.IDs[i*seqLen:(i+1)*seqLen], tok.Lengths[i], s.tokens)
					}
					for j := n; j < seqLen; j++ {
						if tok.IDs[i*seqLen+j] != 0 {
							t.Fatalf("%s: padding is not zero", k)
						}
					}
					if b.Ints["label_id"][i] != s.label {
						t.Fatalf("%s label %d, want %d", k, b.Ints["label_id"][i], s.label)
					}
				}
			}
		}
		if len(seen) != len(train) {
			t.Fatalf("w=%d: %d distinct samples, want %d", w, len(seen), len(train))
		}
		for _, k := range train {
			if seen[k] != 1 {
				t.Fatalf("w=%d: sample %s seen %d times", w, k, seen[k])
			}
		}
	}
}

// globalSequence runs all ranks of a world over epochs and returns, per step, the keys of
// the global batch in rank order.
func globalSequence(t *testing.T, dir string, w int, o LoaderOptions) [][]string {
	t.Helper()
	var steps [][]string
	for r := 0; r < w; r++ {
		o.Rank, o.World = r, w
		l := newLoader(t, dir, o)
		for i, b := range drain(t, l, -1) {
			if r == 0 {
				steps = append(steps, nil)
			}
			if i >= len(steps) {
				t.Fatalf("rank %d has more batches than rank 0", r)
			}
			if w > 1 && o.GlobalBatch%w == 0 && len(b.Keys) != o.GlobalBatch/w && i%l.StepsPerEpoch() != l.StepsPerEpoch()-1 {
				t.Fatalf("rank %d batch %d has %d samples, want %d", r, i, len(b.Keys), o.GlobalBatch/w)
			}
			steps[i] = append(steps[i], b.Keys...)
		}
	}
	return steps
}

func TestLoaderGlobalOrderIndependentOfWorld(t *testing.T) {
	dir, _, _ := loaderDataset(t, 300)
	o := LoaderOptions{Seed: 9, GlobalBatch: 16, ShuffleBlock: 37, Epochs: 2}
	one := globalSequence(t, dir, 1, o)
	four := globalSequence(t, dir, 4, o)
	if len(one) != len(four) {
		t.Fatalf("%d steps with w=1, %d with w=4", len(one), len(four))
	}
	for i := range one {
		if !slices.Equal(one[i], four[i]) {
			t.Fatalf("step %d: w=1 %v, w=4 %v", i, one[i], four[i])
		}
	}
	// The two epochs are different orders of the same samples, and another seed gives
	// another order.
	spe := len(one) / 2
	e0, e1 := slices.Concat(one[:spe]...), slices.Concat(one[spe:]...)
	if slices.Equal(e0, e1) {
		t.Error("epoch 1 repeats the order of epoch 0")
	}
	s0, s1 := slices.Clone(e0), slices.Clone(e1)
	slices.Sort(s0)
	slices.Sort(s1)
	if !slices.Equal(s0, s1) {
		t.Error("epochs hold different samples")
	}
	o.Seed = 10
	other := globalSequence(t, dir, 1, o)
	if slices.Equal(slices.Concat(other[:spe]...), e0) {
		t.Error("seed does not change the order")
	}
}

func TestLoaderResumeExact(t *testing.T) {
	dir, _, _ := loaderDataset(t, 300)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	base := LoaderOptions{Seed: 5, GlobalBatch: 8, ShuffleBlock: 29, Epochs: 3, Prefetch: 1 << 10}
	for _, w := range []int{1, 2, 3, 4} {
		o := base
		o.GlobalBatch = 12
		o.Rank, o.World = w-1, w
		ref := drain(t, newLoader(t, dir, o), -1)
		for trial := 0; trial < 3; trial++ {
			k := rng.IntN(len(ref))
			l := newLoader(t, dir, o)
			drain(t, l, k)
			st := l.State()
			// The rest of this loader, and a fresh loader resumed at the state.
			l2 := newLoader(t, dir, o)
			if err := l2.Resume(st); err != nil {
				t.Fatal(err)
			}
			rest2 := drain(t, l2, -1)
			rest := drain(t, l, -1)
			for _, got := range [][]*Batch{rest, rest2} {
				if len(got) != len(ref)-k {
					t.Fatalf("w=%d resume at %d (%+v): %d batches, want %d", w, k, st, len(got), len(ref)-k)
				}
				for i, b := range got {
					want := ref[k+i]
					if b.Epoch != want.Epoch || b.Step != want.Step || !slices.Equal(b.Keys, want.Keys) ||
						!slices.Equal(b.Latents["image_latent"].Data, want.Latents["image_latent"].Data) ||
						!slices.Equal(b.Tokens["text_tokens"].IDs, want.Tokens["text_tokens"].IDs) {
						t.Fatalf("w=%d resume at batch %d: batch %d differs from the uninterrupted run", w, k, i)
					}
				}
			}
		}
	}
	// Elastic: a state saved by rank 1 of 2 resumes a 3-rank world at the same global step.
	o := base
	o.GlobalBatch = 12
	full := globalSequence(t, dir, 1, o)
	o.Rank, o.World = 1, 2
	l := newLoader(t, dir, o)
	drain(t, l, 7)
	st := l.State()
	var resumed [][]string
	for r := 0; r < 3; r++ {
		o.Rank, o.World = r, 3
		l := newLoader(t, dir, o)
		if err := l.Resume(st); err != nil {
			t.Fatal(err)
		}
		for i, b := range drain(t, l, -1) {
			if r == 0 {
				resumed = append(resumed, nil)
			}
			resumed[i] = append(resumed[i], b.Keys...)
		}
	}
	if len(resumed) != len(full)-7 {
		t.Fatalf("elastic resume gave %d steps, want %d", len(resumed), len(full)-7)
	}
	for i := range resumed {
		if !slices.Equal(resumed[i], full[7+i]) {
			t.Fatalf("elastic resume: step %d differs", 7+i)
		}
	}
	// A state from another seed is refused.
	o.Seed++
	if err := newLoader(t, dir, o).Resume(st); !errors.Is(err, ErrState) {
		t.Fatalf("resume with another seed: %v, want ErrState", err)
	}
}

func TestLoaderCloseStopsReader(t *testing.T) {
	dir, _, _ := loaderDataset(t, 200)
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		l, err := NewLoader(dir, LoaderOptions{GlobalBatch: 4, Prefetch: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Next(); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func TestEpochOrderIsBlockShuffle(t *testing.T) {
	rows := []int64{5, 17, 1, 30, 9}
	o := newEpochOrder(1, 0, rows, 7)
	seen := map[[2]int64]bool{}
	for p := int64(0); p < o.n; p++ {
		s := o.stream(p)
		if s/7 != p/7 {
			t.Fatalf("position %d maps to stream %d outside its block", p, s)
		}
		sh, row := o.locate(s)
		if row < 0 || row >= rows[sh] || seen[[2]int64{int64(sh), row}] {
			t.Fatalf("position %d -> shard %d row %d: invalid or repeated", p, sh, row)
		}
		seen[[2]int64{int64(sh), row}] = true
	}
	if len(seen) != 62 {
		t.Fatalf("%d samples, want 62", len(seen))
	}
}

func TestLoaderOptionErrors(t *testing.T) {
	dir, _, _ := loaderDataset(t, 50)
	for _, o := range []LoaderOptions{
		{GlobalBatch: 10, World: 3},
		{Rank: 2, World: 2},
		{Split: "test"},
		{Columns: []string{"key"}},
		{GlobalBatch: 1 << 20, DropLast: true},
	} {
		if _, err := NewLoader(dir, o); err == nil {
			t.Errorf("%+v: no error", o)
		} else {
			t.Log(err)
		}
	}
}

// TestLoaderFloat32Latents covers float32 and float16 latent columns side by side, against
// the values written. (Null latent rows cannot be written: pqarrow v18.8.0 refuses
// fixed_size_list nulls, "lists with non-zero length null components are not supported".)
func TestLoaderFloat32Latents(t *testing.T) {
	const size = 6
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: "lat32", Type: arrow.FixedSizeListOf(size, arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: "lat16", Type: arrow.FixedSizeListOf(size, arrow.FixedWidthTypes.Float16), Nullable: true},
		{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	want32 := map[string][]float32{}
	want16 := map[string][]float32{}
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("n%04d", i)
		b.Field(0).(*array.StringBuilder).Append(key)
		l32 := b.Field(1).(*array.FixedSizeListBuilder)
		l16 := b.Field(2).(*array.FixedSizeListBuilder)
		v32 := make([]float32, size)
		v16 := make([]float32, size)
		l32.Append(true)
		for j := range v32 {
			v32[j] = float32(i*10+j) + 0.25
		}
		l32.ValueBuilder().(*array.Float32Builder).AppendValues(v32, nil)
		l16.Append(true)
		for j := range v16 {
			h := float16.New(float32(j) - float32(i%9))
			v16[j] = float16To32(h.Uint16())
			l16.ValueBuilder().(*array.Float16Builder).Append(h)
		}
		want32[key], want16[key] = v32, v16
		var sha [32]byte
		copy(sha[:], key)
		b.Field(3).(*array.BinaryBuilder).Append(sha[:])
	}
	tmp := t.TempDir()
	writeRecord(t, filepath.Join(tmp, "in", "p.parquet"), b.NewRecordBatch(), 40)
	build(t, []string{filepath.Join(tmp, "in")}, filepath.Join(tmp, "ds"), func(o *BuildOptions) { o.ValFraction = 0 })
	l := newLoader(t, filepath.Join(tmp, "ds"), LoaderOptions{GlobalBatch: 7, Epochs: 1, ShuffleBlock: 64})
	n := 0
	for _, bt := range drain(t, l, -1) {
		for i, k := range bt.Keys {
			n++
			if got := bt.Latents["lat32"].Data[i*size : (i+1)*size]; !slices.Equal(got, want32[k]) {
				t.Fatalf("%s lat32 %v, want %v", k, got, want32[k])
			}
			if got := bt.Latents["lat16"].Data[i*size : (i+1)*size]; !slices.Equal(got, want16[k]) {
				t.Fatalf("%s lat16 %v, want %v", k, got, want16[k])
			}
		}
	}
	if n != 300 {
		t.Fatalf("%d samples, want 300", n)
	}
}

func TestLoaderReuseBatchesSameSequence(t *testing.T) {
	dir, _, _ := loaderDataset(t, 200)
	o := LoaderOptions{Seed: 2, GlobalBatch: 10, Rank: 1, World: 2, ShuffleBlock: 33, Epochs: 2}
	ref := drain(t, newLoader(t, dir, o), -1)
	o.ReuseBatches = true
	l := newLoader(t, dir, o)
	for i := 0; ; i++ {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			if i != len(ref) {
				t.Fatalf("%d batches with reuse, %d without", i, len(ref))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		w := ref[i]
		if !slices.Equal(b.Keys, w.Keys) || !slices.Equal(b.Latents["image_latent"].Data, w.Latents["image_latent"].Data) ||
			!slices.Equal(b.Tokens["text_tokens"].IDs, w.Tokens["text_tokens"].IDs) || !slices.Equal(b.Tokens["text_tokens"].Lengths, w.Tokens["text_tokens"].Lengths) {
			t.Fatalf("batch %d differs with ReuseBatches", i)
		}
	}
}

// TestLoaderFloatLists: list<float32> and large_list<float32> columns (audio_mel) arrive
// as Floats, each sample's values (the test's own inputs) zero-padded to the batch's
// longest list or truncated to SeqLen, nulls as empty lists, with and without reused
// batches.
func TestLoaderFloatLists(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: "mel", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: "mel_large", Type: arrow.LargeListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	want := map[string]map[string][]float32{"mel": {}, "mel_large": {}}
	rng := rand.New(rand.NewPCG(4, 4))
	const n = 700
	for i := range n {
		key := fmt.Sprintf("m%04d", i)
		b.Field(0).(*array.StringBuilder).Append(key)
		for c, name := range []string{"mel", "mel_large"} {
			lb := b.Field(1 + c).(array.ListLikeBuilder)
			if (i+c)%11 == 3 {
				lb.AppendNull()
				want[name][key] = nil
				continue
			}
			v := make([]float32, rng.IntN(40))
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			lb.Append(true)
			lb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
			want[name][key] = v
		}
		var sha [32]byte
		copy(sha[:], key)
		b.Field(3).(*array.BinaryBuilder).Append(sha[:])
	}
	tmp := t.TempDir()
	writeRecord(t, filepath.Join(tmp, "in", "p.parquet"), b.NewRecordBatch(), 50)
	m := build(t, []string{filepath.Join(tmp, "in")}, filepath.Join(tmp, "ds"), func(o *BuildOptions) {
		o.ValFraction, o.ShardSize, o.RowGroupBytes = 0, 4<<20, 1<<20
	})
	// Row groups of many rows, read whole (the default record batch bound) and in record
	// batches of about 4 KB.
	pf, err := openParquet(filepath.Join(tmp, "ds", filepath.FromSlash(m.Shards[0].Path)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rg := pf.Reader.MetaData().RowGroup(0); rg.NumRows() < 100 || rg.TotalByteSize() < 16<<10 {
		t.Fatalf("first row group: %d rows, %d bytes; the test needs more", rg.NumRows(), rg.TotalByteSize())
	}
	pf.Close()
	defer func(v int64) { recBatchBytes = v }(recBatchBytes)
	for _, c := range []struct {
		seqLen     int
		reuse      bool
		batchBytes int64
	}{{0, false, 8 << 20}, {0, true, 8 << 20}, {17, true, 8 << 20}, {0, false, 4 << 10}, {17, true, 4 << 10}} {
		recBatchBytes = c.batchBytes
		o := LoaderOptions{GlobalBatch: 13, Epochs: 1, ShuffleBlock: 64, ReuseBatches: c.reuse}
		if c.seqLen > 0 {
			o.SeqLen = map[string]int{"mel": c.seqLen, "mel_large": c.seqLen}
		}
		l := newLoader(t, filepath.Join(tmp, "ds"), o)
		seen, truncated := 0, 0
		for {
			bt, err := l.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"mel", "mel_large"} {
				f := bt.Floats[name]
				if f == nil {
					t.Fatalf("column %s not loaded", name)
				}
				longest := 0
				for _, k := range bt.Keys {
					longest = max(longest, len(want[name][k]))
				}
				if c.seqLen == 0 && f.Len != longest || c.seqLen > 0 && f.Len != c.seqLen {
					t.Fatalf("%s: Len %d, want %d (SeqLen %d)", name, f.Len, max(c.seqLen, longest), c.seqLen)
				}
				if len(f.Data) != bt.Len()*f.Len || len(f.Lengths) != bt.Len() {
					t.Fatalf("%s: %d values and %d lengths for %d samples of %d", name, len(f.Data), len(f.Lengths), bt.Len(), f.Len)
				}
				for i, k := range bt.Keys {
					w := want[name][k]
					keep := min(len(w), f.Len)
					if len(w) > f.Len {
						truncated++
					}
					row := f.Data[i*f.Len : (i+1)*f.Len]
					if int(f.Lengths[i]) != keep || !slices.Equal(row[:keep], w[:keep]) {
						t.Fatalf("%s %s: length %d values %v, want %d %v", name, k, f.Lengths[i], row[:f.Lengths[i]], keep, w[:keep])
					}
					for j, v := range row[keep:] {
						if v != 0 {
							t.Fatalf("%s %s: padding value %d is %v", name, k, keep+j, v)
						}
					}
				}
			}
			seen += bt.Len()
		}
		l.Close()
		if seen != n {
			t.Fatalf("SeqLen %d reuse %v batch bytes %d: %d samples, want %d", c.seqLen, c.reuse, c.batchBytes, seen, n)
		}
		if c.seqLen > 0 && truncated == 0 {
			t.Fatal("no list was longer than SeqLen: the truncation was not exercised")
		}
	}
}
