package image

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/immkit/immkit/internal/testenv"
	"github.com/immkit/immkit/internal/turbojpeg"
	"github.com/immkit/immkit/testdata/gen"
)

// displayed maps a displayed pixel (x, y) to the stored pixel for EXIF orientation o, for a
// stored picture of sw×sh: the EXIF 2.3 definitions, written out independently of Orient.
func displayed(o, x, y, sw, sh int) (sx, sy int) {
	switch o {
	case 2:
		return sw - 1 - x, y
	case 3:
		return sw - 1 - x, sh - 1 - y
	case 4:
		return x, sh - 1 - y
	case 5:
		return y, x
	case 6: // stored picture must be turned 90° clockwise to display
		return y, sh - 1 - x
	case 7:
		return sw - 1 - y, sh - 1 - x
	case 8:
		return sw - 1 - y, x
	}
	return x, y
}

// stored builds the picture a camera would store for an upright picture u and orientation o.
func stored(u *image.NRGBA, o int) *image.NRGBA {
	w, h := u.Rect.Dx(), u.Rect.Dy()
	sw, sh := w, h
	if o >= 5 {
		sw, sh = h, w
	}
	s := image.NewNRGBA(image.Rect(0, 0, sw, sh))
	for y := range h {
		for x := range w {
			sx, sy := displayed(o, x, y, sw, sh)
			s.SetNRGBA(sx, sy, u.NRGBAAt(x, y))
		}
	}
	return s
}

// quadrants is an asymmetric upright picture: four flat quadrants of distinct colours.
func quadrants(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	cols := []color.NRGBA{{220, 30, 30, 255}, {30, 200, 40, 255}, {30, 40, 210, 255}, {230, 220, 40, 255}}
	for y := range h {
		for x := range w {
			q := 0
			if x >= w/2 {
				q++
			}
			if y >= h/2 {
				q += 2
			}
			img.SetNRGBA(x, y, cols[q])
		}
	}
	return img
}

func backends(t *testing.T) []JPEGBackend {
	if err := turbojpeg.Load(); err != nil {
		t.Logf("turbojpeg unavailable (%v): testing the Go path only", err)
		return []JPEGBackend{JPEGGo}
	}
	return []JPEGBackend{JPEGGo, JPEGTurbo}
}

func TestEXIFOrientationUpright(t *testing.T) {
	up := quadrants(48, 32)
	for _, be := range backends(t) {
		for o := 1; o <= 8; o++ {
			for _, big := range []bool{false, true} {
				data := withEXIF(encodeJPEG(t, stored(up, o), 95), o, big)
				if got := Orientation(data); got != o {
					t.Fatalf("Orientation = %d, want %d", got, o)
				}
				d := Decoder{JPEG: be}
				dec, err := d.Decode(data)
				if err != nil {
					t.Fatalf("%s o=%d: %v", be, o, err)
				}
				if dec.Orientation != o || dec.Path != map[JPEGBackend]string{JPEGGo: PathGo, JPEGTurbo: PathTurbo}[be] {
					t.Fatalf("%s o=%d: decoded orientation %d path %s", be, o, dec.Orientation, dec.Path)
				}
				// Compare the centres of the quadrants (away from JPEG ringing at the edges).
				for _, p := range []image.Point{{12, 8}, {36, 8}, {12, 24}, {36, 24}} {
					a, b := rgbAt(dec.Image, p.X, p.Y), up.NRGBAAt(p.X, p.Y)
					if absd(a.R, b.R) > 12 || absd(a.G, b.G) > 12 || absd(a.B, b.B) > 12 {
						t.Fatalf("%s o=%d big-endian=%v: pixel %v = %v, upright %v", be, o, big, p, a, b)
					}
				}
			}
		}
	}
}

func absd(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestOrientationMalformed(t *testing.T) {
	good := withEXIF(encodeJPEG(t, quadrants(8, 8), 90), 6, false)
	if Orientation(good) != 6 {
		t.Fatal("fixture broken")
	}
	// Every truncation and every single-byte corruption of the EXIF segment gives 1..8.
	for n := 0; n < 60; n++ {
		if o := Orientation(good[:n]); o < 1 || o > 8 {
			t.Fatalf("truncated at %d: %d", n, o)
		}
	}
	for i := 2; i < 60; i++ {
		b := append([]byte{}, good...)
		b[i] ^= 0xA5
		if o := Orientation(b); o < 1 || o > 8 {
			t.Fatalf("corrupted at %d: %d", i, o)
		}
	}
	// An out-of-range orientation value means none.
	if o := Orientation(withEXIF(encodeJPEG(t, quadrants(8, 8), 90), 9, false)); o != 1 {
		t.Fatalf("orientation 9 read as %d", o)
	}
}

// encodeAll writes img in every format with a Go encoder.
func encodeAll(t testing.TB, img image.Image) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var b bytes.Buffer
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(png.Encode(&b, img))
	out["png"] = append([]byte{}, b.Bytes()...)
	b.Reset()
	must(gif.Encode(&b, img, &gif.Options{NumColors: 256}))
	out["gif"] = append([]byte{}, b.Bytes()...)
	b.Reset()
	must(bmp.Encode(&b, img))
	out["bmp"] = append([]byte{}, b.Bytes()...)
	b.Reset()
	must(tiff.Encode(&b, img, &tiff.Options{Compression: tiff.Deflate}))
	out["tiff"] = append([]byte{}, b.Bytes()...)
	out["jpeg"] = encodeJPEG(t, img, 90)
	return out
}

