package shards

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestReadLatentChunkPaths decodes float16 latents with the general reader from a PLAIN
// and a dictionary-encoded file, against the values written. (latentpages_test.go checks
// the page reader on these and other layouts.)
func TestReadLatentChunkPaths(t *testing.T) {
	all := makeSamples(8, 120, 3, "p")
	size := len(all[0].latent)
	rec := encodedRecord(all, size)
	defer rec.Release()
	want := make([]uint16, 0, len(all)*size)
	for _, s := range all {
		for _, v := range s.latent {
			want = append(want, v.Uint16())
		}
	}
	for _, tc := range []struct {
		name string
		dict bool
	}{{"plain", false}, {"dictionary", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.parquet")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(
				parquet.WithDictionaryDefault(tc.dict), parquet.WithCompression(compress.Codecs.Zstd),
				parquet.WithDataPageSize(1<<10)), // many pages per chunk
				pqarrow.NewArrowWriterProperties())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			pf, err := openParquet(p, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			leaf, err := pf.Leaves("image_latent")
			if err != nil {
				t.Fatal(err)
			}
			var ch latentChunk
			c := loadCol{name: "image_latent", kind: kindLatent, size: size, f16: true}
			if err := readLatentChunk(pf, 0, leaf[0], c, int64(len(all)), &ch); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ch.bits, want) {
				t.Fatal("readLatentChunk values differ from those written")
			}
		})
	}
}

func TestLevelsAllEqual(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  []byte
		bw   int
		n    int
		want bool
	}{
		{"rle run of 2s", []byte{5 << 1, 2}, 2, 5, true},
		{"rle run of 1s", []byte{5 << 1, 1}, 2, 5, false},
		{"two rle runs", []byte{3 << 1, 2, 4 << 1, 2}, 2, 7, true},
		{"bit-packed 2s", []byte{1<<1 | 1, 0xAA, 0xAA}, 2, 8, true},
		{"bit-packed with a 0", []byte{1<<1 | 1, 0xA8, 0xAA}, 2, 8, false},
		{"bit-packed partial group", []byte{1<<1 | 1, 0xAA, 0x0A}, 2, 6, true},
		{"truncated", []byte{1<<1 | 1, 0xAA}, 2, 8, false},
		{"short", []byte{2 << 1, 2}, 2, 5, false},
	} {
		if got := levelsAllEqual(tc.buf, tc.bw, tc.n, 2); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
