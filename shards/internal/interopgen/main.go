// Command interopgen makes the inputs and expectations of scripts/checks.d/shards.sh:
//
//	interopgen parts -o DIR [-n N] [-workers W]   encoded-like part files (float16 C,H,W
//	                                              latents, int32 tokens, label_id) split over
//	                                              W part files, plus DIR/keys.json, the keys
//	                                              expected after dedup
//	interopgen raw -o DIR [-n N]                  raw-schema parts (image struct, text)
//	interopgen expect SHARDS                      SHARDS.expect.json: the first sample the
//	                                              shards.Loader yields, decoded by us
//
// It is test tooling, not part of immdata.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/immkit/immkit/shards"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "interopgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: interopgen parts|raw|expect ...")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	out := fs.String("o", "", "output directory")
	n := fs.Int("n", 500, "samples")
	workers := fs.Int("workers", 1, "part files")
	c := fs.Int("c", 4, "latent channels")
	hw := fs.Int("hw", 8, "latent height and width")
	tok := fs.Int("tokens", 64, "tokens per sample")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "parts":
		return writeEncoded(*out, *n, *workers, *c, *hw, *tok)
	case "raw":
		return writeRaw(*out, *n)
	case "expect":
		if fs.NArg() != 1 {
			return errors.New("expect: want SHARDS")
		}
		return expect(fs.Arg(0))
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

func writeEncoded(dir string, n, workers, c, hw, ntok int) error {
	size := c * hw * hw
	md := arrow.NewMetadata([]string{"shape", "encoder"}, []string{fmt.Sprintf("%d,%d,%d", c, hw, hw), "synthetic@1"})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "label_id", Type: arrow.PrimitiveTypes.Int32},
		{Name: "image_latent", Type: arrow.FixedSizeListOf(int32(size), arrow.FixedWidthTypes.Float16), Nullable: true, Metadata: md},
		{Name: "text_tokens", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "sha256", Type: arrow.BinaryTypes.Binary},
	}, nil)
	builders := make([]*array.RecordBuilder, workers)
	for i := range builders {
		builders[i] = array.NewRecordBuilder(memory.DefaultAllocator, schema)
	}
	r := rand.New(rand.NewPCG(1, 2))
	keys := map[[32]byte]string{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("s%06d", i)
		lat := make([]float16.Num, size)
		for j := range lat {
			lat[j] = float16.New(float32(r.NormFloat64()))
		}
		toks := make([]int32, 1+r.IntN(ntok))
		for j := range toks {
			toks[j] = r.Int32N(50000)
		}
		label := r.Int32N(10)
		if i%10 == 9 { // an exact duplicate of the previous sample's content
			lat, toks, label = prevLat, prevToks, prevLabel
		}
		prevLat, prevToks, prevLabel = lat, toks, label
		h := sha256.New()
		for _, v := range lat {
			binary.Write(h, binary.LittleEndian, v.Uint16())
		}
		binary.Write(h, binary.LittleEndian, toks)
		binary.Write(h, binary.LittleEndian, label)
		var sha [32]byte
		h.Sum(sha[:0])
		if k, ok := keys[sha]; !ok || key < k {
			keys[sha] = key
		}
		b := builders[int(binary.LittleEndian.Uint32(sha[:4]))%workers]
		b.Field(0).(*array.StringBuilder).Append(key)
		b.Field(1).(*array.Int32Builder).Append(label)
		lb := b.Field(2).(*array.FixedSizeListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float16Builder).AppendValues(lat, nil)
		tb := b.Field(3).(*array.ListBuilder)
		tb.Append(true)
		tb.ValueBuilder().(*array.Int32Builder).AppendValues(toks, nil)
		b.Field(4).(*array.BinaryBuilder).Append(sha[:])
	}
	for w, b := range builders {
		rec := b.NewRecordBatch()
		err := writeParquet(filepath.Join(dir, "parts", fmt.Sprintf("part-%d-00000.parquet", w)), rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	var want []string
	for _, k := range keys {
		want = append(want, k)
	}
	sort.Strings(want)
	js, _ := json.Marshal(want)
	return os.WriteFile(filepath.Join(dir, "keys.json"), js, 0o644)
}

var (
	prevLat   []float16.Num
	prevToks  []int32
	prevLabel int32
)

func writeRaw(dir string, n int) error {
	media := arrow.StructOf(
		arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "image", Type: media, Nullable: true},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "sha256", Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	r := rand.New(rand.NewPCG(3, 4))
	keys := []string{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("raw/%05d", i)
		keys = append(keys, key)
		img := make([]byte, 100+r.IntN(400))
		for j := range img {
			img[j] = byte(r.Uint32())
		}
		text := fmt.Sprintf("caption %d", i)
		b.Field(0).(*array.StringBuilder).Append(key)
		b.Field(1).(*array.StringBuilder).Append(key + ".png")
		sb := b.Field(2).(*array.StructBuilder)
		if i%7 == 3 {
			sb.AppendNull()
		} else {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.BinaryBuilder).Append(img)
			sb.FieldBuilder(1).(*array.StringBuilder).Append(key + ".png")
		}
		b.Field(3).(*array.StringBuilder).Append(text)
		b.Field(4).(*array.StringBuilder).Append(fmt.Sprint(i % 3))
		sha := sha256.Sum256(append(img, text...))
		b.Field(5).(*array.BinaryBuilder).Append(sha[:])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := writeParquet(filepath.Join(dir, "parts", "part-0-00000.parquet"), rec); err != nil {
		return err
	}
	js, _ := json.Marshal(keys)
	return os.WriteFile(filepath.Join(dir, "keys.json"), js, 0o644)
}

func writeParquet(path string, rec arrow.RecordBatch) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(1<<30)), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return errors.Join(err, f.Close())
	}
	if err := w.Write(rec); err != nil {
		return errors.Join(err, w.Close())
	}
	return w.Close()
}

// expect writes the first sample our Loader yields (seed 0, one rank) as JSON.
func expect(dir string) error {
	l, err := shards.NewLoader(dir, shards.LoaderOptions{GlobalBatch: 1, Epochs: 1})
	if err != nil {
		return err
	}
	defer l.Close()
	b, err := l.Next()
	if err != nil {
		return err
	}
	out := map[string]any{"key": b.Keys[0]}
	if lat := b.Latents["image_latent"]; lat != nil {
		out["image_latent"] = lat.Data[:lat.Size]
	}
	if t := b.Tokens["text_tokens"]; t != nil {
		out["text_tokens"] = t.IDs[:t.Lengths[0]]
	}
	js, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Clean(dir)+".expect.json", js, 0o644)
}
