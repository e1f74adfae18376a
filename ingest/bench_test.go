package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

// BenchmarkIngest ingests a corpus of 512x512 JPEG + caption + 2 s WAV samples
// ($IMMKIT_BENCH_CORPUS, or 50 generated samples) and reports input bytes per second.
// scripts/bench-ingest.sh races the binary against sha256sum on larger corpora.
func BenchmarkIngest(b *testing.B) {
	src := os.Getenv("IMMKIT_BENCH_CORPUS")
	if src == "" {
		src = filepath.Join(b.TempDir(), "shapes")
		if _, err := gen.Generate(context.Background(), src, gen.Options{Seed: 1, Samples: 50, ImageSize: 512, AudioSeconds: 2}); err != nil {
			b.Fatal(err)
		}
	}
	var bytesIn int64
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "out")
		cfg := testConfig(src, out)
		cfg.Part = DefaultPartOptions()
		st, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		bytesIn = st.BytesIn
	}
	b.SetBytes(bytesIn)
}
