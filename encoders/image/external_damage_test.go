package image

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

// latentFile writes rows [0, rows) of key k%02d and a 2x2x3 latent (value i of row r is
// val(r*12+i)) with arrow-go's writer, one Write per row group of 4.
func latentFile(t *testing.T, path string, rows int, codec compress.Compression) {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "image_latent", Type: arrow.FixedSizeListOf(12, arrow.PrimitiveTypes.Float32)},
	}, nil)
	pqsafetest.WriteFile(t, path, sc, codec, rows, 4, func(b *array.RecordBuilder, r int) {
		lb := b.Field(1).(*array.FixedSizeListBuilder)
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("k%02d", r))
		lb.Append(true)
		for i := range 12 {
			lb.ValueBuilder().(*array.Float32Builder).Append(val(r*12 + i))
		}
	})
}

// readLatentsOf reads path with FromParquet and compares with the values latentFile wrote.
func readLatentsOf(path string, rows int) error {
	ls, keys, err := (External{C: 2, H: 2, W: 3}).FromParquet(path, "image_latent", "key")
	if err != nil {
		return err
	}
	if len(ls) != rows || len(keys) != rows {
		return fmt.Errorf("%w: %d latents and %d keys, want %d", pqsafetest.ErrWrongData, len(ls), len(keys), rows)
	}
	for r, l := range ls {
		want := make([]float32, 12)
		for i := range want {
			want[i] = val(r*12 + i)
		}
		if keys[r] != fmt.Sprintf("k%02d", r) || !slices.Equal(l.Data, want) {
			return fmt.Errorf("%w: row %d: key %q latent %v", pqsafetest.ErrWrongData, r, keys[r], l.Data)
		}
	}
	return nil
}

// TestFromParquetDamaged damages a real external-latent file byte by byte and by cutting
// it: FromParquet returns the written latents or an error naming the file, never a panic
// or a hang.
func TestFromParquetDamaged(t *testing.T) {
	for _, codec := range []compress.Compression{compress.Codecs.Zstd, compress.Codecs.Snappy} {
		dir := t.TempDir()
		orig := filepath.Join(dir, "orig.parquet")
		const rows = 10
		latentFile(t, orig, rows, codec)
		pqsafetest.DamageFile(t, codec.String(), orig, filepath.Join(dir, "latents.parquet"), pqsafetest.Stride(3), "", codec == compress.Codecs.Zstd,
			func(path string) error { return readLatentsOf(path, rows) })
	}
}
