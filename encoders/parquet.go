package encoders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/internal/pqsafe"
)

// InputParts lists the raw-sample parts of an ingest output directory (IN/parts/*.parquet),
// sorted by name.
func InputParts(in string) ([]string, error) {
	ps, err := filepath.Glob(filepath.Join(in, "parts", "*.parquet"))
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("encoders: no parts in %s (want IN/parts/*.parquet written by immdata ingest)", filepath.Join(in, "parts"))
	}
	sort.Strings(ps)
	return ps, nil
}

// rawColumns are the ingest columns encode reads.
var rawColumns = []string{"key", "source", "sha256", "image", "audio", "text", "label"}

// scanSamples calls fn for every row of a raw-sample part, in order. The media slices of
// the sample are only valid during the call; fn must copy what it keeps. A damaged part is
// an error naming it (and the row group): reader panics are recovered, every batch is
// validated before it is indexed, and the rows must number what the footer declares
// (internal/pqsafe).
func scanSamples(ctx context.Context, path string, fn func(s *Sample) error) error {
	f, err := pqsafe.Open(path, pqsafe.Options{BatchRows: 256, Prefix: "encoders: "})
	if err != nil {
		return err
	}
	defer f.Close()
	sc, err := f.Schema()
	if err != nil {
		return fmt.Errorf("encoders: schema of %s: %w", path, err)
	}
	var names []string
	for _, name := range rawColumns {
		if len(sc.FieldIndices(name)) == 0 {
			if name == "key" || name == "sha256" {
				return fmt.Errorf("encoders: %s has no %q column: not an ingest part", path, name)
			}
			continue
		}
		names = append(names, name)
	}
	leaves, err := f.Leaves(names...)
	if err != nil {
		return err
	}
	return f.Scan(ctx, leaves, func(rec arrow.RecordBatch) error { return scanBatch(path, rec, fn) })
}

// scanBatch calls fn for every row of one validated batch of a raw-sample part.
func scanBatch(path string, rec arrow.RecordBatch, fn func(s *Sample) error) error {
	col := func(name string) arrow.Array {
		if i := rec.Schema().FieldIndices(name); len(i) > 0 {
			return rec.Column(i[0])
		}
		return nil
	}
	keys, ok := col("key").(*array.String)
	if !ok {
		return fmt.Errorf("encoders: %s: key column is %s, want utf8", path, col("key").DataType())
	}
	sums, ok := col("sha256").(*array.Binary)
	if !ok {
		return fmt.Errorf("encoders: %s: sha256 column is %s, want binary (a part from an older immkit? re-run ingest)", path, col("sha256").DataType())
	}
	src, _ := col("source").(*array.String)
	txt, _ := col("text").(*array.String)
	lab, _ := col("label").(*array.String)
	img, aud := mediaBytes(col("image")), mediaBytes(col("audio"))
	for i := 0; i < int(rec.NumRows()); i++ {
		s := Sample{Key: keys.Value(i)}
		if len(sums.Value(i)) != len(s.SHA256) {
			return fmt.Errorf("encoders: %s: sha256 of row %d has %d bytes, want 32", path, i, len(sums.Value(i)))
		}
		copy(s.SHA256[:], sums.Value(i))
		if src != nil && src.IsValid(i) {
			s.Source = src.Value(i)
		}
		if txt != nil && txt.IsValid(i) {
			s.Text, s.HasText = txt.Value(i), true
		}
		if lab != nil && lab.IsValid(i) {
			s.Label = lab.Value(i)
		}
		s.Image, s.Audio = img(i), aud(i)
		if err := fn(&s); err != nil {
			return err
		}
	}
	return nil
}

// mediaBytes returns the bytes of a struct{bytes, path} media column (nil when null).
func mediaBytes(a arrow.Array) func(i int) []byte {
	st, ok := a.(*array.Struct)
	if !ok {
		return func(int) []byte { return nil }
	}
	var bs *array.Binary
	for j := 0; j < st.NumField(); j++ {
		if st.DataType().(*arrow.StructType).Field(j).Name == "bytes" {
			bs, _ = st.Field(j).(*array.Binary)
		}
	}
	if bs == nil {
		return func(int) []byte { return nil }
	}
	return func(i int) []byte {
		if st.IsNull(i) || bs.IsNull(i) {
			return nil
		}
		return bs.Value(i)
	}
}

// partWriter streams records of one schema into a Parquet file written to a temporary name;
// Commit renames it into place.
type partWriter struct {
	path, tmp string
	f         *os.File
	w         *pqarrow.FileWriter
	b         *array.RecordBuilder
	rows      int64
	groupRows int
}

func newPartWriter(path string, schema *arrow.Schema, groupRows int) (*partWriter, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("encoders: create part: %w", err)
	}
	// No dictionary encoding: when a dictionary falls back to plain, arrow-go v18.8.0 lists the
	// column chunk's page encodings in map order, which makes the footer differ between runs.
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(int64(groupRows)), parquet.WithCreatedBy("immkit encode"))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("encoders: create part: %w", err), f.Close(), os.Remove(tmp))
	}
	return &partWriter{path: path, tmp: tmp, f: f, w: w, b: array.NewRecordBuilder(memory.DefaultAllocator, schema), groupRows: groupRows}, nil
}

func (p *partWriter) append(key string, sum [32]byte, vals []any) error {
	if err := appendRow(p.b, key, sum, vals); err != nil {
		return err
	}
	p.rows++
	if p.b.Field(0).Len() >= p.groupRows {
		return p.flush()
	}
	return nil
}

// flush writes the buffered rows as one row group (one Write per row group: see the arrow-go
// note in docs/encode.md).
func (p *partWriter) flush() error {
	if p.b.Field(0).Len() == 0 {
		return nil
	}
	rec := p.b.NewRecordBatch()
	defer rec.Release()
	if err := p.w.Write(rec); err != nil {
		return fmt.Errorf("encoders: write %s: %w", p.tmp, err)
	}
	return nil
}

func (p *partWriter) commit() error {
	err := p.flush()
	p.b.Release()
	err = errors.Join(err, p.w.Close()) // closes f
	if err == nil {
		err = syncAndRename(p.tmp, p.path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("encoders: commit %s: %w", p.path, err), removeIfExists(p.tmp))
	}
	return nil
}

func (p *partWriter) abort() error {
	p.b.Release()
	return errors.Join(p.w.Close(), removeIfExists(p.tmp))
}

func syncAndRename(tmp, path string) error {
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file in the same directory.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("encoders: write %s: %w", path, err), removeIfExists(f.Name()))
	}
	return nil
}
