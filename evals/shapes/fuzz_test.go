package shapes_test

import (
	"bytes"
	"encoding/binary"
	"image"
	_ "image/png"
	"math"
	"testing"

	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/testdata/gen"
)

// valid reports whether every field of a is empty or a caption word of its attribute.
func valid(a shapes.Attr) bool {
	ok := func(v string, names []string) bool {
		if v == "" {
			return true
		}
		for _, n := range names {
			if n == v {
				return true
			}
		}
		return false
	}
	var colors, kinds, sizes, positions []string
	for _, c := range gen.Colors {
		colors = append(colors, c.Name)
	}
	for _, s := range gen.Shapes {
		kinds = append(kinds, s.Name)
	}
	for _, s := range gen.Sizes {
		sizes = append(sizes, s.Name)
	}
	for _, p := range gen.Positions {
		positions = append(positions, p.Name)
	}
	return ok(a.Color, colors) && ok(a.Shape, kinds) && ok(a.Size, sizes) && ok(a.Position, positions)
}

// FuzzFromImage feeds arbitrary pixels of arbitrary small sizes: no panic, only valid
// attribute words.
func FuzzFromImage(f *testing.F) {
	s, err := gen.Options{Seed: 1, ImageFormat: gen.FormatPNG}.Render(2)
	if err != nil {
		f.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(s.Image))
	if err != nil {
		f.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	for y := range 64 {
		for x := range 64 {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	f.Add(uint8(64), rgba.Pix)
	f.Add(uint8(3), []byte{255, 0, 0, 255})
	f.Fuzz(func(t *testing.T, w uint8, pix []byte) {
		if w == 0 || len(pix) < 4*int(w) {
			return
		}
		h := len(pix) / (4 * int(w))
		img := &image.RGBA{Pix: pix[:4*int(w)*h], Stride: 4 * int(w), Rect: image.Rect(0, 0, int(w), h)}
		if a := shapes.FromImage(img); !valid(a) {
			t.Errorf("%dx%d: %+v", w, h, a)
		}
	})
}

// FuzzFromAudio feeds arbitrary float32 samples (NaN and infinities included) at
// arbitrary rates: no panic, only valid attribute words, never a position.
func FuzzFromAudio(f *testing.F) {
	f.Add(int32(16000), []byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xbf})
	tone := make([]byte, 4*4000)
	for i := range 4000 {
		binary.LittleEndian.PutUint32(tone[4*i:], math.Float32bits(float32(0.5*math.Sin(2*math.Pi*440*float64(i)/8000))))
	}
	f.Add(int32(8000), tone)
	f.Fuzz(func(t *testing.T, rate int32, b []byte) {
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		if rate > 1<<20 {
			return // keep the FFT size small
		}
		if a := shapes.FromAudio(x, int(rate)); !valid(a) || a.Position != "" {
			t.Errorf("rate %d, %d samples: %+v", rate, len(x), a)
		}
	})
}
