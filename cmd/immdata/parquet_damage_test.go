package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/immkit/immkit/internal/pqsafe/pqsafetest"
)

// docOf is the text of row r of partFile (null every 5th row).
func docOf(r int) (string, bool) {
	return strings.Repeat(fmt.Sprintf("doc %d says hello. ", r), 1+r%3), r%5 != 4
}

// partFile writes an ingest-like part of rows rows with arrow-go's writer (zstd, one Write
// per row group of 6): key, image (struct{bytes, path}, every 3rd row null), image_width,
// image_height, text, label, sha256.
func partFile(t *testing.T, path string, rows int) {
	t.Helper()
	media := arrow.StructOf(arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true})
	sc := arrow.NewSchema([]arrow.Field{
		{Name: ingest.ColKey, Type: arrow.BinaryTypes.String},
		{Name: ingest.ColImage, Type: media, Nullable: true},
		{Name: ingest.ColImageWidth, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ingest.ColImageHeight, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ingest.ColText, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ingest.ColLabel, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ingest.ColSHA256, Type: arrow.BinaryTypes.Binary},
	}, nil)
	pqsafetest.WriteFile(t, path, sc, compress.Codecs.Zstd, rows, 6, func(b *array.RecordBuilder, r int) {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("k%03d", r))
		img := b.Field(1).(*array.StructBuilder)
		if r%3 == 2 {
			img.AppendNull()
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
		} else {
			img.Append(true)
			img.FieldBuilder(0).(*array.BinaryBuilder).Append(bytes.Repeat([]byte{byte(r)}, 5+r))
			img.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("k%03d.png", r))
			b.Field(2).(*array.Int32Builder).Append(int32(10 + r))
			b.Field(3).(*array.Int32Builder).Append(int32(20 + r))
		}
		if d, ok := docOf(r); ok {
			b.Field(4).(*array.StringBuilder).Append(d)
		} else {
			b.Field(4).AppendNull()
		}
		b.Field(5).(*array.StringBuilder).Append([]string{"cat", "dog", "owl"}[r%3])
		b.Field(6).(*array.BinaryBuilder).Append(bytes.Repeat([]byte{byte(r), 7}, 16))
	})
}

// damageChecks asserts the outcome counts every damage test shares.
func damageChecks(t *testing.T, what string, size int, c pqsafetest.Counts) {
	t.Helper()
	t.Logf("%s, %d-byte file: %s", what, size, c)
	if c.Wrong > c.WrongFooter { // zstd pages: a damaged byte breaks the frame rather than the values
		t.Errorf("%s: %d damaged column chunks read without an error but with other values, e.g. %q", what, c.Wrong-c.WrongFooter, c.WrongCases)
	}
	if c.Errors == 0 {
		t.Errorf("%s: no damaged copy gave an error", what)
	}
}

// TestTokenizerTrainDamagedParquet damages a real Parquet file byte by byte and by
// cutting it: reading the text column for `tokenizer train` gives the written documents
// or an error naming the file, never a panic or a hang.
func TestTokenizerTrainDamagedParquet(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.parquet")
	const rows = 24
	partFile(t, orig, rows)
	var want [][]byte
	for r := 0; r < rows; r++ {
		if d, ok := docOf(r); ok {
			want = append(want, []byte(d))
		}
	}
	path := filepath.Join(dir, "docs.parquet")
	read := func() error {
		docs, err := readTrainInput(context.Background(), path, "text")
		if err != nil {
			return err
		}
		if !slices.EqualFunc(docs, want, bytes.Equal) {
			return fmt.Errorf("%w: %d documents, want %d", pqsafetest.ErrWrongData, len(docs), len(want))
		}
		return nil
	}
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Fatalf("undamaged file: %v", err)
	}
	c := pqsafetest.Damage(t, path, b, pqsafetest.Stride(5), 10*time.Second, read, func(t testing.TB, what string, err error) {
		if !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "tokenizer train: ") {
			t.Errorf("%s: the error does not name the file: %v", what, err)
		}
	})
	damageChecks(t, "tokenizer train", len(b), c)
}

// TestInspectDamagedParquet damages a real part byte by byte and by cutting it: `immdata
// inspect` prints what it prints for the undamaged part or exits 1 naming the file, never
// a panic or a hang.
func TestInspectDamagedParquet(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.parquet")
	partFile(t, orig, 24)
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "part.parquet")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", path, "--rows", "30"}, {"inspect", path, "--sha256"}} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, errOut, code := cli.Run(newRootCmd, args...)
		if code != 0 {
			t.Fatalf("%v on the undamaged part: exit %d: %s", args, code, errOut)
		}
		var errText string
		read := func() error {
			out, errOut, code := cli.Run(newRootCmd, args...)
			switch {
			case code == 0 && out == want:
				return nil
			case code == 0:
				return fmt.Errorf("%w: output %q", pqsafetest.ErrWrongData, out)
			}
			errText = errOut
			for _, e := range []error{pqsafe.ErrPanic, pqsafe.ErrDamaged} { // for the counts
				if strings.Contains(errOut, e.Error()) {
					return fmt.Errorf("exit %d: %w: %s", code, e, errOut)
				}
			}
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		c := pqsafetest.Damage(t, path, b, pqsafetest.Stride(5), 10*time.Second, read, func(t testing.TB, what string, err error) {
			if !strings.Contains(errText, path) || !strings.HasPrefix(err.Error(), "exit 1: ") {
				t.Errorf("%s: inspect did not exit 1 naming the file: %v", what, err)
			}
		})
		damageChecks(t, strings.Join(args[2:], " "), len(b), c)
	}
}
