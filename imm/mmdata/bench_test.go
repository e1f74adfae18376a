package mmdata_test

import (
	"testing"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/shards"
)

// BenchmarkAssemble measures Assemble of a batch of 8 shapes samples (32 px pixels,
// whisper-80 mel, 16 text positions); bytes are the particle values written.
func BenchmarkAssemble(b *testing.B) {
	f := shapes(b)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		b.Fatal(err)
	}
	bt := batches(b, l, f.Shards, shards.SplitTrain)[0]
	D := l.Dim()
	x, mask := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
	b.SetBytes(int64(len(x) * 4))
	for b.Loop() {
		if _, err := l.Assemble(bt, x, mask); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bt.Len())/1e3, "us/sample")
}

// BenchmarkDecode measures decoding one particle per modality (GOMAXPROCS 1 would give
// the per-core cost; Decode runs particles in parallel).
func BenchmarkDecode(b *testing.B) {
	f := shapes(b)
	for _, c := range []struct {
		name, mod, invert string
	}{{"image", mmdata.Image, ""}, {"text", mmdata.Text, ""}, {"audio-nnls", mmdata.Audio, "nnls"}, {"audio-pinv", mmdata.Audio, "pinv"}} {
		b.Run(c.name, func(b *testing.B) {
			l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, MelInvert: c.invert})
			if err != nil {
				b.Fatal(err)
			}
			bt := batches(b, l, f.Shards, shards.SplitTrain)[0]
			D := l.Dim()
			x, mask := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
			if _, err := l.Assemble(bt, x, mask); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := l.DecodeModalities(x[:D], 1, []string{c.mod}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/particle")
		})
	}
}
