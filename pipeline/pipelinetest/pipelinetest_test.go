package pipelinetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/immkit/immkit/pipeline"
	"github.com/immkit/immkit/pipeline/pipelinetest"
)

var captionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

const captionRows = `[
	{"key": "cat/001", "text": "a cat on a mat", "score": 0.5},
	{"key": "cat/002", "text": "two cats", "score": 1.25},
	{"key": "dog/001", "text": null, "score": null},
	{"key": "dog/002", "text": "a dog\tbarks \"woof\"", "score": -3}
]`

var statsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "upper", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "words", Type: arrow.PrimitiveTypes.Int32},
	{Name: "lengths", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
	{Name: "score2", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
}, nil)

// captionStats is a small stage over record batches: upper-cased text, word count, word
// lengths, squared score. Batches with a key "bad/..." are rejected.
func captionStats(_ context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	keys := rec.Column(0).(*array.String)
	texts := rec.Column(1).(*array.String)
	scores := rec.Column(2).(*array.Float64)
	b := array.NewRecordBuilder(memory.DefaultAllocator, statsSchema)
	defer b.Release()
	lens := b.Field(3).(*array.ListBuilder)
	lensV := lens.ValueBuilder().(*array.Int32Builder)
	for i := 0; i < int(rec.NumRows()); i++ {
		if strings.HasPrefix(keys.Value(i), "bad/") {
			return nil, pipeline.Rejectf("bad_key", "key %s", keys.Value(i))
		}
		b.Field(0).(*array.StringBuilder).Append(keys.Value(i))
		if texts.IsNull(i) {
			b.Field(1).AppendNull()
			b.Field(2).(*array.Int32Builder).Append(0)
			lens.AppendNull()
		} else {
			words := strings.Fields(texts.Value(i))
			b.Field(1).(*array.StringBuilder).Append(strings.ToUpper(texts.Value(i)))
			b.Field(2).(*array.Int32Builder).Append(int32(len(words)))
			lens.Append(true)
			for _, w := range words {
				lensV.Append(int32(len(w)))
			}
		}
		if scores.IsNull(i) {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float32Builder).Append(float32(scores.Value(i) * scores.Value(i)))
		}
	}
	return b.NewRecordBatch(), nil
}

func runStats(t *testing.T, recs ...arrow.RecordBatch) *pipelinetest.Result[arrow.RecordBatch] {
	t.Helper()
	res, err := pipelinetest.RunMap(context.Background(), recs, captionStats)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Values {
		t.Cleanup(r.Release)
	}
	return res
}

func TestGoldenStage(t *testing.T) {
	in := pipelinetest.Record(t, captionSchema, captionRows)
	res := runStats(t, in)
	if len(res.Values) != 1 || res.Summary.Accepted != 1 || len(res.Rejects) != 0 {
		t.Fatalf("result %+v", res)
	}
	pipelinetest.Golden(t, "testdata/caption_stats.jsonl", res.Values...)
}

