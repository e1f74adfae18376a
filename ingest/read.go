package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ErrParquetPanic is wrapped by the error ScanParquet returns when the Parquet reader
// panicked on a damaged file.
var ErrParquetPanic = errors.New("parquet reader panicked")

// PartFiles lists the committed part files of an ingest output directory (every worker),
// sorted by name. Temporary files of a running or killed worker are not listed.
func PartFiles(out string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(out, partsDir, "part-*.parquet"))
	sort.Strings(files)
	return files, err
}

// RejectFiles lists the committed rejects files of an ingest output directory.
func RejectFiles(out string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(out, rejectsDir, "rejects-*.parquet"))
	sort.Strings(files)
	return files, err
}

// ScanParquet calls fn for every record batch of a Parquet file, reading only the named
// columns (all when cols is empty) in batches of batchRows rows. The batch is released
// after fn returns. A panic inside the Parquet reader (arrow-go panics on some damaged
// files, e.g. a negative column chunk length: found by FuzzParquetSource) is returned as an
// error wrapping ErrParquetPanic; a panic inside fn is not recovered.
func ScanParquet(path string, cols []string, batchRows int64, fn func(rec arrow.RecordBatch) error) (err error) {
	inFn := false
	defer func() {
		if r := recover(); r != nil {
			if inFn {
				panic(r)
			}
			err = fmt.Errorf("ingest: read %s: %w: %v", path, ErrParquetPanic, r)
		}
	}()
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("ingest: open %s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("ingest: read %s: %w", path, err)
	}
	var leaves []int
	if len(cols) > 0 {
		sc, err := fr.Schema()
		if err != nil {
			return fmt.Errorf("ingest: schema of %s: %w", path, err)
		}
		for _, c := range cols {
			idx := sc.FieldIndices(c)
			if len(idx) == 0 {
				return fmt.Errorf("ingest: %s has no column %q", path, c)
			}
			leaves = append(leaves, leafIndices(&fr.Manifest.Fields[idx[0]])...)
		}
	}
	rr, err := fr.GetRecordReader(context.Background(), leaves, nil)
	if err != nil {
		return fmt.Errorf("ingest: read %s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		inFn = true
		err := fn(rr.RecordBatch())
		inFn = false
		if err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("ingest: read %s: %w", path, err)
	}
	return nil
}

func leafIndices(f *pqarrow.SchemaField) []int {
	if len(f.Children) == 0 {
		return []int{f.ColIndex}
	}
	var out []int
	for i := range f.Children {
		out = append(out, leafIndices(&f.Children[i])...)
	}
	return out
}

// Column returns the column of rec named name, or nil.
func Column(rec arrow.RecordBatch, name string) arrow.Array {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	return rec.Column(idx[0])
}

// MediaBytes returns the bytes field of a struct{bytes,path} column at row i, or nil when
// the row is null.
func MediaBytes(col arrow.Array, i int) []byte {
	s, ok := col.(*array.Struct)
	if !ok || s.IsNull(i) {
		return nil
	}
	return s.Field(0).(*array.Binary).Value(i)
}
