package pqsafe_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/immkit/immkit/internal/pqsafe"
)

// FuzzScanFile reads arbitrary bytes as a Parquet file through ScanFile, every column.
// Seeds: real files of testSchema (zstd, snappy, uncompressed). Invariants: no panic, no
// hang; an error names the file; without an error the batches hold exactly the rows the
// footer declares, every value of every column can be read, and every batch passed
// validation.
func FuzzScanFile(f *testing.F) {
	dir := f.TempDir()
	for i, codec := range []compress.Compression{compress.Codecs.Zstd, compress.Codecs.Snappy, compress.Codecs.Uncompressed} {
		p := filepath.Join(dir, "seed.parquet")
		writeTestFile(f, p, 12+i*5, codec, 5)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.parquet")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var rows int64
		err := pqsafe.ScanFile(context.Background(), path, nil, pqsafe.Options{BatchRows: 4}, func(rec arrow.RecordBatch) error {
			if err := pqsafe.ValidateRecord(rec); err != nil {
				t.Errorf("Scan passed a batch that does not validate: %v", err)
			}
			for _, c := range rec.Columns() {
				for i := 0; i < c.Len(); i++ {
					_ = c.ValueStr(i) // reads every value: must not panic
				}
			}
			rows += rec.NumRows()
			return nil
		})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		pf, err := pqsafe.Open(path, pqsafe.Options{})
		if err != nil {
			t.Fatalf("ScanFile read the file, Open fails: %v", err)
		}
		defer pf.Close()
		if rows != pf.NumRows() {
			t.Errorf("read %d rows, the footer declares %d", rows, pf.NumRows())
		}
	})
}
