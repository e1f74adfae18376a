package shapes_test

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/testdata/gen"
)

// heldOut are the corpus options of the accuracy tests: the detectors' thresholds were
// tuned on seeds 7 and 9, so these samples were not looked at while tuning.
var heldOut = gen.Options{Seed: 21}

// degradation is how a corpus sample is turned into what a model's decoder could give.
type degradation struct {
	size  int     // image side in pixels
	sigma float64 // Gaussian noise on the pixel latent ([-1, 1] units) or the log-mel
	blur  float64 // Gaussian blur of the decoded image, pixels
	// native renders the corpus at size x size PNG (as the --demo corpus is) instead of
	// resizing the default 64 px JPEG.
	native bool
}

func (d degradation) String() string {
	s := fmt.Sprintf("%dpx", d.size)
	if d.native {
		s += "-native-png"
	}
	if d.sigma > 0 {
		s += fmt.Sprintf("+noise%.2g", d.sigma)
	}
	if d.blur > 0 {
		s += fmt.Sprintf("+blur%.2g", d.blur)
	}
	return s
}

// score counts correct detections per attribute, overall and per true size.
type score struct {
	n, color, shape, size, position int
	bySize                          map[string]*score
}

func (s *score) add(got shapes.Attr, want gen.Attributes) {
	s.n++
	s.color += b2i(got.Color == want.Color)
	s.shape += b2i(got.Shape == want.Shape)
	s.size += b2i(got.Size == want.Size)
	s.position += b2i(got.Position == want.Position)
	if s.bySize != nil {
		sub := s.bySize[want.Size]
		if sub == nil {
			sub = &score{}
			s.bySize[want.Size] = sub
		}
		sub.add(got, want)
	}
}

func (s *score) rate(k int) float64 { return float64(k) / float64(max(s.n, 1)) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// imageScore runs FromImage on the samples pushed through the degradation.
func imageScore(t testing.TB, samples []gen.SampleFiles, d degradation) *score {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(d.size), 99))
	s := &score{bySize: map[string]*score{}}
	for _, x := range samples {
		img := imageAt(t, x.Image, d.size, d.sigma, r)
		if d.blur > 0 {
			img = imaging.Blur(img, d.blur)
		}
		s.add(shapes.FromImage(img), x.Spec.Attributes)
	}
	return s
}

// TestFromImageAccuracy measures the image detector on held-out corpus samples decoded the
// way generated ones are (resized, through pixel latents, optionally with latent noise or
// blur). Each bound is the accuracy measured on the tuning seeds (docs/eval.md) less about
// three binomial standard deviations at this n; at 16 px a small shape is 3 px across, so
// shape is only required well above chance (0.2) there.
func TestFromImageAccuracy(t *testing.T) {
	t.Parallel() // single-threaded; overlaps with the audio accuracy test
	n := 150
	if testing.Short() {
		n = 60
	}
	samples := corpus(t, heldOut, n)
	for _, tc := range []struct {
		d                            degradation
		color, shape, size, position float64
	}{
		{degradation{size: 16}, 0.97, 0.70, 0.95, 0.97},
		{degradation{size: 24}, 0.97, 0.95, 0.97, 0.97},
		{degradation{size: 32}, 0.97, 0.97, 0.97, 0.97},
		{degradation{size: 48}, 0.97, 0.97, 0.97, 0.97},
		{degradation{size: 64}, 0.97, 0.97, 0.97, 0.97},
		{degradation{size: 24, native: true}, 0.97, 0.95, 0.97, 0.97},
		{degradation{size: 32, native: true}, 0.97, 0.97, 0.97, 0.97},
		{degradation{size: 32, sigma: 0.1}, 0.97, 0.95, 0.97, 0.97},
		{degradation{size: 32, blur: 0.7}, 0.97, 0.95, 0.97, 0.97},
		{degradation{size: 24, sigma: 0.1, blur: 0.5}, 0.95, 0.85, 0.95, 0.95},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			in := samples
			if tc.d.native {
				o := heldOut
				o.ImageSize, o.ImageFormat = tc.d.size, gen.FormatPNG
				in = corpus(t, o, n)
			}
			s := imageScore(t, in, tc.d)
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"color", s.rate(s.color), tc.color},
				{"shape", s.rate(s.shape), tc.shape},
				{"size", s.rate(s.size), tc.size},
				{"position", s.rate(s.position), tc.position},
			} {
				if c.got < c.want {
					t.Errorf("%s accuracy %.3f < %.2f (n=%d)", c.what, c.got, c.want, s.n)
				}
			}
			t.Logf("n=%d color %.3f shape %.3f size %.3f position %.3f", s.n, s.rate(s.color), s.rate(s.shape), s.rate(s.size), s.rate(s.position))
		})
	}
}

