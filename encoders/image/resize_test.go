package image

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// refResize is an independent float64 reference of antialiased separable resampling
// (Pillow's convention): output pixel i covers source centre (i+0.5)·n/m; the kernel is
// stretched by the scale when downsampling; weights are normalised over the pixels inside
// the image. No rounding until the end.
func refResize(src *image.NRGBA, w, h int, kernel func(float64) float64, support float64) *image.NRGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	weights := func(n, m int) [][]float64 {
		scale := float64(n) / float64(m)
		fs := math.Max(scale, 1)
		out := make([][]float64, m)
		for i := range m {
			c := (float64(i) + 0.5) * scale
			ws := make([]float64, n)
			var sum float64
			for j := range n {
				x := (float64(j) + 0.5 - c) / fs
				if math.Abs(x) < support {
					ws[j] = kernel(x)
					sum += ws[j]
				}
			}
			for j := range ws {
				ws[j] /= sum
			}
			out[i] = ws
		}
		return out
	}
	wx, wy := weights(sw, w), weights(sh, h)
	tmp := make([]float64, sh*w*3)
	for y := range sh {
		for x := range w {
			for j, wt := range wx[x] {
				if wt == 0 {
					continue
				}
				p := src.PixOffset(src.Rect.Min.X+j, src.Rect.Min.Y+y)
				for c := range 3 {
					tmp[(y*w+x)*3+c] += wt * float64(src.Pix[p+c])
				}
			}
		}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var acc [3]float64
			for j, wt := range wy[y] {
				for c := range 3 {
					acc[c] += wt * tmp[(j*w+x)*3+c]
				}
			}
			i := dst.PixOffset(x, y)
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = clamp8(acc[0]), clamp8(acc[1]), clamp8(acc[2]), 255
		}
	}
	return dst
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

func lanczos3(x float64) float64 { return sinc(x) * sinc(x/3) }

func triangle(x float64) float64 { return math.Max(0, 1-math.Abs(x)) }

func TestResizeModesAgainstReference(t *testing.T) {
	bg := color.NRGBA{255, 0, 255, 255}
	cases := []struct {
		name         string
		sw, sh, w, h int
		mode         Mode
		wantCrop     image.Rectangle
		wantSize     image.Point
		wantOffset   image.Point
	}{
		// Geometry computed by hand.
		{"landscape-crop", 300, 200, 64, 64, CenterCrop, image.Rect(50, 0, 250, 200), image.Pt(64, 64), image.Pt(0, 0)},
		{"portrait-crop", 200, 300, 64, 64, CenterCrop, image.Rect(0, 50, 200, 250), image.Pt(64, 64), image.Pt(0, 0)},
		{"odd-crop", 301, 200, 64, 64, CenterCrop, image.Rect(50, 0, 250, 200), image.Pt(64, 64), image.Pt(0, 0)},
		{"same-aspect", 300, 200, 96, 64, CenterCrop, image.Rect(0, 0, 300, 200), image.Pt(96, 64), image.Pt(0, 0)},
		{"wide-target", 300, 200, 64, 32, CenterCrop, image.Rect(0, 25, 300, 175), image.Pt(64, 32), image.Pt(0, 0)},
		{"upscale-crop", 40, 30, 64, 64, CenterCrop, image.Rect(5, 0, 35, 30), image.Pt(64, 64), image.Pt(0, 0)},
		{"keep-ratio", 300, 200, 64, 64, KeepRatio, image.Rect(0, 0, 300, 200), image.Pt(96, 64), image.Pt(0, 0)},
		{"keep-ratio-portrait", 200, 300, 64, 64, KeepRatio, image.Rect(0, 0, 200, 300), image.Pt(64, 96), image.Pt(0, 0)},
		{"pad", 300, 200, 64, 64, Pad, image.Rect(0, 0, 300, 200), image.Pt(64, 43), image.Pt(0, 10)},
		{"pad-portrait", 200, 300, 64, 64, Pad, image.Rect(0, 0, 200, 300), image.Pt(43, 64), image.Pt(10, 0)},
	}
	filters := []struct {
		name    string
		kernel  func(float64) float64
		support float64
	}{{"lanczos", lanczos3, 3}, {"linear", triangle, 1}}
	for _, tc := range cases {
		src := photo(tc.sw, tc.sh, 5)
		r := Resizer{Width: tc.w, Height: tc.h, Mode: tc.mode, Background: bg}
		g := r.Geometry(tc.sw, tc.sh)
		if g.Crop != tc.wantCrop || g.Size != tc.wantSize || g.Offset != tc.wantOffset {
			t.Errorf("%s: geometry %+v, want crop %v size %v offset %v", tc.name, g, tc.wantCrop, tc.wantSize, tc.wantOffset)
			continue
		}
		for _, f := range filters {
			r.Filter = f.name
			out, err := r.Resize(src)
			if err != nil {
				t.Fatal(err)
			}
			canvas := tc.wantSize
			if tc.mode == Pad {
				canvas = image.Pt(tc.w, tc.h)
			}
			if out.Rect != image.Rect(0, 0, canvas.X, canvas.Y) {
				t.Fatalf("%s: output %v, want %v", tc.name, out.Rect, canvas)
			}
			ref := refResize(src.SubImage(tc.wantCrop).(*image.NRGBA), tc.wantSize.X, tc.wantSize.Y, f.kernel, f.support)
			inner := out.SubImage(image.Rectangle{Min: tc.wantOffset, Max: tc.wantOffset.Add(tc.wantSize)}).(*image.NRGBA)
			mean, maxd := diffStats(t, inner, ref)
			// imaging rounds and clamps to 8 bits between the two passes; the reference does not.
			if mean > 0.6 || maxd > 3 {
				t.Errorf("%s/%s: mean abs diff %.3f max %d vs float64 reference (tolerance 0.6, 3)", tc.name, f.name, mean, maxd)
			}
			if tc.mode == Pad {
				for y := range tc.h {
					for x := range tc.w {
						if !(image.Point{x, y}).In(inner.Rect) && out.NRGBAAt(x, y) != bg {
							t.Fatalf("%s: border pixel (%d,%d) = %v, want %v", tc.name, x, y, out.NRGBAAt(x, y), bg)
						}
					}
				}
			}
		}
	}
}

