package gen

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
)

// renderImage draws the sample's image: a grey background with a per-sample tint
// (textured with diagonal triangle-wave stripes and per-pixel noise unless
// s.PlainBackground) and the shape filled with its palette colour, antialiased by 2x2
// supersampling of [Shape.Contains].
//
// The background is integer arithmetic; the shape's coverage test is float64 with no
// fusable multiply-adds, so results do not depend on GOARCH.
func renderImage(s *Spec, r *rand.Rand) *image.RGBA {
	n := s.ImageSize
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	base := 60 + r.IntN(80)
	var tint [3]int
	for c := range tint {
		tint[c] = r.IntN(25) - 12
	}
	if s.PlainBackground {
		for i := 0; i < len(img.Pix); i += 4 {
			for c := range 3 {
				img.Pix[i+c] = byte(base + tint[c])
			}
			img.Pix[i+3] = 255
		}
	} else {
		drawTexture(img, base, tint, r)
	}
	drawShape(img, s)
	return img
}

// drawTexture fills img with the textured background around grey base with tint.
func drawTexture(img *image.RGBA, base int, tint [3]int, r *rand.Rand) {
	n := img.Rect.Dx()
	theta := r.Float64() * math.Pi
	period := max(float64(n)/16+r.Float64()*float64(n)/8, 4)
	amp := 8 + r.IntN(12)
	// Stripe phase in cycles as 32.32 fixed point: integer arithmetic from here on, so the
	// texture is the same on every architecture and costs no float work per pixel.
	incX := int64(math.Round(math.Cos(theta) / period * (1 << 32)))
	incY := int64(math.Round(math.Sin(theta) / period * (1 << 32)))
	state := r.Uint64() | 1
	for y := range n {
		row := img.Pix[y*img.Stride : y*img.Stride+4*n]
		phase := int64(y) * incY
		for x := range n {
			// Triangle wave of the fractional phase: |frac - 1/2| in [0, 2^31].
			d := int64(uint32(phase)) - 1<<31
			phase += incX
			if d < 0 {
				d = -d
			}
			stripe := int(d*int64(2*amp)>>31) - amp
			// xorshift64* noise: three bytes of one draw, one per channel.
			state ^= state >> 12
			state ^= state << 25
			state ^= state >> 27
			noise := state * 2685821657736338717
			p := row[4*x : 4*x+4 : 4*x+4]
			for c := range 3 {
				v := base + tint[c] + stripe + int(byte(noise>>(8*c+8)))%21 - 10
				p[c] = byte(min(max(v, 0), 255))
			}
			p[3] = 255
		}
	}
}

// drawShape blends the sample's shape in its palette colour over img.
func drawShape(img *image.RGBA, s *Spec) {
	n := s.ImageSize
	col, _ := ColorByName(s.Color)
	shape, _ := ShapeByName(s.Shape)
	fill := [3]int{int(col.RGB.R), int(col.RGB.G), int(col.RGB.B)}
	x0 := max(int(math.Floor(s.CenterX-s.Radius))-1, 0)
	x1 := min(int(math.Ceil(s.CenterX+s.Radius))+1, n)
	y0 := max(int(math.Floor(s.CenterY-s.Radius))-1, 0)
	y1 := min(int(math.Ceil(s.CenterY+s.Radius))+1, n)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			cov := 0
			for _, sy := range [2]float64{0.25, 0.75} {
				for _, sx := range [2]float64{0.25, 0.75} {
					u := (float64(x) + sx - s.CenterX) / s.Radius
					v := (float64(y) + sy - s.CenterY) / s.Radius
					if shape.Contains(u, v) {
						cov++
					}
				}
			}
			if cov == 0 {
				continue
			}
			p := img.Pix[y*img.Stride+4*x : y*img.Stride+4*x+3 : y*img.Stride+4*x+3]
			for c := range 3 {
				p[c] = byte((int(p[c])*(4-cov) + fill[c]*cov + 2) / 4)
			}
		}
	}
}

// encodeImage encodes img in the sample's format.
func encodeImage(img image.Image, format string, quality int) ([]byte, error) {
	var buf bytes.Buffer
	switch format {
	case FormatJPEG:
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
			return nil, fmt.Errorf("gen: encode jpeg: %w", err)
		}
	case FormatPNG:
		if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, img); err != nil {
			return nil, fmt.Errorf("gen: encode png: %w", err)
		}
	default:
		return nil, fmt.Errorf("gen: unknown image format %q", format)
	}
	return buf.Bytes(), nil
}
