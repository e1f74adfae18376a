package mmdata_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// readTable reads a whole Parquet file; its schema carries the file's schema metadata
// (which pqarrow's ReadTable leaves out).
func readTable(t testing.TB, path string) arrow.Table {
	t.Helper()
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	md := sc.Metadata()
	cols := make([]arrow.Column, tbl.NumCols())
	for i := range cols {
		cols[i] = *tbl.Column(i)
	}
	out := array.NewTable(arrow.NewSchema(tbl.Schema().Fields(), &md), cols, tbl.NumRows())
	tbl.Release()
	return out
}

// readColumn maps key -> value of one column of a Parquet file: []float32 for lists and
// fixed-size lists of float32, []int32 for lists of int32, int32, or nil for a null.
func readColumn(t testing.TB, path, name string) map[string]any {
	t.Helper()
	tbl := readTable(t, path)
	defer tbl.Release()
	out := map[string]any{}
	ki := tbl.Schema().FieldIndices("key")
	ci := tbl.Schema().FieldIndices(name)
	if len(ki) != 1 || len(ci) != 1 {
		t.Fatalf("%s: no key or %s column", path, name)
	}
	kc, cc := tbl.Column(ki[0]).Data().Chunks(), tbl.Column(ci[0]).Data().Chunks()
	for j := range kc {
		keys := kc[j].(*array.String)
		col := cc[j]
		for i := 0; i < keys.Len(); i++ {
			k := keys.Value(i)
			if col.IsNull(i) {
				out[k] = nil
				continue
			}
			switch a := col.(type) {
			case array.ListLike:
				lo, hi := a.ValueOffsets(i)
				switch v := a.ListValues().(type) {
				case *array.Float32:
					out[k] = append([]float32(nil), v.Float32Values()[lo:hi]...)
				case *array.Int32:
					out[k] = append([]int32(nil), v.Int32Values()[lo:hi]...)
				default:
					t.Fatalf("%s: %s holds %s", path, name, v.DataType())
				}
			case *array.Int32:
				out[k] = a.Value(i)
			default:
				t.Fatalf("%s: %s is %s", path, name, col.DataType())
			}
		}
	}
	return out
}