func TestDecodeFormats(t *testing.T) {
	src := photo(40, 30, 3)
	for format, data := range encodeAll(t, src) {
		dec, err := (&Decoder{}).Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if dec.Format != format {
			t.Errorf("format %q, want %q", dec.Format, format)
		}
		ref := src
		if format == "gif" { // 256-colour quantisation: compare with the standard library's frame
			g, err := gif.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			ref = image.NewNRGBA(g.Bounds())
			draw.Draw(ref, ref.Rect, g, image.Point{}, draw.Src)
		}
		mean, maxd := diffStats(t, dec.Image, ref)
		tolMean, tolMax := 0.0, 0
		if format == "jpeg" {
			tolMean, tolMax = 6, 80
		}
		if mean > tolMean || maxd > tolMax {
			t.Errorf("%s: mean abs diff %.2f max %d (tolerance %.1f, %d)", format, mean, maxd, tolMean, tolMax)
		}
		for i := 3; i < len(dec.Image.Pix); i += 4 {
			if dec.Image.Pix[i] != 255 {
				t.Fatalf("%s: not opaque", format)
			}
		}
	}
}

func TestDecodePNGVariants(t *testing.T) {
	bg := color.NRGBA{0, 0, 255, 255}
	// 16-bit with alpha: every pixel has a known straight colour and alpha.
	img16 := image.NewNRGBA64(image.Rect(0, 0, 16, 8))
	for y := range 8 {
		for x := range 16 {
			img16.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 4000), uint16(y * 8000), 51400, uint16(x * 4369)})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img16); err != nil {
		t.Fatal(err)
	}
	dec, err := (&Decoder{Background: bg}).Decode(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for y := range 8 {
		for x := range 16 {
			c := img16.NRGBA64At(x, y)
			a := float64(c.A) / 65535
			want := [3]float64{
				float64(c.R)/257*a + float64(bg.R)*(1-a),
				float64(c.G)/257*a + float64(bg.G)*(1-a),
				float64(c.B)/257*a + float64(bg.B)*(1-a)}
			got := rgbAt(dec.Image, x, y)
			for k, g := range []uint8{got.R, got.G, got.B} {
				if d := float64(g) - want[k]; d > 2 || d < -2 {
					t.Fatalf("16-bit alpha pixel (%d,%d) ch %d = %d, want %.1f", x, y, k, g, want[k])
				}
			}
		}
	}
	// Palette with a transparent entry.
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 0, 0}, palette.Plan9[100]})
	pal.SetColorIndex(1, 1, 1)
	pal.SetColorIndex(2, 2, 2)
	b.Reset()
	if err := png.Encode(&b, pal); err != nil {
		t.Fatal(err)
	}
	dec, err = (&Decoder{Background: color.NRGBA{10, 20, 30, 0}}).Decode(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := rgbAt(dec.Image, 0, 0); got != (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("palette opaque pixel %v", got)
	}
	if got := rgbAt(dec.Image, 1, 1); got != (color.NRGBA{10, 20, 30, 255}) {
		t.Errorf("palette transparent pixel %v, want background", got)
	}
	r, g, bb, _ := palette.Plan9[100].RGBA()
	if got := rgbAt(dec.Image, 2, 2); got != (color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8), 255}) {
		t.Errorf("palette pixel %v", got)
	}
}

