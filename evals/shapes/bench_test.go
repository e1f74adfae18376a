package shapes_test

import (
	"fmt"
	"image"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/testdata/gen"
)

// BenchmarkFromImage times the image detector on corpus images decoded at each size
// (cost is dominated by the outline fits, so it grows with the shape's area up to the
// 32 px working size).
func BenchmarkFromImage(b *testing.B) {
	samples := corpus(b, gen.Options{Seed: 30}, 20)
	for _, size := range []int{16, 32, 64} {
		r := rand.New(rand.NewPCG(1, 1))
		imgs := make([]image.Image, len(samples))
		for i, x := range samples {
			imgs[i] = imageAt(b, x.Image, size, 0, r)
		}
		b.Run(fmt.Sprintf("%dpx", size), func(b *testing.B) {
			i := 0
			for b.Loop() {
				shapes.FromImage(imgs[i%len(imgs)])
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkFromAudio times the sound detector on 1 s clips reconstructed by Griffin-Lim.
func BenchmarkFromAudio(b *testing.B) {
	samples := corpus(b, gen.Options{Seed: 30}, 5)
	r := rand.New(rand.NewPCG(1, 1))
	waves := make([][]float32, len(samples))
	rate := 0
	for i, x := range samples {
		waves[i], rate = audioAt(b, x.Audio, "whisper-80", 1, 0, r)
	}
	i := 0
	for b.Loop() {
		shapes.FromAudio(waves[i%len(waves)], rate)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "clips/s")
}
