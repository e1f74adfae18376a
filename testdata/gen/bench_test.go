package gen_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"path/filepath"
	"testing"
	"time"

	"github.com/immkit/immkit/testdata/gen"
)

// benchOptions are the benchmark corpus settings: 512x512 JPEG, 2 s clips at 16 kHz.
var benchOptions = gen.Options{Seed: 1, ImageSize: 512, AudioSeconds: 2}

// BenchmarkRender times one sample (image render + JPEG encode + WAV synthesis) on one
// goroutine. Its floor is BenchmarkJPEGEncodeOnly, which encodes an already rendered image.
func BenchmarkRender(b *testing.B) {
	var n int64
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		f, err := benchOptions.Render(i)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(f.Image) + len(f.Text) + len(f.Audio))
		i++
	}
	b.SetBytes(n / int64(max(i, 1)))
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "samples/s")
	reportCPU(b, cpu0, i)
}

// BenchmarkJPEGEncodeOnly is the baseline: image/jpeg encoding of a decoded generated image,
// the one step no generator of JPEG files can skip.
func BenchmarkJPEGEncodeOnly(b *testing.B) {
	f, err := benchOptions.Render(0)
	if err != nil {
		b.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(f.Image))
	if err != nil {
		b.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	for y := range 512 {
		for x := range 512 {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	var buf bytes.Buffer
	i := 0
	cpu0 := processCPU()
	for b.Loop() {
		buf.Reset()
		if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "samples/s")
	reportCPU(b, cpu0, i)
}

// BenchmarkGenerate writes 200-sample corpora with all cores, files included.
func BenchmarkGenerate(b *testing.B) {
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			o := benchOptions
			o.Samples = 200
			o.Workers = workers
			var sum gen.Summary
			k := 0
			cpu0 := processCPU()
			for b.Loop() {
				var err error
				sum, err = gen.Generate(context.Background(), filepath.Join(b.TempDir(), fmt.Sprint(k)), o)
				if err != nil {
					b.Fatal(err)
				}
				k++
			}
			b.SetBytes(sum.Bytes)
			b.ReportMetric(float64(k*o.Samples)/b.Elapsed().Seconds(), "samples/s")
			reportCPU(b, cpu0, k*o.Samples)
		})
	}
}

// reportCPU reports process CPU time (user+system, all goroutines, GC included) per sample:
// on a shared machine it moves much less than wall time.
func reportCPU(b *testing.B, cpu0 time.Duration, samples int) {
	if cpu := processCPU() - cpu0; cpu > 0 && samples > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(samples), "cpu-ms/sample")
	}
}
