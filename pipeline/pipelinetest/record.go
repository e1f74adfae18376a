package pipelinetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// NewRecord builds a record batch of the given schema from a JSON array of row objects
// (array.RecordFromJSON conventions: binary as base64, null for nulls, nested values as
// JSON). The caller releases it.
func NewRecord(schema *arrow.Schema, jsonRows string) (arrow.RecordBatch, error) {
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(jsonRows))
	if err != nil {
		return nil, fmt.Errorf("pipelinetest: record from JSON: %w", err)
	}
	return rec, nil
}

// Record is NewRecord for a test: it fails t on error and releases the batch when the
// test ends.
func Record(t testing.TB, schema *arrow.Schema, jsonRows string) arrow.RecordBatch {
	t.Helper()
	rec, err := NewRecord(schema, jsonRows)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// Rows builds a record batch from Go values, one map per row (column name to value; a
// missing column is null). Values go through encoding/json, so use what it produces:
// strings, numbers, bools, []byte (as base64, the form binary columns expect), slices and
// maps for nested types. It fails t on error and releases the batch when the test ends.
func Rows(t testing.TB, schema *arrow.Schema, rows ...map[string]any) arrow.RecordBatch {
	t.Helper()
	if rows == nil {
		rows = []map[string]any{}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatalf("pipelinetest: rows to JSON: %v", err)
	}
	return Record(t, schema, string(b))
}

// WriterProperties are the Parquet properties of fixture files: zstd, statistics on.
func WriterProperties() *parquet.WriterProperties {
	return parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
}

// WriteParquetFile writes the record batches (all of one schema) as one Parquet file with
// zstd compression and the Arrow schema stored, one row group per batch.
func WriteParquetFile(path string, recs ...arrow.RecordBatch) error {
	if len(recs) == 0 {
		return fmt.Errorf("pipelinetest: write %s: no record batches", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("pipelinetest: %w", err)
	}
	w, err := pqarrow.NewFileWriter(recs[0].Schema(), f, WriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return errors.Join(fmt.Errorf("pipelinetest: write %s: %w", path, err), f.Close())
	}
	// from here on w owns f: w.Close closes it
	for _, rec := range recs {
		if !rec.Schema().Equal(recs[0].Schema()) {
			err = fmt.Errorf("pipelinetest: write %s: batches differ in schema:\n%s\nvs\n%s", path, recs[0].Schema(), rec.Schema())
		} else if werr := w.Write(rec); werr != nil {
			err = fmt.Errorf("pipelinetest: write %s: %w", path, werr)
		}
		if err != nil {
			return errors.Join(err, w.Close())
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("pipelinetest: write %s: %w", path, err)
	}
	return nil
}

// WriteParquet writes recs to name (a relative name lands in t.TempDir()) and returns the
// file's path; it fails t on error.
func WriteParquet(t testing.TB, name string, recs ...arrow.RecordBatch) string {
	t.Helper()
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(t.TempDir(), name)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteParquetFile(path, recs...); err != nil {
		t.Fatal(err)
	}
	return path
}

// ParquetFile writes a Parquet fixture of the given schema and JSON rows in t.TempDir()
// and returns its path.
func ParquetFile(t testing.TB, schema *arrow.Schema, jsonRows string) string {
	t.Helper()
	return WriteParquet(t, "fixture.parquet", Record(t, schema, jsonRows))
}

// ReadParquetFile reads a whole Parquet file into a table; the caller releases it.
func ReadParquetFile(path string) (arrow.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pipelinetest: %w", err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(memory.DefaultAllocator),
		pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("pipelinetest: read %s: %w", path, err)
	}
	return tbl, nil
}

// ReadParquet reads a Parquet file for a test, failing t on error; the table is released
// when the test ends.
func ReadParquet(t testing.TB, path string) arrow.Table {
	t.Helper()
	tbl, err := ReadParquetFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl
}

// TableRecords returns the table's rows as record batches (one per chunk run), released when
// the test ends.
func TableRecords(t testing.TB, tbl arrow.Table) []arrow.RecordBatch {
	t.Helper()
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	var recs []arrow.RecordBatch
	for tr.Next() {
		rec := tr.RecordBatch()
		rec.Retain()
		t.Cleanup(rec.Release)
		recs = append(recs, rec)
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Allocator returns an Arrow allocator that tracks every allocation and, when the test
// ends, fails it (Errorf) for each one that was not released, naming where it was made.
// Hand it to the stage under test to check that the stage releases what it builds.
func Allocator(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}
