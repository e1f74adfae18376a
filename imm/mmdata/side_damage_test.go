package mmdata

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/immkit/immkit/internal/pqsafe/pqsafetest"
)

// sideShard writes a shard-like file with arrow-go's writer (zstd, row groups of 6, one
// Write per row group): key, text_tokens (every 5th row null) and audio_mel (6 values,
// every 4th row null). Value j of row r's mel is r + j/8.
func sideShard(t *testing.T, path string, rows int) {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: colTextTokens, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: colAudioMel, Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	pqsafetest.WriteFile(t, path, sc, compress.Codecs.Zstd, rows, 6, func(b *array.RecordBuilder, r int) {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("k%03d", r))
		tok := b.Field(1).(*array.ListBuilder)
		if r%5 == 2 {
			tok.AppendNull()
		} else {
			tok.Append(true)
			tok.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2, int32(r)}, nil)
		}
		mel := b.Field(2).(*array.ListBuilder)
		if r%4 == 1 {
			mel.AppendNull()
		} else {
			mel.Append(true)
			for j := 0; j < 6; j++ {
				mel.ValueBuilder().(*array.Float32Builder).Append(float32(r) + float32(j)/8)
			}
		}
	})
}

// readSideOf reads one shard's side columns into a fresh layout and checks them against
// the values sideShard wrote (computed again here, not read from the original file).
func readSideOf(path string, rows int) error {
	l := &Layout{mels: &melIndex{Size: 6, Row: map[string]int{}}, nulls: map[string]keyIndex{colTextTokens: {}}}
	if err := l.readShardSide(path, []string{colTextTokens}); err != nil {
		return err
	}
	wrong := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", pqsafetest.ErrWrongData, fmt.Sprintf(format, a...))
	}
	if len(l.mels.Null) != rows || len(l.mels.Data) != rows*6 {
		return wrong("%d mel rows, want %d", len(l.mels.Null), rows)
	}
	for r := 0; r < rows; r++ {
		k := fmt.Sprintf("k%03d", r)
		if l.nulls[colTextTokens][k] != (r%5 == 2) {
			return wrong("text_tokens null of %s", k)
		}
		m, err := l.mels.get(k)
		if err != nil {
			return wrong("%v", err)
		}
		want := []float32(nil)
		if r%4 != 1 {
			for j := 0; j < 6; j++ {
				want = append(want, float32(r)+float32(j)/8)
			}
		}
		if !slices.Equal(m, want) {
			return wrong("mel of %s: %v, want %v", k, m, want)
		}
	}
	return nil
}

// TestReadShardSideDamaged damages a real shard byte by byte and by cutting it: reading
// its side columns gives the written values or an error naming the shard, never a panic
// or a hang.
func TestReadShardSideDamaged(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.parquet")
	const rows = 20
	sideShard(t, orig, rows)
	pqsafetest.DamageFile(t, "shard", orig, filepath.Join(dir, "shard-00000.parquet"), pqsafetest.Stride(5), "mmdata: ", true,
		func(path string) error { return readSideOf(path, rows) })
}
