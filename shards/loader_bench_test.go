package shards

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"
)

// BenchmarkLoader reads one epoch of 4x32x32 float16 latents + 64 tokens per iteration and
// reports decoded payload bytes/s (float32 latents, int32 tokens and lengths) and samples/s.
// scripts/bench-loader.sh runs the larger, per-core version with RSS.
func BenchmarkLoader(b *testing.B) {
	const n, size = 2000, 4 * 32 * 32
	r := rand.New(rand.NewPCG(1, 1))
	all := make([]sample, n)
	for i := range all {
		lat := make([]float16.Num, size)
		for j := range lat {
			lat[j] = float16.New(float32(r.NormFloat64()))
		}
		toks := make([]int32, 1+r.IntN(64))
		for j := range toks {
			toks[j] = r.Int32N(50000)
		}
		all[i] = sample{key: fmt.Sprintf("b%05d", i), latent: lat, tokens: toks}
	}
	tmp := b.TempDir()
	writePart(b, filepath.Join(tmp, "in", "p.parquet"), all, 500)
	if _, err := Build(b.Context(), BuildOptions{Inputs: []string{filepath.Join(tmp, "in")}, Out: filepath.Join(tmp, "ds"), ShardSize: 8 << 20}); err != nil {
		b.Fatal(err)
	}
	var payload int64
	b.ResetTimer()
	for b.Loop() {
		l, err := NewLoader(filepath.Join(tmp, "ds"), LoaderOptions{GlobalBatch: 128, Epochs: 1, ShuffleBlock: 1024,
			SeqLen: map[string]int{"text_tokens": 64}, Columns: []string{"image_latent", "text_tokens"}})
		if err != nil {
			b.Fatal(err)
		}
		payload = 0
		for {
			bt, err := l.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			payload += int64(len(bt.Latents["image_latent"].Data)+len(bt.Tokens["text_tokens"].IDs)+len(bt.Tokens["text_tokens"].Lengths)) * 4
		}
		l.Close()
	}
	b.SetBytes(payload)
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
