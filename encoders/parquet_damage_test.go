package encoders

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/internal/pqsafe/pqsafetest"
)

// rawRow is row r of the raw-sample part rawPart writes: what scanSamples must return.
func rawRow(r int) Sample {
	s := Sample{Key: fmt.Sprintf("k%03d", r), Source: fmt.Sprintf("src/%d.png", r)}
	s.SHA256 = sha256.Sum256([]byte(s.Key))
	if r%4 != 3 {
		s.Image = bytes.Repeat([]byte{byte(r)}, 3+r%9)
	}
	if r%3 != 1 {
		s.Text, s.HasText = strings.Repeat("word ", r%5+1), true
	}
	if r%5 != 4 {
		s.Label = []string{"cat", "dog"}[r%2]
	}
	return s
}

// rawPart writes rows [0, rows) of rawRow in the columns of ingest.RawSchema that encode
// reads (the others are optional) with arrow-go's writer (zstd, one Write per row group
// of 7).
func rawPart(t *testing.T, path string, rows int) {
	t.Helper()
	var fields []arrow.Field
	for _, name := range []string{ingest.ColKey, ingest.ColSource, ingest.ColImage, ingest.ColText, ingest.ColLabel, ingest.ColSHA256} {
		i := ingest.RawSchema.FieldIndices(name)
		if len(i) != 1 {
			t.Fatalf("ingest.RawSchema has no column %q", name)
		}
		fields = append(fields, ingest.RawSchema.Field(i[0]))
	}
	sc := arrow.NewSchema(fields, nil)
	pqsafetest.WriteFile(t, path, sc, compress.Codecs.Zstd, rows, 7, func(b *array.RecordBuilder, r int) {
		s := rawRow(r)
		b.Field(0).(*array.StringBuilder).Append(s.Key)
		b.Field(1).(*array.StringBuilder).Append(s.Source)
		img := b.Field(2).(*array.StructBuilder)
		if s.Image == nil {
			img.AppendNull()
		} else {
			img.Append(true)
			img.FieldBuilder(0).(*array.BinaryBuilder).Append(s.Image)
			img.FieldBuilder(1).(*array.StringBuilder).Append(s.Key + ".png")
		}
		if s.HasText {
			b.Field(3).(*array.StringBuilder).Append(s.Text)
		} else {
			b.Field(3).AppendNull()
		}
		if s.Label != "" {
			b.Field(4).(*array.StringBuilder).Append(s.Label)
		} else {
			b.Field(4).AppendNull()
		}
		b.Field(5).(*array.BinaryBuilder).Append(s.SHA256[:])
	})
}

// scanAgainst reads path with scanSamples and compares every sample with rawRow.
func scanAgainst(path string, rows int) error {
	n := 0
	err := scanSamples(context.Background(), path, func(s *Sample) error {
		want := rawRow(n)
		n++
		if s.Key != want.Key || s.Source != want.Source || s.SHA256 != want.SHA256 || !bytes.Equal(s.Image, want.Image) ||
			s.Text != want.Text || s.HasText != want.HasText || s.Label != want.Label || s.Audio != nil {
			return fmt.Errorf("%w: row %d: %+v, want %+v", pqsafetest.ErrWrongData, n-1, s, want)
		}
		return nil
	})
	if err == nil && n != rows {
		return fmt.Errorf("%w: %d rows, want %d", pqsafetest.ErrWrongData, n, rows)
	}
	return err
}

// TestScanSamplesDamaged damages a real raw-sample part byte by byte and by cutting it:
// encode's input reader returns the written samples or an error naming the part, never a
// panic or a hang.
func TestScanSamplesDamaged(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.parquet")
	const rows = 24
	rawPart(t, orig, rows)
	pqsafetest.DamageFile(t, "raw-sample part", orig, filepath.Join(dir, "part-0-00000.parquet"), pqsafetest.Stride(5), "encoders: ", true,
		func(path string) error { return scanAgainst(path, rows) })
}