// fakeTB records failures instead of failing, to test what a failing comparison says.
type fakeTB struct {
	testing.TB
	msgs []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Errorf(format string, a ...any) { f.msgs = append(f.msgs, fmt.Sprintf(format, a...)) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.msgs = append(f.msgs, fmt.Sprintf(format, a...)) }
func (f *fakeTB) Logf(string, ...any)            {}

// TestGoldenReportsRowAndColumn changes one value of a stage's output and checks that the
// golden comparison fails naming that row and column.
func TestGoldenReportsRowAndColumn(t *testing.T) {
	if pipelinetest.Update() {
		t.Skip("-update would write the altered output")
	}
	rows := captionRows
	cases := []struct {
		name   string
		change func(string) string
		want   string
	}{
		{"text", func(s string) string { return strings.Replace(s, "two cats", "two bats", 1) },
			`row 1, column "upper": got "TWO BATS", want "TWO CATS"`},
		{"score", func(s string) string { return strings.Replace(s, `"score": -3`, `"score": -2`, 1) },
			`row 3, column "score2": got 4, want 9`},
		{"null", func(s string) string { return strings.Replace(s, `"text": "a cat on a mat"`, `"text": null`, 1) },
			`row 0, column "upper": got null, want "A CAT ON A MAT"`},
		{"list", func(s string) string { return strings.Replace(s, "a cat on a mat", "a cat in a hat", 1) },
			`row 0, column "upper": got "A CAT IN A HAT"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := pipelinetest.Record(t, captionSchema, c.change(rows))
			res := runStats(t, in)
			fake := &fakeTB{TB: t}
			pipelinetest.Golden(fake, "testdata/caption_stats.jsonl", res.Values...)
			if len(fake.msgs) != 1 || !strings.Contains(fake.msgs[0], c.want) {
				t.Fatalf("messages %q, want one containing %q", fake.msgs, c.want)
			}
			if !strings.Contains(fake.msgs[0], "testdata/caption_stats.jsonl") {
				t.Errorf("message does not name the golden file: %q", fake.msgs[0])
			}
		})
	}
	// unchanged input: no message
	fake := &fakeTB{TB: t}
	pipelinetest.Golden(fake, "testdata/caption_stats.jsonl", runStats(t, pipelinetest.Record(t, captionSchema, rows)).Values...)
	if len(fake.msgs) != 0 {
		t.Fatalf("unchanged output reported %q", fake.msgs)
	}
}

func TestEqualDiffs(t *testing.T) {
	want := pipelinetest.Record(t, captionSchema, captionRows)
	cases := []struct {
		name string
		got  arrow.RecordBatch
		msg  string
	}{
		{"row count", pipelinetest.Record(t, captionSchema, `[{"key":"cat/001","text":"a cat on a mat","score":0.5}]`),
			`got 1 rows, want 4; first missing row 1: {"key":"cat/002"`},
		{"column key", pipelinetest.Record(t, captionSchema, strings.Replace(captionRows, "dog/002", "dog/003", 1)),
			`row 3, column "key": got "dog/003", want "dog/002"`},
		{"schema type", pipelinetest.Record(t, arrow.NewSchema([]arrow.Field{
			{Name: "key", Type: arrow.BinaryTypes.String},
			{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "score", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		}, nil), captionRows), `schema: column "score": got type float32, want float64`},
		{"schema missing", pipelinetest.Record(t, arrow.NewSchema(captionSchema.Fields()[:2], nil), captionRows),
			`schema: golden column "score" (float64) is missing from the output`},
	}
	for _, c := range cases {
		fake := &fakeTB{TB: t}
		pipelinetest.Equal(fake, []arrow.RecordBatch{c.got}, []arrow.RecordBatch{want})
		if len(fake.msgs) != 1 || !strings.Contains(fake.msgs[0], c.msg) {
			t.Errorf("%s: messages %q, want %q", c.name, fake.msgs, c.msg)
		}
	}
}

// TestJSONLMatchesInput checks the golden encoding against an independent reference: the
// JSON rows a record was built from decode to the same values as its golden lines.
func TestJSONLMatchesInput(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int16)},
		{Name: "fl", Type: arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Float32)},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "z", Type: arrow.BinaryTypes.String},
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true})},
	}, nil)
	rows := `[
		{"s": "é\u0000\"x", "i": -9007199254740993, "f": 1e-300, "b": true, "l": [1, -2], "fl": [0.5, 1.5], "st": {"z": "q", "a": null}},
		{"s": null, "i": 0, "f": 123456.789, "b": false, "l": [], "fl": [-1, 3e10], "st": {"z": "", "a": 7}}
	]`
	rec := pipelinetest.Record(t, schema, rows)
	// slices exercise array offsets
	for _, r := range []arrow.RecordBatch{rec, rec.NewSlice(1, 2)} {
		defer r.Release()
		out, err := pipelinetest.JSONL(r)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var want []map[string]any
		dec := json.NewDecoder(strings.NewReader(rows))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		want = want[len(want)-int(r.NumRows()):]
		if len(lines) != 1+len(want) {
			t.Fatalf("%d lines", len(lines))
		}
		for i, line := range lines[1:] {
			var got map[string]any
			d := json.NewDecoder(strings.NewReader(line))
			d.UseNumber()
			if err := d.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(numbersAsFloat(got)) != fmt.Sprint(numbersAsFloat(want[i])) {
				t.Errorf("row %d:\ngot  %v\nwant %v", i, got, want[i])
			}
		}
	}
}

// numbersAsFloat turns json.Numbers into float64, except integers that need all 64 bits.
func numbersAsFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = numbersAsFloat(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = numbersAsFloat(e)
		}
		return s
	}
	return v
}

func TestJSONLBinaryAndFloats(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "small", Type: arrow.BinaryTypes.Binary},
		{Name: "big", Type: arrow.BinaryTypes.Binary},
		{Name: "sha", Type: &arrow.FixedSizeBinaryType{ByteWidth: 4}},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	bb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer bb.Release()
	big := []byte(strings.Repeat("x", 100))
	bb.Field(0).(*array.BinaryBuilder).Append([]byte{0, 1, 0xff})
	bb.Field(1).(*array.BinaryBuilder).Append(big)
	bb.Field(2).(*array.FixedSizeBinaryBuilder).Append([]byte{0xde, 0xad, 0xbe, 0xef})
	bb.Field(3).(*array.Float32Builder).Append(float32(0.1))
	rec := bb.NewRecordBatch()
	defer rec.Release()
	out, err := pipelinetest.JSONL(rec)
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of 100 'x' bytes, from `printf 'x%.0s' $(seq 100) | sha256sum`
	want := `{"small":"0001ff","big":"<100 bytes sha256 ` + sha256Of100x + `>","sha":"deadbeef","f":0.1}`
	if got := strings.Split(strings.TrimSpace(string(out)), "\n")[1]; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParquetRoundTrip(t *testing.T) {
	a := pipelinetest.Record(t, captionSchema, captionRows)
	b := pipelinetest.Rows(t, captionSchema,
		map[string]any{"key": "x/1", "text": "from Go values", "score": 2.5},
		map[string]any{"key": "x/2"},
	)
	path := pipelinetest.WriteParquet(t, "sub/caps.parquet", a, b)
	tbl := pipelinetest.ReadParquet(t, path)
	if tbl.NumRows() != 6 {
		t.Fatalf("%d rows", tbl.NumRows())
	}
	pipelinetest.Equal(t, pipelinetest.TableRecords(t, tbl), []arrow.RecordBatch{a, b})

	// every column chunk is zstd-compressed, one row group per batch
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumRowGroups() != 2 {
		t.Errorf("%d row groups", f.NumRowGroups())
	}
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		md := f.MetaData().RowGroup(rg)
		for c := 0; c < md.NumColumns(); c++ {
			cc, err := md.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d column %d: compression %v", rg, c, cc.Compression())
			}
		}
	}

	fix := pipelinetest.ParquetFile(t, captionSchema, captionRows)
	pipelinetest.Equal(t, pipelinetest.TableRecords(t, pipelinetest.ReadParquet(t, fix)), []arrow.RecordBatch{a})
}

func TestRunRejects(t *testing.T) {
	good := pipelinetest.Record(t, captionSchema, captionRows)
	bad := pipelinetest.Record(t, captionSchema, `[{"key": "bad/1", "text": "x", "score": 1}]`)
	res := runStats(t, good, bad, good)
	if len(res.Items) != 2 || res.Items[0].Seq != 0 || res.Items[1].Seq != 2 {
		t.Fatalf("items %+v", res.Items)
	}
	if len(res.Rejects) != 1 {
		t.Fatalf("rejects %v", res.Rejects)
	}
	r := res.Rejects[0]
	if r.Stage != "stage" || r.Reason != "bad_key" || r.Source != "input[1]" || r.Detail != "key bad/1" {
		t.Errorf("reject %+v", r)
	}
	s := res.Summary
	if s.Inputs != 3 || s.Accepted != 2 || s.Rejected != 1 || !s.Balanced {
		t.Errorf("summary %+v", s)
	}

	// a whole pipeline: two stages, the second fails fatally on its second item
	boom := errors.New("boom")
	_, err := pipelinetest.Run(context.Background(), []int{1, 2, 3}, func(p *pipeline.Pipeline, in <-chan pipeline.Item[int]) <-chan pipeline.Item[int] {
		double := pipeline.Map(p, "double", in, func(_ context.Context, v int) (int, error) { return 2 * v, nil }, pipeline.Ordered())
		return pipeline.Map(p, "check", double, func(_ context.Context, v int) (int, error) {
			if v == 4 {
				return 0, pipeline.Fatal(boom)
			}
			return v, nil
		})
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

const sha256Of100x = "09ecb6ebc8bcefc733f6f2ec44f791abeed6a99edf0cc31519637898aebd52d8"

func TestDiffJSONLPaths(t *testing.T) {
	schema := `{"schema":[{"name":"k","type":"utf8","nullable":false},{"name":"v","type":"list<item: float32, nullable>","nullable":false},{"name":"s","type":"struct<a: int32, b: utf8>","nullable":false}]}`
	want := schema + "\n" + `{"k":"a","v":[1,2,3],"s":{"a":1,"b":"x"}}` + "\n" + `{"k":"b","v":[],"s":{"a":2,"b":"y"}}` + "\n"
	row := func(r0 string) []byte {
		return []byte(schema + "\n" + r0 + "\n" + `{"k":"b","v":[],"s":{"a":2,"b":"y"}}` + "\n")
	}
	cases := []struct {
		got  []byte
		tol  float64
		want string // "" = equal
	}{
		{row(`{"k":"a","v":[1,2,3],"s":{"a":1,"b":"x"}}`), 0, ""},
		{row(`{"k": "a", "v": [1, 2, 3], "s": {"a": 1, "b": "x"}}`), 0, ""}, // spacing does not matter
		{row(`{"k":"a","v":[1,2,4],"s":{"a":1,"b":"x"}}`), 0, `row 0, column "v"[2]: got 4, want 3`},
		{row(`{"k":"a","v":[1,2],"s":{"a":1,"b":"x"}}`), 0, `row 0, column "v" (length): got 2, want 3`},
		{row(`{"k":"a","v":[1,2,3],"s":{"a":1,"b":"z"}}`), 0, `row 0, column "s".b: got "z", want "x"`},
		{row(`{"k":"a","v":[1,2,3.0000001],"s":{"a":1,"b":"x"}}`), 0, `row 0, column "v"[2]: got 3.0000001, want 3`},
		{row(`{"k":"a","v":[1,2,3.0000001],"s":{"a":1,"b":"x"}}`), 1e-6, ""},
		{row(`{"k":"a","v":[1,2,3.001],"s":{"a":1,"b":"x"}}`), 1e-6, `row 0, column "v"[2]: got 3.001, want 3`},
		{row(`{"k":"a","v":null,"s":{"a":1,"b":"x"}}`), 0, `row 0, column "v": got null, want [1,2,3]`},
		{[]byte(schema + "\n" + `{"k":"a","v":[1,2,3],"s":{"a":1,"b":"x"}}` + "\n"), 0, `got 1 rows, want 2; first missing row 1: {"k":"b"`},
	}
	for i, c := range cases {
		err := pipelinetest.DiffJSONLApprox(c.got, []byte(want), c.tol)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("case %d: %v", i, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("case %d: got %v, want %q", i, err, c.want)
		}
	}
}

func TestAllocatorReportsLeaks(t *testing.T) {
	for _, leak := range []bool{false, true} {
		fake := &fakeTB{TB: t}
		var cleanups []func()
		ft := &cleanupTB{fakeTB: fake, cleanups: &cleanups}
		mem := pipelinetest.Allocator(ft)
		b := array.NewInt64Builder(mem)
		b.AppendValues([]int64{1, 2, 3}, nil)
		arr := b.NewArray()
		b.Release()
		if !leak {
			arr.Release()
		}
		for _, f := range cleanups {
			f()
		}
		if got := len(fake.msgs) > 0; got != leak {
			t.Errorf("leak=%v: messages %q", leak, fake.msgs)
		}
	}
}

// cleanupTB collects Cleanup functions so that the test can run them itself.
type cleanupTB struct {
	*fakeTB
	cleanups *[]func()
}

func (c *cleanupTB) Cleanup(f func()) { *c.cleanups = append(*c.cleanups, f) }
