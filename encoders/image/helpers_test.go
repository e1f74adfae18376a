package image

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"
)

// photo makes a deterministic photo-like picture: smooth colour gradients, a few soft
// discs and rectangles with hard edges, and mild noise.
func photo(w, h int, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	type disc struct{ x, y, r, cr, cg, cb float64 }
	var ds []disc
	for range 6 {
		ds = append(ds, disc{rng.Float64() * float64(w), rng.Float64() * float64(h),
			(0.05 + 0.2*rng.Float64()) * float64(min(w, h)), 255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()})
	}
	rx0, ry0 := rng.IntN(w/2), rng.IntN(h/2)
	rx1, ry1 := rx0+w/4, ry0+h/5
	p0, p1, p2 := rng.Float64()*6, rng.Float64()*6, rng.Float64()*6
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			r := 120 + 80*math.Sin(3*u+p0) + 30*v
			g := 110 + 70*math.Cos(2*v+p1) + 40*u
			b := 100 + 60*math.Sin(2*(u+v)+p2)
			for _, d := range ds {
				dist := math.Hypot(float64(x)-d.x, float64(y)-d.y)
				a := 1 / (1 + math.Exp((dist-d.r)/2)) // soft edge
				r, g, b = r*(1-a)+d.cr*a, g*(1-a)+d.cg*a, b*(1-a)+d.cb*a
			}
			if x >= rx0 && x < rx1 && y >= ry0 && y < ry1 {
				r, g, b = 240, 240, 235
			}
			n := rng.NormFloat64() * 3
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp8(r+n), clamp8(g+n), clamp8(b+n), 255
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exifSegment builds an APP1 Exif segment whose IFD0 holds a dummy tag and Orientation o.
func exifSegment(o int, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II*\x00")
	if bigEndian {
		bo = binary.BigEndian
		tiff = []byte("MM\x00*")
	}
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 2)
	// ImageDescription-like dummy entry (tag 0x010e ASCII, 4 bytes inline)
	tiff = bo.AppendUint16(tiff, 0x010e)
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 4)
	tiff = append(tiff, 'a', 'b', 'c', 0)
	tiff = bo.AppendUint16(tiff, 0x0112)
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, uint16(o))
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // next IFD
	seg := []byte{0xFF, 0xE1, 0, 0}
	seg = append(seg, "Exif\x00\x00"...)
	seg = append(seg, tiff...)
	binary.BigEndian.PutUint16(seg[2:], uint16(len(seg)-2))
	return seg
}

// withEXIF inserts an Exif segment right after SOI.
func withEXIF(jpg []byte, o int, bigEndian bool) []byte {
	out := append([]byte{}, jpg[:2]...)
	out = append(out, exifSegment(o, bigEndian)...)
	return append(out, jpg[2:]...)
}

// diffStats returns the mean and max absolute difference over RGB of two same-size images.
func diffStats(t testing.TB, a, b *image.NRGBA) (mean float64, maxd int) {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("size %v != %v", a.Bounds().Size(), b.Bounds().Size())
	}
	w, h := a.Bounds().Dx(), a.Bounds().Dy()
	var sum float64
	for y := range h {
		for x := range w {
			i := a.PixOffset(a.Rect.Min.X+x, a.Rect.Min.Y+y)
			j := b.PixOffset(b.Rect.Min.X+x, b.Rect.Min.Y+y)
			for c := range 3 {
				d := int(a.Pix[i+c]) - int(b.Pix[j+c])
				if d < 0 {
					d = -d
				}
				sum += float64(d)
				maxd = max(maxd, d)
			}
		}
	}
	return sum / float64(3*w*h), maxd
}

func rgbAt(img *image.NRGBA, x, y int) color.NRGBA {
	return img.NRGBAAt(img.Rect.Min.X+x, img.Rect.Min.Y+y)
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func float16From(v float32) float16.Num { return float16.New(v) }
