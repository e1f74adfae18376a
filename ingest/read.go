package ingest

import (
	"context"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/immkit/immkit/internal/pqsafe"
)

// ErrParquetPanic is wrapped by the error ScanParquet returns when the Parquet reader
// panicked on a damaged file (it is pqsafe.ErrPanic).
var ErrParquetPanic = pqsafe.ErrPanic

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
// after fn returns. It reads through internal/pqsafe: a panic of the Parquet reader
// (arrow-go panics on some damaged files, e.g. a negative column chunk length: found by
// FuzzParquetSource) is an error wrapping ErrParquetPanic, column chunks are checked
// against the file size before arrow-go's own goroutines read them, and every batch is
// validated and the row count checked against the footer (errors wrap pqsafe.ErrDamaged).
// A panic inside fn is not recovered.
func ScanParquet(path string, cols []string, batchRows int64, fn func(rec arrow.RecordBatch) error) error {
	return pqsafe.ScanFile(context.Background(), path, cols, pqsafe.Options{BatchRows: batchRows, Prefix: "ingest: "}, fn)
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
