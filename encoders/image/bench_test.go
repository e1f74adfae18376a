package image

import (
	"image"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/immkit/immkit/internal/turbojpeg"
)

// benchFiles returns the JPEGs of $IMMKIT_BENCH_IMAGE_DIR (scripts/bench-image.sh prepares
// 512×512 q90 photos there), or 16 synthetic photo-like 512×512 q90 JPEGs.
func benchFiles(b *testing.B) [][]byte {
	if dir := os.Getenv("IMMKIT_BENCH_IMAGE_DIR"); dir != "" {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		sort.Strings(paths)
		var out [][]byte
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, data)
		}
		if len(out) == 0 {
			b.Fatalf("no .jpg in %s", dir)
		}
		return out
	}
	var out [][]byte
	for i := range 16 {
		out = append(out, encodeJPEG(b, photo(512, 512, uint64(i)), 90))
	}
	return out
}

// BenchmarkDecodeCropResize64 is the img2dataset-style step: decode a 512×512 JPEG,
// center-crop and resize to 64×64 (Lanczos), one picture at a time on one goroutine (run
// with -cpu 1 for per-core figures). Reports images/s.
func BenchmarkDecodeCropResize64(b *testing.B) {
	files := benchFiles(b)
	for _, be := range []JPEGBackend{JPEGDC, JPEGTurbo, JPEGGo} {
		b.Run(string(be), func(b *testing.B) {
			if be == JPEGTurbo && !turbojpeg.Available() {
				b.Skip("libturbojpeg.so.0 unavailable")
			}
			p := Pipeline{Decoder: Decoder{JPEG: be}, Resizer: Resizer{Width: 64, Height: 64}}
			var bytes int64
			for _, f := range files {
				bytes += int64(len(f))
			}
			b.SetBytes(bytes / int64(len(files)))
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				if _, _, err := p.Load(files[i%len(files)]); err != nil {
					b.Fatal(err)
				}
			}
			// images per CPU-second: per-core throughput that stays meaningful on a shared,
			// loaded machine, where wall time includes time spent waiting for a core.
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu, "images/cpu-s")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkVQEncode measures nearest-code search: 64×64 pictures, 2×2 patches, K = 256.
func BenchmarkVQEncode(b *testing.B) {
	imgs := []*image.NRGBA{photo(64, 64, 1), photo(64, 64, 2)}
	q, _, err := FitVQ(imgs, 2, 256, 2, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := q.Encode(imgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}