func TestMaxScale(t *testing.T) {
	for _, tc := range []struct {
		sw, sh, w, h int
		mode         Mode
		want         int
	}{
		{512, 512, 64, 64, CenterCrop, 8},
		{512, 384, 64, 64, CenterCrop, 4}, // shorter side 384 → 48 at 1/8: too small
		{300, 200, 64, 64, CenterCrop, 2},
		{300, 200, 64, 64, Pad, 4}, // longer side 300 → 75 at 1/4 still ≥ 64
		{64, 64, 64, 64, CenterCrop, 1},
		{32, 32, 64, 64, KeepRatio, 1},
	} {
		r := Resizer{Width: tc.w, Height: tc.h, Mode: tc.mode}
		if got := r.MaxScale(tc.sw, tc.sh); got != tc.want {
			t.Errorf("MaxScale(%dx%d → %dx%d %s) = %d, want %d", tc.sw, tc.sh, tc.w, tc.h, tc.mode, got, tc.want)
		}
	}
}

func TestResizerValidate(t *testing.T) {
	for _, r := range []Resizer{{Width: 0, Height: 5}, {Width: 5, Height: 5, Mode: "stretch"}, {Width: 5, Height: 5, Filter: "sharpest"}} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
	if _, err := (Resizer{Width: 8, Height: 8, Mode: "bogus"}).Resize(photo(10, 10, 1)); err == nil {
		t.Error("Resize with a bad mode: no error")
	}
}

// The pipeline gives the same geometry on both JPEG paths, and both stay close to the
// float64 reference applied to the full-size decode.
func TestPipelinePaths(t *testing.T) {
	src := photo(512, 384, 11)
	data := encodeJPEG(t, src, 90)
	r := Resizer{Width: 64, Height: 64}
	var outs []*image.NRGBA
	for _, be := range backends(t) {
		p := Pipeline{Decoder: Decoder{JPEG: be}, Resizer: r}
		out, d, err := p.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if d.Scale != 4 || out.Rect != image.Rect(0, 0, 64, 64) {
			t.Fatalf("%s: scale %d rect %v", be, d.Scale, out.Rect)
		}
		// Reference: the exact centre crop of the original picture resampled in float64.
		ref := refResize(src.SubImage(image.Rect(64, 0, 448, 384)).(*image.NRGBA), 64, 64, lanczos3, 3)
		mean, maxd := diffStats(t, out, ref)
		t.Logf("%s: vs float64 reference of the full-size source: mean %.2f max %d", be, mean, maxd)
		if mean > 2.5 {
			t.Errorf("%s: mean abs diff %.2f vs reference (tolerance 2.5)", be, mean)
		}
		outs = append(outs, out)
	}
	if len(outs) == 2 {
		mean, maxd := diffStats(t, outs[0], outs[1])
		t.Logf("go vs turbo pipeline: mean %.2f max %d", mean, maxd)
		if mean > turboMeanTol || maxd > turboMaxTolScaled {
			t.Errorf("go vs turbo pipeline: mean %.2f max %d", mean, maxd)
		}
	}
}
