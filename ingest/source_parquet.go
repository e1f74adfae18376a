package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/immkit/immkit/internal/pqsafe"
)

// parquetSource reads an existing Parquet dataset, one candidate per row. Flags map the
// key, text, label, image and audio columns; a media column is either a Hugging Face
// struct{bytes, path} or a plain binary column. Other scalar columns go to meta; the
// derived columns of immkit's own raw-sample schema (sizes, durations, sha256, source) are
// recomputed, so ingest output can be ingested again.
type parquetSource struct {
	path string
	opts *SourceOptions
}

func (s *parquetSource) Units(_ context.Context, emit func(Unit) error) error {
	name := filepath.ToSlash(filepath.Clean(s.path))
	return emit(Unit{ID: name, Part: path.Base(name), Candidates: s.candidates})
}

// derivedColumns are recomputed from the media, never copied into meta.
var derivedColumns = map[string]bool{ColSource: true, ColImageWidth: true, ColImageHeight: true,
	ColAudioSampleRate: true, ColAudioChannels: true, ColAudioSeconds: true, ColSHA256: true}

func (s *parquetSource) candidates(ctx context.Context, emit func(*Candidate) error) error {
	name := filepath.ToSlash(filepath.Clean(s.path))
	o := s.opts
	stem, _ := splitKey(path.Base(name))
	row := 0
	// pqsafe, not ScanParquet: a damaged file must be an error, and ScanParquet's recover
	// does not reach the goroutines pqarrow starts for struct columns (an HF image column),
	// nor does it check decoded offsets before this callback indexes them.
	err := pqsafe.ScanFile(ctx, s.path, nil, pqsafe.Options{BatchRows: 64, Prefix: "ingest: "}, func(rec arrow.RecordBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		sc := rec.Schema()
		col := func(names ...string) arrow.Array {
			for _, n := range names {
				if idx := sc.FieldIndices(n); len(idx) > 0 {
					return rec.Column(idx[0])
				}
			}
			return nil
		}
		keyCol, textCol, labelCol := col(o.KeyField, ColKey), col(o.TextField), col(o.LabelField)
		imgCol, audCol, metaCol := col(o.ImageField), col(o.AudioField), col(ColMeta)
		used := map[string]bool{o.KeyField: true, ColKey: true, o.TextField: true, o.LabelField: true,
			o.ImageField: true, o.AudioField: true, ColMeta: true}
		for i := 0; i < int(rec.NumRows()); i++ {
			src := fmt.Sprintf("%s:%d", name, row)
			c := &Candidate{Key: fmt.Sprintf("%s:%d", stem, row), Source: src}
			row++
			if k, ok := scalarString(keyCol, i); ok {
				c.Key = k
			}
			if textCol != nil && textCol.IsValid(i) {
				t, ok := scalarString(textCol, i)
				if !ok {
					if err := emit(rejectCandidate(src, ReasonBadRow, fmt.Sprintf("text column %q is %s, not a string", o.TextField, textCol.DataType()))); err != nil {
						return err
					}
					continue
				}
				c.Text = &t
			}
			if o.LabelFrom == LabelAuto || o.LabelFrom == LabelField {
				if l, ok := scalarString(labelCol, i); ok {
					c.Label = &l
				}
			}
			var bad *probeError
			for _, m := range []struct {
				col  arrow.Array
				kind Kind
				name string
			}{{imgCol, KindImage, o.ImageField}, {audCol, KindAudio, o.AudioField}} {
				if m.col == nil || m.col.IsNull(i) {
					continue
				}
				b, p, err := mediaValue(m.col, i)
				if err != nil {
					bad = perr(ReasonBadRow, "%s column %q: %v", m.kind, m.name, err)
					break
				}
				if b == nil {
					continue
				}
				c.Members = append(c.Members, Member{Kind: m.kind, Name: p, Source: src + "#" + m.name, Data: b})
			}
			if bad != nil {
				if err := emit(rejectCandidate(src, bad.reason, bad.detail)); err != nil {
					return err
				}
				continue
			}
			meta := map[string]any{}
			if m, ok := scalarString(metaCol, i); ok && m != "" {
				if err := json.Unmarshal([]byte(m), &meta); err != nil {
					meta = map[string]any{ColMeta: m}
				}
			}
			for j, f := range sc.Fields() {
				if used[f.Name] || derivedColumns[f.Name] || rec.Column(j).IsNull(i) {
					continue
				}
				if v, ok := scalarValue(rec.Column(j), i); ok {
					meta[f.Name] = v
				}
			}
			if len(meta) > 0 {
				b, err := json.Marshal(meta)
				if err != nil {
					return err
				}
				c.Meta = string(b)
			}
			if err := emit(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		// A file that cannot be read as Parquet, or breaks off, is one reject; rows already
		// emitted stay.
		return emit(rejectCandidate(name, ReasonBadRow, err.Error()))
	}
	return err
}

// mediaValue returns the bytes (copied) and path of row i of a media column:
// struct{bytes, path} (HF Image/Audio) or binary / large_binary.
func mediaValue(col arrow.Array, i int) ([]byte, string, error) {
	switch c := col.(type) {
	case *array.Struct:
		st := c.DataType().(*arrow.StructType)
		var b []byte
		var p string
		for j, f := range st.Fields() {
			switch f.Name {
			case "bytes":
				if v, ok := binaryValue(c.Field(j), i); ok {
					b = append([]byte{}, v...)
				}
			case "path":
				p, _ = scalarString(c.Field(j), i)
			}
		}
		if b == nil && p != "" {
			return nil, "", fmt.Errorf("row holds only a path (%q), not the bytes", p)
		}
		return b, p, nil
	default:
		if v, ok := binaryValue(col, i); ok {
			return append([]byte{}, v...), "", nil
		}
		return nil, "", fmt.Errorf("type %s is not struct{bytes,path} or binary", col.DataType())
	}
}

func binaryValue(col arrow.Array, i int) ([]byte, bool) {
	if col == nil || col.IsNull(i) {
		return nil, false
	}
	switch c := col.(type) {
	case *array.Binary:
		return c.Value(i), true
	case *array.LargeBinary:
		return c.Value(i), true
	case *array.BinaryView:
		return c.Value(i), true
	}
	return nil, false
}

// scalarString renders string and integer values (HF ClassLabel ids) as text.
func scalarString(col arrow.Array, i int) (string, bool) {
	if col == nil || col.IsNull(i) {
		return "", false
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i), true
	case *array.LargeString:
		return c.Value(i), true
	case *array.StringView:
		return c.Value(i), true
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10), true
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10), true
	case *array.Int16:
		return strconv.FormatInt(int64(c.Value(i)), 10), true
	case *array.Int8:
		return strconv.FormatInt(int64(c.Value(i)), 10), true
	}
	return "", false
}

// scalarValue converts a scalar cell to a JSON value for meta.
func scalarValue(col arrow.Array, i int) (any, bool) {
	if s, ok := scalarString(col, i); ok {
		if _, isStr := col.(*array.String); isStr {
			return s, true
		}
		if _, isStr := col.(*array.LargeString); isStr {
			return s, true
		}
		return json.Number(s), true
	}
	switch c := col.(type) {
	case *array.Float64:
		v := c.Value(i)
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	case *array.Float32:
		v := float64(c.Value(i))
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	case *array.Boolean:
		return c.Value(i), true
	case *array.Uint32:
		return c.Value(i), true
	case *array.Uint64:
		return c.Value(i), true
	}
	return nil, false
}
