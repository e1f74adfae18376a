package shards

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// sample is one encoded-like test row.
type sample struct {
	key    string
	latent []float16.Num // C*H*W
	tokens []int32
	label  int32
}

func (s sample) sha() [32]byte {
	h := sha256.New()
	for _, v := range s.latent {
		binary.Write(h, binary.LittleEndian, v.Uint16())
	}
	binary.Write(h, binary.LittleEndian, s.tokens)
	binary.Write(h, binary.LittleEndian, s.label)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

const testC, testH, testW = 2, 3, 3

func encodedSchema(latentLen int) *arrow.Schema {
	md := arrow.NewMetadata([]string{"shape", "encoder"}, []string{fmt.Sprintf("%d,%d,%d", testC, testH, testW), "pixels@1"})
	smd := arrow.NewMetadata([]string{ArtefactsMetadataKey}, []string{`[{"name":"bpe","path":"bpe.tiktoken","sha256":"` + fmt.Sprintf("%064x", 7) + `"}]`})
	return arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: "label_id", Type: arrow.PrimitiveTypes.Int32},
		{Name: "image_latent", Type: arrow.FixedSizeListOf(int32(latentLen), arrow.FixedWidthTypes.Float16), Nullable: true, Metadata: md},
		{Name: "text_tokens", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
	}, &smd)
}

// makeSamples returns n random samples with C*H*W latents and 1..maxTok tokens.
func makeSamples(seed uint64, n, maxTok int, prefix string) []sample {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]sample, n)
	for i := range out {
		lat := make([]float16.Num, testC*testH*testW)
		for j := range lat {
			lat[j] = float16.New(float32(r.NormFloat64()))
		}
		toks := make([]int32, 1+r.IntN(maxTok))
		for j := range toks {
			toks[j] = r.Int32N(50000)
		}
		out[i] = sample{key: fmt.Sprintf("%s%05d", prefix, i), latent: lat, tokens: toks, label: r.Int32N(10)}
	}
	return out
}

// encodedRecord builds the encoded-like record of samples (schema encodedSchema(latLen));
// the caller releases it.
func encodedRecord(samples []sample, latLen int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, encodedSchema(latLen))
	defer b.Release()
	for _, s := range samples {
		b.Field(0).(*array.StringBuilder).Append(s.key)
		b.Field(1).(*array.Int32Builder).Append(s.label)
		lb := b.Field(2).(*array.FixedSizeListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float16Builder).AppendValues(s.latent, nil)
		tb := b.Field(3).(*array.ListBuilder)
		tb.Append(true)
		tb.ValueBuilder().(*array.Int32Builder).AppendValues(s.tokens, nil)
		sha := s.sha()
		b.Field(4).(*array.BinaryBuilder).Append(sha[:])
	}
	return b.NewRecordBatch()
}

// writePart writes samples as one encoded-like Parquet part, in row groups of rg rows.
func writePart(t testing.TB, path string, samples []sample, rg int) {
	t.Helper()
	latLen := testC * testH * testW
	if len(samples) > 0 {
		latLen = len(samples[0].latent)
	}
	rec := encodedRecord(samples, latLen)
	defer rec.Release()
	writeRecord(t, path, rec, rg)
}

func writeRecord(t testing.TB, path string, rec arrow.RecordBatch, rg int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(int64(max(1, rg))))
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	// Write compact copies of each row group: pqarrow v18.8.0 mis-writes sliced
	// fixed_size_list arrays (it ignores the slice offset).
	for lo := int64(0); lo < rec.NumRows(); lo += int64(max(1, rg)) {
		sl := rec.NewSlice(lo, min(rec.NumRows(), lo+int64(max(1, rg))))
		cols := make([]arrow.Array, sl.NumCols())
		for c := range cols {
			if cols[c], err = array.Concatenate([]arrow.Array{sl.Column(c)}, memory.DefaultAllocator); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Write(array.NewRecordBatch(rec.Schema(), cols, -1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeParts distributes samples over n part files of dir/parts in the order perm gives.
func writeParts(t testing.TB, dir string, samples []sample, n int, perm []int) {
	t.Helper()
	groups := make([][]sample, n)
	for i, j := range perm {
		groups[i%n] = append(groups[i%n], samples[j])
	}
	for w, g := range groups {
		writePart(t, filepath.Join(dir, "parts", fmt.Sprintf("part-%d-%05d.parquet", w, 0)), g, 7)
	}
}

// readShardRows reads every row of a dataset's shards in manifest order.
func readShardRows(t testing.TB, dir string, m *Manifest) (keys []string, split []string, lat [][]float32, toks [][]int32) {
	t.Helper()
	for _, s := range m.Shards {
		pf, err := openParquet(filepath.Join(dir, s.Path), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		err = pf.Scan(t.Context(), nil, func(rec arrow.RecordBatch) error {
			sc := rec.Schema()
			k := rec.Column(sc.FieldIndices("key")[0]).(*array.String)
			l := rec.Column(sc.FieldIndices("image_latent")[0]).(*array.FixedSizeList)
			tk := rec.Column(sc.FieldIndices("text_tokens")[0]).(*array.List)
			lv := l.ListValues().(*array.Float16)
			tv := tk.ListValues().(*array.Int32)
			for i := 0; i < int(rec.NumRows()); i++ {
				keys = append(keys, k.Value(i))
				split = append(split, s.Split)
				lo, hi := l.ValueOffsets(i)
				row := make([]float32, 0, hi-lo)
				for j := lo; j < hi; j++ {
					row = append(row, lv.Value(int(j)).Float32())
				}
				lat = append(lat, row)
				lo, hi = tk.ValueOffsets(i)
				toks = append(toks, append([]int32(nil), tv.Int32Values()[lo:hi]...))
			}
			return nil
		})
		pf.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return
}

// float16To32 is the independent reference conversion for tests (float64 arithmetic).
func float16To32(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	f := float64(h & 0x3ff)
	switch e {
	case 0:
		return float32(sign * f * math.Pow(2, -24))
	case 31:
		if f == 0 {
			return float32(sign * math.Inf(1))
		}
		return float32(math.NaN())
	}
	return float32(sign * (1 + f/1024) * math.Pow(2, float64(e-15)))
}
