package pipelinetest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

var update *bool

func init() {
	if f := flag.Lookup("update"); f == nil {
		update = flag.Bool("update", false, "rewrite golden files under testdata/ with the current output")
	}
}

// Update reports whether the test binary runs with -update (golden files are rewritten).
func Update() bool {
	if update != nil {
		return *update
	}
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// maxInlineBinary is the longest binary value written out (as hex) in a golden file;
// longer values are written as their length and SHA-256, which keeps golden files small
// and readable while still catching any change.
const maxInlineBinary = 64

// schemaLine is the first line of a golden file.
type schemaLine struct {
	Schema []fieldDesc `json:"schema"`
}

type fieldDesc struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Nullable bool              `json:"nullable"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func describe(s *arrow.Schema) schemaLine {
	var sl schemaLine
	for _, f := range s.Fields() {
		d := fieldDesc{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable}
		for i, k := range f.Metadata.Keys() {
			if strings.HasPrefix(k, "PARQUET:") { // added by the Parquet reader (field_id)
				continue
			}
			if d.Metadata == nil {
				d.Metadata = map[string]string{}
			}
			d.Metadata[k] = f.Metadata.Values()[i]
		}
		sl.Schema = append(sl.Schema, d)
	}
	return sl
}

// WriteJSONL writes record batches (all of one schema) in the golden format: a first line
// {"schema": [{"name", "type", "nullable", "metadata"}, ...]} (field metadata without the
// "PARQUET:" keys that the Parquet reader adds), then one JSON object per row
// with the columns in schema order. Values: numbers as JSON numbers (NaN and infinities as
// the strings "NaN", "+Inf", "-Inf"), strings as strings, binary as a hex string up to 64
// bytes and as "<N bytes sha256 HEX>" beyond, lists as arrays, structs as objects with
// fields in order, null as null.
func WriteJSONL(w io.Writer, recs ...arrow.RecordBatch) error {
	if len(recs) == 0 {
		return errors.New("pipelinetest: no record batches")
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(describe(recs[0].Schema())); err != nil {
		return err
	}
	for _, rec := range recs {
		if !rec.Schema().Equal(recs[0].Schema()) {
			return fmt.Errorf("pipelinetest: record batches differ in schema:\n%s\nvs\n%s", recs[0].Schema(), rec.Schema())
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			bw.WriteByte('{')
			for c, f := range rec.Schema().Fields() {
				if c > 0 {
					bw.WriteByte(',')
				}
				bw.Write(jsonString(f.Name))
				bw.WriteByte(':')
				var buf bytes.Buffer
				if err := encodeValue(&buf, rec.Column(c), r); err != nil {
					return fmt.Errorf("pipelinetest: row %d column %q: %w", r, f.Name, err)
				}
				bw.Write(buf.Bytes())
			}
			bw.WriteString("}\n")
		}
	}
	return bw.Flush()
}

// JSONL returns the golden-format text of recs (see WriteJSONL).
func JSONL(recs ...arrow.RecordBatch) ([]byte, error) {
	var buf bytes.Buffer
	err := WriteJSONL(&buf, recs...)
	return buf.Bytes(), err
}

func encodeFloat(buf *bytes.Buffer, v float64, bits int) {
	switch {
	case math.IsNaN(v):
		buf.WriteString(`"NaN"`)
	case math.IsInf(v, 1):
		buf.WriteString(`"+Inf"`)
	case math.IsInf(v, -1):
		buf.WriteString(`"-Inf"`)
	default:
		buf.WriteString(strconv.FormatFloat(v, 'g', -1, bits))
	}
}

func encodeBinary(buf *bytes.Buffer, b []byte) {
	if len(b) <= maxInlineBinary {
		buf.WriteString(`"` + hex.EncodeToString(b) + `"`)
		return
	}
	sum := sha256.Sum256(b)
	fmt.Fprintf(buf, `"<%d bytes sha256 %s>"`, len(b), hex.EncodeToString(sum[:]))
}

// jsonString is s as a JSON string, without HTML escaping.
func jsonString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // cannot fail for a string
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func encodeValue(buf *bytes.Buffer, arr arrow.Array, i int) error {
	if arr.IsNull(i) {
		buf.WriteString("null")
		return nil
	}
	switch a := arr.(type) {
	case *array.Float16:
		encodeFloat(buf, float64(a.Value(i).Float32()), 32)
	case *array.Float32:
		encodeFloat(buf, float64(a.Value(i)), 32)
	case *array.Float64:
		encodeFloat(buf, a.Value(i), 64)
	case *array.String:
		buf.Write(jsonString(a.Value(i)))
	case *array.LargeString:
		buf.Write(jsonString(a.Value(i)))
	case *array.StringView:
		buf.Write(jsonString(a.Value(i)))
	case *array.Binary:
		encodeBinary(buf, a.Value(i))
	case *array.LargeBinary:
		encodeBinary(buf, a.Value(i))
	case *array.BinaryView:
		encodeBinary(buf, a.Value(i))
	case *array.FixedSizeBinary:
		encodeBinary(buf, a.Value(i))
	case *array.Struct:
		buf.WriteByte('{')
		for j, f := range a.DataType().(*arrow.StructType).Fields() {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(jsonString(f.Name))
			buf.WriteByte(':')
			if err := encodeValue(buf, a.Field(j), i); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case array.ListLike:
		if _, isMap := arr.(*array.Map); isMap {
			return encodeDefault(buf, arr, i)
		}
		start, end := a.ValueOffsets(i)
		return encodeRange(buf, a.ListValues(), int(start), int(end))
	default:
		return encodeDefault(buf, arr, i)
	}
	return nil
}

func encodeRange(buf *bytes.Buffer, values arrow.Array, start, end int) error {
	buf.WriteByte('[')
	for k := start; k < end; k++ {
		if k > start {
			buf.WriteByte(',')
		}
		if err := encodeValue(buf, values, k); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	return nil
}

func encodeDefault(buf *bytes.Buffer, arr arrow.Array, i int) error {
	b, err := json.Marshal(arr.GetOneForMarshal(i))
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

// DiffJSONL compares two tables in the golden format and returns nil when they are equal,
// else an error naming the first difference: a schema difference by column name, a
// different row count, or the first row (0-based) and column (by name) whose values differ,
// with the element inside a list or struct value: row 3, column "lengths"[2]: got 4, want 5.
func DiffJSONL(got, want []byte) error { return DiffJSONLApprox(got, want, 0) }

// DiffJSONLApprox is DiffJSONL where two numbers are equal when |got-want| <= tol *
// max(1, |want|), for outputs that may differ in the last bits across platforms (float
// kernels with and without FMA). tol = 0 is exact comparison of the JSON text.
func DiffJSONLApprox(got, want []byte, tol float64) error {
	gl, err := splitLines(got)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	wl, err := splitLines(want)
	if err != nil {
		return fmt.Errorf("golden: %w", err)
	}
	if len(gl) == 0 || len(wl) == 0 {
		return fmt.Errorf("empty table (got %d lines, want %d)", len(gl), len(wl))
	}
	var gs, ws schemaLine
	if err := json.Unmarshal(gl[0], &gs); err != nil {
		return fmt.Errorf("output: line 1: schema: %w", err)
	}
	if err := json.Unmarshal(wl[0], &ws); err != nil {
		return fmt.Errorf("golden: line 1: schema: %w", err)
	}
	if err := diffSchema(gs, ws); err != nil {
		return err
	}
	for r := 0; r+1 < len(gl) && r+1 < len(wl); r++ {
		var grow, wrow map[string]json.RawMessage
		if err := json.Unmarshal(gl[r+1], &grow); err != nil {
			return fmt.Errorf("output: row %d: %w", r, err)
		}
		if err := json.Unmarshal(wl[r+1], &wrow); err != nil {
			return fmt.Errorf("golden: row %d (line %d): %w", r, r+2, err)
		}
		for _, f := range gs.Schema {
			g, w := compact(grow[f.Name]), compact(wrow[f.Name])
			if bytes.Equal(g, w) {
				continue
			}
			gv, gerr := decodeNumbers(g)
			wv, werr := decodeNumbers(w)
			if gerr != nil || werr != nil {
				return fmt.Errorf("row %d, column %q: got %s, want %s", r, f.Name, clip(g), clip(w))
			}
			if path, gd, wd, differ := firstDiff(gv, wv, tol, ""); differ {
				return fmt.Errorf("row %d, column %q%s: got %s, want %s", r, f.Name, path, clip(gd), clip(wd))
			}
		}
	}
	if len(gl) != len(wl) {
		extra := "missing"
		first := len(gl) - 1
		line := wl
		if len(gl) > len(wl) {
			extra, first, line = "extra", len(wl)-1, gl
		}
		return fmt.Errorf("got %d rows, want %d; first %s row %d: %s", len(gl)-1, len(wl)-1, extra, first, clip(line[first+1]))
	}
	return nil
}

func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func marshalValue(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprint(v))
	}
	return b
}

// firstDiff walks two decoded JSON values and returns the path of their first difference
// ("[2]", ".path") and the two values there.
func firstDiff(g, w any, tol float64, path string) (string, []byte, []byte, bool) {
	switch wv := w.(type) {
	case []any:
		gv, ok := g.([]any)
		if !ok {
			break
		}
		for i := 0; i < len(gv) && i < len(wv); i++ {
			if p, gd, wd, d := firstDiff(gv[i], wv[i], tol, fmt.Sprintf("%s[%d]", path, i)); d {
				return p, gd, wd, d
			}
		}
		if len(gv) != len(wv) {
			return fmt.Sprintf("%s (length)", path), marshalValue(len(gv)), marshalValue(len(wv)), true
		}
		return "", nil, nil, false
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(wv)+len(gv))
		for k := range wv {
			keys = append(keys, k)
		}
		for k := range gv {
			if _, ok := wv[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			ge, gok := gv[k]
			we, wok := wv[k]
			p := path + "." + k
			if !gok || !wok {
				return p, marshalOrAbsent(ge, gok), marshalOrAbsent(we, wok), true
			}
			if p, gd, wd, d := firstDiff(ge, we, tol, p); d {
				return p, gd, wd, d
			}
		}
		return "", nil, nil, false
	case json.Number:
		gv, ok := g.(json.Number)
		if !ok {
			break
		}
		if gv == wv {
			return "", nil, nil, false
		}
		if tol > 0 {
			a, aerr := gv.Float64()
			b, berr := wv.Float64()
			if aerr == nil && berr == nil && math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) {
				return "", nil, nil, false
			}
		}
		return path, []byte(gv), []byte(wv), true
	}
	if reflect.DeepEqual(g, w) {
		return "", nil, nil, false
	}
	return path, marshalValue(g), marshalValue(w), true
}

func marshalOrAbsent(v any, ok bool) []byte {
	if !ok {
		return []byte("(absent)")
	}
	return marshalValue(v)
}

func diffSchema(got, want schemaLine) error {
	wantBy := map[string]fieldDesc{}
	for _, f := range want.Schema {
		wantBy[f.Name] = f
	}
	gotBy := map[string]bool{}
	for _, g := range got.Schema {
		gotBy[g.Name] = true
		w, ok := wantBy[g.Name]
		switch {
		case !ok:
			return fmt.Errorf("schema: column %q (%s) is not in the golden table", g.Name, g.Type)
		case g.Type != w.Type:
			return fmt.Errorf("schema: column %q: got type %s, want %s", g.Name, g.Type, w.Type)
		case g.Nullable != w.Nullable:
			return fmt.Errorf("schema: column %q: got nullable=%v, want %v", g.Name, g.Nullable, w.Nullable)
		case fmt.Sprint(g.Metadata) != fmt.Sprint(w.Metadata):
			return fmt.Errorf("schema: column %q: got metadata %v, want %v", g.Name, g.Metadata, w.Metadata)
		}
	}
	for _, w := range want.Schema {
		if !gotBy[w.Name] {
			return fmt.Errorf("schema: golden column %q (%s) is missing from the output", w.Name, w.Type)
		}
	}
	for i := range got.Schema {
		if got.Schema[i].Name != want.Schema[i].Name {
			return fmt.Errorf("schema: column %d is %q, want %q (same columns, different order)", i, got.Schema[i].Name, want.Schema[i].Name)
		}
	}
	return nil
}

func splitLines(b []byte) ([][]byte, error) {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func compact(raw json.RawMessage) []byte {
	if raw == nil {
		return []byte("(absent)")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// Golden compares record batches with the golden file at path (conventionally
// testdata/NAME.jsonl): t.Errorf names the first differing row and column. With -update it
// writes the file instead.
func Golden(t testing.TB, path string, recs ...arrow.RecordBatch) {
	t.Helper()
	got, err := JSONL(recs...)
	if err != nil {
		t.Errorf("pipelinetest: %s: %v", path, err)
		return
	}
	GoldenJSONL(t, path, got)
}

// GoldenApprox is Golden with numbers compared to a relative tolerance (see DiffJSONLApprox).
// With -update it writes the file.
func GoldenApprox(t testing.TB, path string, tol float64, recs ...arrow.RecordBatch) {
	t.Helper()
	got, err := JSONL(recs...)
	if err != nil {
		t.Errorf("pipelinetest: %s: %v", path, err)
		return
	}
	goldenJSONL(t, path, got, tol)
}

// GoldenTable is Golden for a table.
func GoldenTable(t testing.TB, path string, tbl arrow.Table) {
	t.Helper()
	Golden(t, path, TableRecords(t, tbl)...)
}

// GoldenJSONL compares golden-format text (see WriteJSONL) with the golden file at path.
func GoldenJSONL(t testing.TB, path string, got []byte) {
	t.Helper()
	goldenJSONL(t, path, got, 0)
}

func goldenJSONL(t testing.TB, path string, got []byte, tol float64) {
	t.Helper()
	if Update() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Errorf("pipelinetest: %v", err)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Errorf("pipelinetest: %v", err)
			return
		}
		t.Logf("pipelinetest: wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("pipelinetest: golden file: %v (run the test with -update to create it)", err)
		return
	}
	if err := DiffJSONLApprox(got, want, tol); err != nil {
		t.Errorf("pipelinetest: %s: %v (rerun with -update if the new output is right)", path, err)
	}
}

// Equal compares two tables given as record batches and fails t (Errorf) at the first
// differing row and column, like Golden.
func Equal(t testing.TB, got, want []arrow.RecordBatch) {
	t.Helper()
	g, err := JSONL(got...)
	if err != nil {
		t.Errorf("pipelinetest: got: %v", err)
		return
	}
	w, err := JSONL(want...)
	if err != nil {
		t.Errorf("pipelinetest: want: %v", err)
		return
	}
	if err := DiffJSONL(g, w); err != nil {
		t.Errorf("pipelinetest: %v", err)
	}
}
