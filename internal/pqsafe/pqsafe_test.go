package pqsafe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/immkit/immkit/internal/pqsafe/pqsafetest"
)

// testSchema covers the column kinds immkit's files hold: strings, binary, a struct of
// them (HF media), list<int32> (tokens), fixed_size_list<float32> (latents), a dictionary
// column, and nullable primitives.
var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "sha256", Type: arrow.BinaryTypes.Binary},
	{Name: "image", Type: arrow.StructOf(
		arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	{Name: "tokens", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
	{Name: "latent", Type: arrow.FixedSizeListOf(6, arrow.PrimitiveTypes.Float32), Nullable: true},
	{Name: "label", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	{Name: "width", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "seconds", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

// testRecord builds rows [lo, hi) of testSchema with nulls and values of varying lengths.
func testRecord(lo, hi int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := lo; i < hi; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("sample-%03d", i))
		b.Field(1).(*array.BinaryBuilder).Append(bytes.Repeat([]byte{byte(i)}, 1+i%5))
		img := b.Field(2).(*array.StructBuilder)
		if i%4 == 3 {
			img.AppendNull()
		} else {
			img.Append(true)
			img.FieldBuilder(0).(*array.BinaryBuilder).Append(bytes.Repeat([]byte{byte(3 * i)}, i%7))
			img.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("img/%d.png", i))
		}
		tok := b.Field(3).(*array.ListBuilder)
		if i%5 == 4 {
			tok.AppendNull()
		} else {
			tok.Append(true)
			for j := 0; j < i%6; j++ {
				tok.ValueBuilder().(*array.Int32Builder).Append(int32(100*i + j))
			}
		}
		lat := b.Field(4).(*array.FixedSizeListBuilder)
		lat.Append(true)
		for j := 0; j < 6; j++ {
			lat.ValueBuilder().(*array.Float32Builder).Append(float32(i) + float32(j)/8)
		}
		lab := b.Field(5).(*array.BinaryDictionaryBuilder)
		if i%6 == 5 {
			lab.AppendNull()
		} else if err := lab.AppendString([]string{"cat", "dog", "bird"}[i%3]); err != nil {
			panic(err)
		}
		if i%3 == 2 {
			b.Field(6).AppendNull()
			b.Field(7).AppendNull()
		} else {
			b.Field(6).(*array.Int32Builder).Append(int32(8 * i))
			b.Field(7).(*array.Float64Builder).Append(float64(i) / 3)
		}
	}
	return b.NewRecordBatch()
}

// writeTestFile writes rows [0, n) of testSchema with arrow-go's writer, one Write per row
// group of groupRows (a sliced fixed_size_list is written wrongly by arrow-go v18.8.0: see
// docs/shards.md).
func writeTestFile(t testing.TB, path string, n int, codec compress.Compression, groupRows int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithMaxRowGroupLength(int64(groupRows)))
	w, err := pqarrow.NewFileWriter(testSchema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < n; lo += groupRows {
		rec := testRecord(lo, min(n, lo+groupRows))
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every column of path through ScanFile and returns the batches
// concatenated, one array per column.
func readAll(path string, batch int64) ([]arrow.Array, error) {
	var chunks [][]arrow.Array
	err := pqsafe.ScanFile(context.Background(), path, nil, pqsafe.Options{BatchRows: batch, Prefix: "test: "}, func(rec arrow.RecordBatch) error {
		if chunks == nil {
			chunks = make([][]arrow.Array, rec.NumCols())
		}
		for i, c := range rec.Columns() {
			c.Retain()
			chunks[i] = append(chunks[i], c)
		}
		return nil
	})
	defer func() {
		for _, cs := range chunks {
			for _, c := range cs {
				c.Release()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	out := make([]arrow.Array, len(chunks))
	for i, cs := range chunks {
		if out[i], err = array.Concatenate(cs, memory.DefaultAllocator); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sameAs compares columns read back with the record written, using arrow's own equality.
func sameAs(rec arrow.RecordBatch, cols []arrow.Array) error {
	if len(cols) != int(rec.NumCols()) {
		return fmt.Errorf("%d columns, want %d", len(cols), rec.NumCols())
	}
	for i, c := range cols {
		if !array.Equal(rec.Column(i), c) {
			return fmt.Errorf("column %q differs", rec.ColumnName(i))
		}
	}
	return nil
}

func TestScanRoundTrip(t *testing.T) {
	rec := testRecord(0, 40)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "t.parquet")
	writeTestFile(t, path, 40, compress.Codecs.Zstd, 8)
	for _, batch := range []int64{1, 7, 8, 1000} {
		cols, err := readAll(path, batch)
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if err := sameAs(rec, cols); err != nil {
			t.Errorf("batch %d: %v", batch, err)
		}
		for _, c := range cols {
			c.Release()
		}
	}
	// A subset of columns, by name.
	f, err := pqsafe.Open(path, pqsafe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	leaves, err := f.Leaves("image", "latent")
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) != 3 {
		t.Errorf("leaves of image and latent: %v, want 3 (bytes, path, latent)", leaves)
	}
	rows := 0
	if err := f.Scan(context.Background(), leaves, func(r arrow.RecordBatch) error {
		if r.NumCols() != 2 || r.ColumnName(0) != "image" || r.ColumnName(1) != "latent" {
			return fmt.Errorf("columns %v", r.Schema())
		}
		rows += int(r.NumRows())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rows != 40 {
		t.Errorf("%d rows, want 40", rows)
	}
	if _, err := f.Leaves("nope"); err == nil || !strings.Contains(err.Error(), `no column "nope"`) {
		t.Errorf("Leaves(nope): %v", err)
	}
	// An error of the callback comes back as it is.
	stop := errors.New("stop")
	if err := f.Scan(context.Background(), nil, func(arrow.RecordBatch) error { return stop }); err != stop {
		t.Errorf("callback error: got %v", err)
	}
}

// TestScanDamaged damages real files byte by byte and by cutting their tail: every read
// returns the original data or an error naming the file, never a panic or a hang.
func TestScanDamaged(t *testing.T) {
	rec := testRecord(0, 40)
	defer rec.Release()
	stride := pqsafetest.Stride(13)
	for _, codec := range []compress.Compression{compress.Codecs.Zstd, compress.Codecs.Uncompressed} {
		t.Run(codec.String(), func(t *testing.T) {
			dir := t.TempDir()
			orig := filepath.Join(dir, "orig.parquet")
			writeTestFile(t, orig, 40, codec, 8)
			b, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "damaged.parquet")
			c := pqsafetest.Damage(t, path, b, stride, 10*time.Second, func() error {
				cols, err := readAll(path, 7)
				if err != nil {
					return err
				}
				defer func() {
					for _, c := range cols {
						c.Release()
					}
				}()
				if err := sameAs(rec, cols); err != nil {
					return fmt.Errorf("%w: %v", pqsafetest.ErrWrongData, err)
				}
				return nil
			}, func(t testing.TB, what string, err error) {
				if !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "test: ") {
					t.Errorf("%s: error does not start with the prefix and name the file: %v", what, err)
				}
			})
			t.Logf("%s, %d-byte file: %s", codec, len(b), c)
			// A damaged byte in a zstd page breaks the frame rather than the values; in an
			// uncompressed page it changes the values, which Parquet cannot notice
			// (no page checksums in these files).
			if codec == compress.Codecs.Zstd && c.Wrong > c.WrongFooter {
				t.Errorf("%d damaged zstd column chunks read without an error but with other values, e.g. %q", c.Wrong-c.WrongFooter, c.WrongCases)
			}
			if c.Errors == 0 {
				t.Error("no damaged copy gave an error")
			}
		})
	}
}

// TestValidateArray builds arrays with inconsistent buffers by hand. Each bad one must be
// refused: by ValidateArray, or already by arrow when the array is made (which, inside the
// reader, is a panic that File.Scan recovers).
func TestValidateArray(t *testing.T) {
	i32 := func(v ...int32) *memory.Buffer { return memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(v)) }
	vals := array.NewData(arrow.PrimitiveTypes.Int32, 3, []*memory.Buffer{nil, i32(1, 2, 3)}, nil, 0, 0)
	words := array.NewData(arrow.BinaryTypes.String, 2, []*memory.Buffer{nil, i32(0, 1, 3), memory.NewBufferBytes([]byte("abc"))}, nil, 0, 0)
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	bin := func(typ arrow.DataType, offsets *memory.Buffer, data string) func() arrow.ArrayData {
		return func() arrow.ArrayData {
			return array.NewData(typ, 2, []*memory.Buffer{nil, offsets, memory.NewBufferBytes([]byte(data))}, nil, 0, 0)
		}
	}
	list := func(offsets *memory.Buffer) func() arrow.ArrayData {
		return func() arrow.ArrayData {
			return array.NewData(arrow.ListOf(arrow.PrimitiveTypes.Int32), 2, []*memory.Buffer{nil, offsets}, []arrow.ArrayData{vals}, 0, 0)
		}
	}
	dict := func(idx ...int32) func() arrow.ArrayData {
		return func() arrow.ArrayData {
			return array.NewDataWithDictionary(dictType, len(idx), []*memory.Buffer{nil, i32(idx...)}, 0, 0, words)
		}
	}
	for _, tc := range []struct {
		name string
		data func() arrow.ArrayData
		ok   bool
	}{
		{"binary", bin(arrow.BinaryTypes.Binary, i32(0, 1, 3), "abc"), true},
		{"binary offset past the data", bin(arrow.BinaryTypes.Binary, i32(0, 1, 9), "abc"), false},
		{"binary offsets decreasing", bin(arrow.BinaryTypes.Binary, i32(0, 2, 1), "abc"), false},
		{"binary negative offset", bin(arrow.BinaryTypes.Binary, i32(-1, 1, 3), "abc"), false},
		{"binary offsets buffer short", bin(arrow.BinaryTypes.Binary, i32(0, 1), "abc"), false},
		{"string", bin(arrow.BinaryTypes.String, i32(0, 1, 3), "abc"), true},
		{"string with invalid utf-8 (allowed)", bin(arrow.BinaryTypes.String, i32(0, 1, 3), "a\xff\xfe"), true},
		{"string offsets decreasing", bin(arrow.BinaryTypes.String, i32(0, 3, 1), "abc"), false},
		{"list", list(i32(0, 1, 3)), true},
		{"list offset past the values", list(i32(0, 1, 4)), false},
		{"list offsets decreasing", list(i32(0, 2, 1)), false},
		{"list negative offset", list(i32(-2, 1, 3)), false},
		{"fixed-size list", func() arrow.ArrayData {
			return array.NewData(arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Int32), 1, []*memory.Buffer{nil}, []arrow.ArrayData{vals}, 0, 0)
		}, true},
		{"fixed-size list short of values", func() arrow.ArrayData {
			return array.NewData(arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int32), 2, []*memory.Buffer{nil}, []arrow.ArrayData{vals}, 0, 0)
		}, false},
		{"dictionary", dict(0, 1), true},
		{"dictionary index out of range", dict(0, 2), false},
		{"dictionary negative index", dict(-1, 0), false},
		{"null bitmap short", func() arrow.ArrayData {
			return array.NewData(arrow.PrimitiveTypes.Int32, 2, []*memory.Buffer{memory.NewBufferBytes(nil), i32(1, 2)}, nil, 1, 0)
		}, false},
		{"values short", func() arrow.ArrayData {
			return array.NewData(arrow.PrimitiveTypes.Int32, 4, []*memory.Buffer{nil, i32(1, 2)}, nil, 0, 0)
		}, false},
	} {
		a, made := makeArray(tc.data())
		var err error
		if made {
			err = pqsafe.ValidateArray(a)
			a.Release()
		}
		switch {
		case tc.ok && (!made || err != nil):
			t.Errorf("%s: a valid array was refused (made %v): %v", tc.name, made, err)
		case !tc.ok && made && err == nil:
			t.Errorf("%s: ValidateArray accepted it", tc.name)
		}
	}
}

// makeArray makes an array of data, reporting false where arrow refuses (panics).
func makeArray(data arrow.ArrayData) (a arrow.Array, made bool) {
	defer func() {
		if recover() != nil {
			made = false
		}
	}()
	return array.MakeFromData(data), true
}
