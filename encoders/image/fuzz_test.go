package image

import (
	"image"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder through Decoder and Pipeline: the result
// is an opaque picture of the declared geometry or an error, never a panic or a hang.
// Seeds: a valid file of every format, the committed WebP fixtures, and the malformed set.
func FuzzDecode(f *testing.F) {
	for _, b := range encodeAll(f, photo(20, 14, 2)) {
		f.Add(b)
	}
	f.Add(withEXIF(encodeJPEG(f, photo(16, 8, 4), 80), 6, true))
	for _, b := range malformed(f) {
		f.Add(b)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	lim := Limits{MaxPixels: 1 << 20, MaxSide: 4096}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, be := range []JPEGBackend{JPEGGo, JPEGAuto} {
			d := Decoder{Limits: lim, JPEG: be}
			dec, err := d.Decode(data)
			if err != nil {
				continue
			}
			b := dec.Image.Bounds()
			w, h := dec.Width, dec.Height
			if dec.Orientation >= 5 {
				w, h = h, w
			}
			if b != image.Rect(0, 0, w, h) {
				t.Fatalf("decoded %v, header says %dx%d orientation %d", b, dec.Width, dec.Height, dec.Orientation)
			}
			for i := 3; i < len(dec.Image.Pix); i += 4 {
				if dec.Image.Pix[i] != 255 {
					t.Fatal("not opaque")
				}
			}
			p := Pipeline{Decoder: d, Resizer: Resizer{Width: 8, Height: 8}}
			out, _, err := p.Load(data)
			if err == nil && out.Rect != image.Rect(0, 0, 8, 8) {
				t.Fatalf("pipeline output %v", out.Rect)
			}
		}
	})
}
