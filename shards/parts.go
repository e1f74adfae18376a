package shards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ErrNoParts is returned when the inputs hold no Parquet part files.
var ErrNoParts = errors.New("shards: no part files found")

// part is one input Parquet file.
type part struct {
	path     string
	rows     int64
	rawBytes int64 // uncompressed size of all column chunks, from the footer
	schema   *arrow.Schema
}

// findParts expands the inputs into a sorted list of Parquet files: a file is taken as
// is; a directory contributes DIR/parts/*.parquet when DIR/parts exists, else DIR/*.parquet.
func findParts(inputs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("shards: input: %w", err)
		}
		var found []string
		if !st.IsDir() {
			found = []string{in}
		} else {
			dir := in
			if st2, err := os.Stat(filepath.Join(in, "parts")); err == nil && st2.IsDir() {
				dir = filepath.Join(in, "parts")
			}
			found, err = filepath.Glob(filepath.Join(dir, "*.parquet"))
			if err != nil {
				return nil, fmt.Errorf("shards: list %s: %w", dir, err)
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%w in %s", ErrNoParts, dir)
			}
		}
		for _, f := range found {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, fmt.Errorf("shards: input %s: %w", f, err)
			}
			if !seen[abs] {
				seen[abs] = true
				out = append(out, abs)
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoParts
	}
	sort.Strings(out)
	return out, nil
}

// parquetFile is an open Parquet file read through pqarrow.
type parquetFile struct {
	f  *os.File
	pr *file.Reader
	fr *pqarrow.FileReader
}

func openParquet(path string, batchRows int64) (*parquetFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shards: open %s: %w", path, err)
	}
	// Stream column chunks through a 1 MiB buffer rather than reading each whole chunk
	// into a fresh allocation (which, for 16 MiB latent chunks, costs a large clear and
	// copy per row group).
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pr, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("shards: read footer of %s: %w", path, err), f.Close())
	}
	if batchRows <= 0 {
		batchRows = 1024
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("shards: read schema of %s: %w", path, err), pr.Close())
	}
	return &parquetFile{f: f, pr: pr, fr: fr}, nil
}

func (p *parquetFile) Close() error { return p.pr.Close() }

// leaves returns the Parquet leaf column indices of the named top-level fields, which is
// what pqarrow's readers take.
func (p *parquetFile) leaves(names ...string) ([]int, error) {
	var out []int
	var walk func(sf pqarrow.SchemaField)
	walk = func(sf pqarrow.SchemaField) {
		if sf.IsLeaf() {
			out = append(out, sf.ColIndex)
		}
		for _, c := range sf.Children {
			walk(c)
		}
	}
	for _, name := range names {
		found := false
		for _, sf := range p.fr.Manifest.Fields {
			if sf.Field.Name == name {
				walk(sf)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("shards: %s has no column %q", p.f.Name(), name)
		}
	}
	return out, nil
}

// rawBytes sums the uncompressed size of all column chunks.
func (p *parquetFile) rawBytes() int64 {
	md := p.pr.MetaData()
	var n int64
	for i := 0; i < md.NumRowGroups(); i++ {
		n += md.RowGroup(i).TotalByteSize()
	}
	return n
}

// readRecords calls fn for each record batch of the named columns (all when nil), in file
// order. The batch is released after fn returns.
func (p *parquetFile) readRecords(ctx context.Context, cols []int, fn func(arrow.RecordBatch) error) error {
	rr, err := p.fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("shards: read %s: %w", p.f.Name(), err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("shards: read %s: %w", p.f.Name(), err)
	}
	return ctx.Err()
}

// schemaFields renders an Arrow schema's fields in manifest form.
func schemaFields(s *arrow.Schema) []Field {
	out := make([]Field, 0, s.NumFields())
	for _, f := range s.Fields() {
		out = append(out, Field{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable, Metadata: metadataMap(f.Metadata)})
	}
	return out
}

func metadataMap(md arrow.Metadata) map[string]string {
	if md.Len() == 0 {
		return nil
	}
	m := make(map[string]string, md.Len())
	for i, k := range md.Keys() {
		m[k] = md.Values()[i]
	}
	return m
}

// checkKeyColumns verifies the key and sha256 columns exist with usable types.
func checkKeyColumns(path string, s *arrow.Schema) error {
	ki := s.FieldIndices(ColKey)
	if len(ki) != 1 {
		return fmt.Errorf("shards: %s: want one %q column, found %d", path, ColKey, len(ki))
	}
	switch s.Field(ki[0]).Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
	default:
		return fmt.Errorf("shards: %s: column %q has type %s, want utf8", path, ColKey, s.Field(ki[0]).Type)
	}
	si := s.FieldIndices(ColSHA256)
	if len(si) != 1 {
		return fmt.Errorf("shards: %s: want one %q column, found %d", path, ColSHA256, len(si))
	}
	if s.Field(si[0]).Type.ID() != arrow.BINARY {
		return fmt.Errorf("shards: %s: column %q has type %s, want binary (a part from an older immkit? re-run encode)", path, ColSHA256, s.Field(si[0]).Type)
	}
	return nil
}