func TestDecodeGIFFirstFrame(t *testing.T) {
	pal := color.Palette{color.NRGBA{200, 10, 10, 255}, color.NRGBA{10, 200, 10, 255}}
	f0 := image.NewPaletted(image.Rect(0, 0, 6, 4), pal)
	f1 := image.NewPaletted(image.Rect(0, 0, 6, 4), pal)
	for i := range f1.Pix {
		f1.Pix[i] = 1
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{f0, f1}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	dec, err := (&Decoder{}).Decode(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for y := range 4 {
		for x := range 6 {
			if got := rgbAt(dec.Image, x, y); got != (color.NRGBA{200, 10, 10, 255}) {
				t.Fatalf("pixel (%d,%d) = %v, want the first frame's red", x, y, got)
			}
		}
	}
}

func TestDecodeWebP(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("testdata", "pattern.png"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Decoder{Background: color.NRGBA{255, 255, 255, 255}}
	want, err := d.Decode(ref)
	if err != nil {
		t.Fatal(err)
	}
	for name, tol := range map[string]float64{"pattern-lossless.webp": 0, "pattern-lossy.webp": 25} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Format != "webp" {
			t.Fatalf("%s: format %s", name, got.Format)
		}
		if name == "pattern-lossy.webp" { // saved without alpha: compare the opaque left half
			r := image.Rect(0, 0, 12, 16)
			want, got := want.Image.SubImage(r).(*image.NRGBA), got.Image.SubImage(r).(*image.NRGBA)
			if mean, _ := diffStats(t, got, want); mean > tol/2 {
				t.Errorf("%s: mean diff %.2f", name, mean)
			}
			continue
		}
		if mean, maxd := diffStats(t, got.Image, want.Image); float64(maxd) > tol {
			t.Errorf("%s: mean diff %.2f max %d", name, mean, maxd)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	data := encodeAll(t, photo(64, 48, 1))
	for format, b := range data {
		_, err := (&Decoder{Limits: Limits{MaxPixels: 64*48 - 1}}).Decode(b)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: MaxPixels: err = %v", format, err)
		}
		_, err = (&Decoder{Limits: Limits{MaxSide: 50}}).Decode(b)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: MaxSide: err = %v", format, err)
		}
		_, err = (&Decoder{Limits: Limits{MaxBytes: int64(len(b) - 1)}}).Decode(b)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: MaxBytes: err = %v", format, err)
		}
		if _, err := (&Decoder{}).Decode(b); err != nil {
			t.Errorf("%s: default limits: %v", format, err)
		}
	}
	// A PNG header declaring 100000×100000 is refused before any pixel allocation.
	huge := pngHeader(100000, 100000)
	if _, err := (&Decoder{}).Decode(huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge png: %v", err)
	}
}

// pngHeader returns a PNG signature and an IHDR chunk (with a correct CRC) for w×h RGB.
func pngHeader(w, h int) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 1, 1)))
	out := append([]byte{}, b.Bytes()[:33]...)
	out[16], out[17], out[18], out[19] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
	out[20], out[21], out[22], out[23] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	crc := crc32IEEE(out[12:29])
	out[29], out[30], out[31], out[32] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return out
}

// malformed returns inputs that are not valid pictures: truncations, corrupted magic,
// garbage, empty input.
func malformed(t testing.TB) map[string][]byte {
	m := map[string][]byte{"empty": {}, "garbage": bytes.Repeat([]byte{0x13, 0x37}, 100)}
	for format, b := range encodeAll(t, photo(32, 24, 9)) {
		m[format+"-header-only"] = b[:min(len(b), 24)]
		m[format+"-half"] = b[:len(b)/2]
		bad := append([]byte{}, b...)
		bad[0] ^= 0xFF
		m[format+"-bad-magic"] = bad
	}
	m["png-huge"] = pngHeader(100000, 100000)
	m["png-zero"] = pngHeader(0, 10)
	return m
}

func TestDecodeMalformed(t *testing.T) {
	for _, be := range backends(t) {
		for name, b := range malformed(t) {
			d := &Decoder{JPEG: be}
			if _, err := d.Decode(b); err == nil {
				t.Errorf("%s %s: decoded malformed input without error", be, name)
			}
		}
	}
}

func TestTurboMatchesGo(t *testing.T) {
	if err := turbojpeg.Load(); err != nil {
		testenv.Missing(t, "libturbojpeg.so.0 ("+err.Error()+")", "scripts/deps.d/image.sh (apt-get install libturbojpeg0)")
	}
	for _, q := range []int{75, 90} {
		for seed := uint64(0); seed < 3; seed++ {
			src := photo(512, 384, seed)
			data := encodeJPEG(t, src, q)
			for _, n := range []int{1, 2, 4, 8} {
				gd, err := (&Decoder{JPEG: JPEGGo}).DecodeScaled(data, n)
				if err != nil {
					t.Fatal(err)
				}
				td, err := (&Decoder{JPEG: JPEGTurbo}).DecodeScaled(data, n)
				if err != nil {
					t.Fatal(err)
				}
				if gd.Path != PathGo || td.Path != PathTurbo {
					t.Fatalf("paths %s %s", gd.Path, td.Path)
				}
				// Identical geometry, pixels within tolerance (different IDCT and chroma
				// upsampling; the DCT-domain reduction versus box averaging).
				mean, maxd := diffStats(t, td.Image, gd.Image)
				tolMax := turboMaxTolScaled
				if n == 1 {
					tolMax = turboMaxTolFull
				}
				if mean > turboMeanTol || maxd > tolMax {
					t.Errorf("q=%d seed=%d 1/%d: turbo vs go mean abs diff %.2f max %d (tolerance %.1f, %d)",
						q, seed, n, mean, maxd, turboMeanTol, tolMax)
				}
				t.Logf("q=%d seed=%d 1/%d: %dx%d mean %.2f max %d", q, seed, n, td.Image.Rect.Dx(), td.Image.Rect.Dy(), mean, maxd)
			}
		}
	}
}

