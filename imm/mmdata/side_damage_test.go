package mmdata

import (
	"fmt"
	"path/filepath"
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

// readSideOf reads the null keys of one shard's text_tokens and audio_mel into a fresh
// layout and checks them against the rows sideShard made null (computed again here, not
// read from the original file).
func readSideOf(path string, rows int) error {
	l := &Layout{nulls: map[string]keyIndex{colTextTokens: {}, colAudioMel: {}}}
	if err := l.readShardSide(path, []string{colTextTokens, colAudioMel}); err != nil {
		return err
	}
	wrong := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", pqsafetest.ErrWrongData, fmt.Sprintf(format, a...))
	}
	for r := 0; r < rows; r++ {
		k := fmt.Sprintf("k%03d", r)
		if l.nulls[colTextTokens][k] != (r%5 == 2) {
			return wrong("text_tokens null of %s", k)
		}
		if l.nulls[colAudioMel][k] != (r%4 == 1) {
			return wrong("audio_mel null of %s", k)
		}
	}
	for c, want := range map[string]int{colTextTokens: (rows + 2) / 5, colAudioMel: (rows + 2) / 4} {
		if len(l.nulls[c]) != want {
			return wrong("%d null keys in %s, want %d", len(l.nulls[c]), c, want)
		}
	}
	return nil
}

// TestReadShardSideDamaged damages a real shard byte by byte and by cutting it: reading
// null keys gives the written ones or an error naming the shard, never a panic
// or a hang.
func TestReadShardSideDamaged(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.parquet")
	const rows = 20
	sideShard(t, orig, rows)
	pqsafetest.DamageFile(t, "shard", orig, filepath.Join(dir, "shard-00000.parquet"), pqsafetest.Stride(5), "mmdata: ", true,
		func(path string) error { return readSideOf(path, rows) })
}