// artefactsOf reads the artefact list from schema metadata.
func artefactsOf(path string, md arrow.Metadata) ([]Artefact, error) {
	v, ok := md.GetValue(ArtefactsMetadataKey)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var a []Artefact
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, fmt.Errorf("shards: %s: schema metadata %q: %w", path, ArtefactsMetadataKey, err)
	}
	for _, x := range a {
		if x.Name == "" || !isHexHash(x.SHA256) {
			return nil, fmt.Errorf("shards: %s: schema metadata %q: artefact %+v needs a name and a 64-digit lower-case hex sha256", path, ArtefactsMetadataKey, x)
		}
	}
	return a, nil
}

// withoutKey returns md minus one key.
func withoutKey(md arrow.Metadata, key string) arrow.Metadata {
	var ks, vs []string
	for i, k := range md.Keys() {
		if k != key {
			ks = append(ks, k)
			vs = append(vs, md.Values()[i])
		}
	}
	return arrow.NewMetadata(ks, vs)
}

// ErrReaderPanic is wrapped by the error returned when the Parquet reader panicked on a
// damaged file (arrow-go panics on some, e.g. a negative column chunk length; see
// ingest.ErrParquetPanic): the command fails with the file named instead of crashing.
var ErrReaderPanic = errors.New("parquet reader panicked")

// recoverReader turns a panic of the goroutine it is deferred in into *err, naming what
// was being read. Deferred only around Parquet reading, where the panics come from
// arrow-go on hostile bytes, not from our own logic.
func recoverReader(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("shards: reading %s: %w (a damaged Parquet file?): %v", what, ErrReaderPanic, r)
	}
}

// validateArray checks the offsets and child lengths of a decoded column against each
// other, so that a damaged part (whose pages decode to inconsistent buffers) is an error
// here rather than an out-of-range index inside arrow's compute kernels, which run in
// goroutines of their own where no recover reaches.
func validateArray(a arrow.Array) error {
	switch c := a.(type) {
	case *array.Binary:
		return c.ValidateFull()
	case *array.String: // the same offsets-and-bytes layout: check it as binary
		b := array.NewBinaryData(c.Data())
		defer b.Release()
		return b.ValidateFull()
	case *array.FixedSizeList:
		size := int64(c.DataType().(*arrow.FixedSizeListType).Len())
		if need := int64(c.Offset()+c.Len()) * size; int64(c.ListValues().Len()) < need {
			return fmt.Errorf("fixed-size list of %d needs %d child values, has %d", c.Len(), need, c.ListValues().Len())
		}
		return validateArray(c.ListValues())
	case array.ListLike:
		child := int64(c.ListValues().Len())
		for i := 0; i < c.Len(); i++ {
			lo, hi := c.ValueOffsets(i)
			if lo < 0 || hi < lo || hi > child {
				return fmt.Errorf("list offsets [%d, %d) of row %d outside %d child values", lo, hi, i, child)
			}
		}
		return validateArray(c.ListValues())
	case *array.Struct:
		for f := 0; f < c.NumField(); f++ {
			if c.Field(f).Len() < c.Offset()+c.Len() {
				return fmt.Errorf("struct field %d has %d values for %d rows", f, c.Field(f).Len(), c.Len())
			}
			if err := validateArray(c.Field(f)); err != nil {
				return err
			}
		}
	}
	return nil
}
