package shapes_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

// TestAccuracyTable measures every detector on larger held-out sets and writes the
// Markdown tables of docs/eval.md to the file named by $SHAPES_ACCURACY (skipped when it
// is unset; takes a few minutes):
//
//	SHAPES_ACCURACY=/tmp/accuracy.md go test ./evals/shapes -run TestAccuracyTable -v -timeout 30m
func TestAccuracyTable(t *testing.T) {
	out := os.Getenv("SHAPES_ACCURACY")
	if out == "" {
		t.Skip("set SHAPES_ACCURACY=FILE to measure the detectors and write the tables")
	}
	const nImages, nClips = 500, 100
	var b strings.Builder
	fmt.Fprintf(&b, "Image detector, %d held-out samples (seed %d) per row; shape accuracy also per true size.\n\n", nImages, heldOut.Seed)
	b.WriteString("| input | colour | shape | shape (small) | shape (large) | size | position |\n|---|---:|---:|---:|---:|---:|---:|\n")
	samples := corpus(t, heldOut, nImages)
	for _, d := range []degradation{
		{size: 16}, {size: 24}, {size: 32}, {size: 48}, {size: 64},
		{size: 24, native: true}, {size: 32, native: true},
		{size: 16, sigma: 0.1}, {size: 32, sigma: 0.1}, {size: 32, sigma: 0.2},
		{size: 16, blur: 0.5}, {size: 24, blur: 0.7}, {size: 32, blur: 0.7}, {size: 32, blur: 1.0},
		{size: 32, sigma: 0.1, blur: 0.7},
	} {
		in := samples
		if d.native {
			o := heldOut
			o.ImageSize, o.ImageFormat = d.size, gen.FormatPNG
			in = corpus(t, o, nImages)
		}
		s := imageScore(t, in, d)
		sm, lg := s.bySize["small"], s.bySize["large"]
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", d, s.rate(s.color), s.rate(s.shape),
			sm.rate(sm.shape), lg.rate(lg.shape), s.rate(s.size), s.rate(s.position))
	}
	fmt.Fprintf(&b, "\nSound detector, %d held-out clips per row, Griffin-Lim (32 iterations, nnls mel inversion) from the whisper-80 log-mel; noise is Gaussian on the normalised log-mel.\n\n", nClips)
	b.WriteString("| clip | log-mel noise | colour | shape | size |\n|---|---:|---:|---:|---:|\n")
	for _, c := range []struct{ clip, sigma float64 }{{1, 0}, {0.5, 0}, {1, 0.1}, {1, 0.2}, {1, 0.3}, {0.5, 0.2}} {
		o := heldOut
		o.AudioSeconds = c.clip
		s := audioScore(t, corpus(t, o, nClips), "whisper-80", c.clip, c.sigma)
		fmt.Fprintf(&b, "| %gs | %g | %.3f | %.3f | %.3f |\n", c.clip, c.sigma, s.rate(s.color), s.rate(s.shape), s.rate(s.size))
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
}
