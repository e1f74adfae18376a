package encoders_test

import (
	"context"
	"testing"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/testdata/gen"
)

// BenchmarkEncodeRow encodes one demo sample (64x64 PNG, 1 s WAV, caption) with the
// default set (labels, pixels 64x64, whisper-80, trained BPE, max_len 32), one goroutine.
func BenchmarkEncodeRow(b *testing.B) {
	f, err := (gen.Options{Seed: 1, Samples: 1}).Render(0)
	if err != nil {
		b.Fatal(err)
	}
	set, err := encoders.NewSet(encoders.Config{}.Defaults())
	if err != nil {
		b.Fatal(err)
	}
	s := encoders.Sample{Image: f.Image, Audio: f.Audio, Text: string(f.Text), HasText: true, Label: f.Spec.Label}
	d := &encoders.FitData{Labels: []string{f.Spec.Label}, Samples: []encoders.Sample{s}}
	dir := b.TempDir()
	for _, e := range set.Encoders {
		if ft, ok := e.(encoders.Fitter); ok {
			if _, err := ft.Fit(context.Background(), d, dir); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(int64(len(f.Image) + len(f.Audio) + len(f.Text)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := set.EncodeRow(&s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