// TestFromImageGarbage checks that pictures without a corpus shape are mostly not
// recognised: uniform colours give nothing, and pixel noise gives no shape at 32 px and
// above; at 16 px some noise blobs pass as a colour (at about chance, since no colour
// wins) but rarely as a shape.
func TestFromImageGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []color.RGBA{{0, 0, 0, 255}, {128, 128, 128, 255}, {220, 20, 20, 255}, {255, 255, 255, 255}} {
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		if a := shapes.FromImage(img); a != (shapes.Attr{}) {
			t.Errorf("uniform %v: %+v, want nothing", c, a)
		}
	}
	for _, tc := range []struct {
		size          int
		maxShape      float64
		maxColorShare float64 // largest share of one colour among the noise images
	}{{16, 0.15, 0.35}, {32, 0.02, 0.05}, {64, 0.02, 0.05}} {
		const n = 200
		shapesSeen, colors := 0, map[string]int{}
		for range n {
			img := image.NewRGBA(image.Rect(0, 0, tc.size, tc.size))
			for i := range img.Pix {
				img.Pix[i] = byte(r.IntN(256)) | byte(b2i(i%4 == 3)*255)
			}
			a := shapes.FromImage(img)
			shapesSeen += b2i(a.Shape != "")
			if a.Color != "" {
				colors[a.Color]++
			}
		}
		if f := float64(shapesSeen) / n; f > tc.maxShape {
			t.Errorf("%d px noise: %.2f recognised as a shape, want <= %.2f", tc.size, f, tc.maxShape)
		}
		for c, k := range colors {
			if f := float64(k) / n; f > tc.maxColorShare {
				t.Errorf("%d px noise: %.2f recognised as %s, want <= %.2f", tc.size, f, c, tc.maxColorShare)
			}
		}
	}
	for _, img := range []image.Image{
		image.NewRGBA(image.Rect(0, 0, 0, 0)),
		image.NewRGBA(image.Rect(0, 0, 1, 1)),
		image.NewGray(image.Rect(5, 5, 7, 9)),
	} {
		if a := shapes.FromImage(img); a != (shapes.Attr{}) {
			t.Errorf("%v image: %+v, want nothing", img.Bounds(), a)
		}
	}
}

// TestFromImageBounds checks that the detector reads an image through its bounds and any
// image type: a corpus image placed inside a larger canvas and taken back as a sub-image,
// or converted to NRGBA and YCbCr, gives the same attributes.
func TestFromImageBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, x := range corpus(t, heldOut, 10) {
		img := imageAt(t, x.Image, 32, 0, r)
		want := shapes.FromImage(img)
		if want.Shape != x.Spec.Shape || want.Color != x.Spec.Color {
			t.Fatalf("%s: %+v, want %+v", x.Spec.Key, want, x.Spec.Attributes)
		}
		big := image.NewRGBA(image.Rect(-7, -3, 50, 60))
		for y := range 32 {
			for x := range 32 {
				big.Set(x+5, y+9, img.At(x, y))
			}
		}
		sub := big.SubImage(image.Rect(5, 9, 37, 41))
		if got := shapes.FromImage(sub); got != want {
			t.Errorf("%s: sub-image gives %+v, want %+v", x.Spec.Key, got, want)
		}
		if got := shapes.FromImage(imaging.Clone(img)); got != want {
			t.Errorf("%s: NRGBA gives %+v, want %+v", x.Spec.Key, got, want)
		}
	}
}

// TestOutlines checks the outlines restated in this package against testdata/gen's
// documented membership test (the peer) on a fine grid, and their area constants against
// a float64 count of the same grid.
func TestOutlines(t *testing.T) {
	const steps = 801
	for _, name := range shapes.OutlineNames() {
		sh, ok := gen.ShapeByName(name)
		if !ok {
			t.Fatalf("outline %q is not a corpus shape", name)
		}
		differ, in := 0, 0
		var sv float64
		_, area := shapes.OutlineInside(name, 0, 0)
		for i := range steps {
			v := -1.2 + 2.4*(float64(i)+0.5)/steps
			for j := range steps {
				u := -1.2 + 2.4*(float64(j)+0.5)/steps
				mine, _ := shapes.OutlineInside(name, u, v)
				if mine != sh.Contains(u, v) {
					differ++
				}
				if mine {
					in++
					sv += v
				}
			}
		}
		cell := 2.4 / steps
		if differ > 0 {
			t.Errorf("%s: %d grid points differ from gen.Shape.Contains", name, differ)
		}
		if got := float64(in) * cell * cell; math.Abs(got-area) > 0.01*area {
			t.Errorf("%s: grid area %.4f, area constant %.4f", name, got, area)
		}
		if got, want := sv/float64(in), shapes.OutlineCentroid(name); math.Abs(got-want) > 0.01 {
			t.Errorf("%s: grid centroid v %.4f, constant %.4f", name, got, want)
		}
	}
	if len(shapes.OutlineNames()) != len(gen.Shapes) {
		t.Errorf("%d outlines for %d corpus shapes", len(shapes.OutlineNames()), len(gen.Shapes))
	}
}