// Stated tolerance between the libjpeg-turbo and pure-Go paths, per 8-bit channel: mean
// absolute difference ≤ 1; maximum ≤ 48 at full size (libjpeg-turbo's "fancy" triangle
// chroma upsampling versus Go's replication differs at hard colour edges), ≤ 8 when reduced.
const (
	turboMeanTol      = 1.0
	turboMaxTolFull   = 48
	turboMaxTolScaled = 8
)

// reduceYCbCr must equal converting to RGB and box-reducing (up to rounding and clamping)
// for every subsampling ratio and for sizes that do not divide by the reduction.
func TestReduceYCbCr(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		src := image.NewYCbCr(image.Rect(0, 0, 37, 29), ratio)
		// Smooth planes (as decoded photos are), so clamping at the RGB gamut rarely matters.
		for i := range src.Y {
			src.Y[i] = uint8(60 + (i*7)%120)
		}
		for i := range src.Cb {
			src.Cb[i] = uint8(110 + rng.IntN(30))
			src.Cr[i] = uint8(110 + rng.IntN(30))
		}
		for _, n := range []int{2, 4, 8} {
			got := reduceYCbCr(src, n)
			want := BoxReduce(toOpaque(src, color.NRGBA{}), n)
			mean, maxd := diffStats(t, got, want)
			if mean > 1 || maxd > 3 {
				t.Errorf("%v 1/%d: mean %.2f max %d", ratio, n, mean, maxd)
			}
		}
	}
}

// The image files of the corpus generator's malformed set (testdata/gen) are all refused,
// with ErrTooLarge for the oversized one, on both JPEG paths.
func TestGenBadSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "corpus")
	if _, err := gen.Generate(context.Background(), dir, gen.Options{Seed: 1, Samples: 1, Bad: true, AudioSeconds: 0.01}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, bf := range gen.BadFiles {
		switch bf.Reason {
		case gen.ReasonImageTruncated, gen.ReasonPNGCRC, gen.ReasonEmptyFile, gen.ReasonImageTooLarge:
		default:
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, bf.Path))
		if err != nil {
			t.Fatal(err)
		}
		for _, be := range backends(t) {
			_, err := (&Decoder{JPEG: be}).Decode(data)
			if err == nil {
				t.Errorf("%s (%s) decoded by %s without error", bf.Path, bf.What, be)
			}
			if bf.Reason == gen.ReasonImageTooLarge && !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s: err = %v, want ErrTooLarge", bf.Path, err)
			}
		}
		n++
	}
	if n != 4 {
		t.Fatalf("found %d bad image files, want 4", n)
	}
}

// TestDecodeGIFFrameOffset: a GIF whose first frame covers only part of the logical
// screen (found by FuzzDecode) decodes to the screen's size, the frame at its offset and
// the background elsewhere, as browsers and Pillow show it.
func TestDecodeGIFFrameOffset(t *testing.T) {
	pal := color.Palette{color.NRGBA{200, 10, 30, 255}, color.NRGBA{0, 0, 0, 0}}
	frame := image.NewPaletted(image.Rect(3, 2, 23, 14), pal) // 20x12 of a 25x14 screen
	var buf bytes.Buffer
	g := &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0}, Config: image.Config{ColorModel: pal, Width: 25, Height: 14}}
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	bg := color.NRGBA{5, 6, 7, 255}
	d := Decoder{Background: bg}
	dec, err := d.Decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.Image.Bounds(); got != image.Rect(0, 0, 25, 14) || dec.Width != 25 || dec.Height != 14 {
		t.Fatalf("decoded %v (%dx%d), want the 25x14 screen", got, dec.Width, dec.Height)
	}
	for y := 0; y < 14; y++ {
		for x := 0; x < 25; x++ {
			want := bg
			if image.Pt(x, y).In(frame.Rect) {
				want = color.NRGBA{200, 10, 30, 255}
			}
			if got := dec.Image.NRGBAAt(x, y); got != want {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}
