package image

import (
	"errors"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
	"github.com/immkit/immkit/internal/turbojpeg"
)

// jpegDCRefused are the fixtures (testdata/jpegdc/gen.c) the jpeg-dc path must refuse; the
// other paths decode them.
var jpegDCRefused = map[string]bool{"progressive.jpg": true, "arith.jpg": true, "rgb.jpg": true}

// TestJPEGDCFixtures decodes every fixture at 1/8 on the jpeg-dc path and compares it with
// libjpeg-turbo's own 1/8 decode of the same file (the path computes what libjpeg computes,
// so the tolerance is a rounding step: max 1 per channel), and with the pure-Go path (full
// decode + 8×8 box average) within the stated turbo/go tolerance. It also checks the refused
// fixtures fall back in auto mode and are errors in dc mode.
func TestJPEGDCFixtures(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "jpegdc", "*.jpg"))
	if len(paths) < 14 {
		t.Fatalf("%d fixtures in testdata/jpegdc, want 14", len(paths))
	}
	turbo := turbojpeg.Load() == nil
	for _, p := range paths {
		name := filepath.Base(p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dcd, err := (&Decoder{JPEG: JPEGDC}).DecodeScaled(data, 8)
		if jpegDCRefused[name] {
			if err == nil || !errors.Is(err, ErrFormat) {
				t.Errorf("%s: jpeg-dc accepted a picture it cannot decode (err %v)", name, err)
			}
			ad, err := (&Decoder{}).DecodeScaled(data, 8)
			if name == "arith.jpg" && !turbo {
				continue // image/jpeg does not decode arithmetic coding either
			}
			if err != nil || ad.Path == PathDC {
				t.Errorf("%s: auto did not fall back: %v", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if dcd.Path != PathDC || dcd.Scale != 8 {
			t.Fatalf("%s: path %s scale %d", name, dcd.Path, dcd.Scale)
		}
		if w, h := (dcd.Width+7)/8, (dcd.Height+7)/8; dcd.Image.Rect != image.Rect(0, 0, w, h) {
			t.Fatalf("%s: %v, want %dx%d", name, dcd.Image.Rect, w, h)
		}
		gd, err := (&Decoder{JPEG: JPEGGo}).DecodeScaled(data, 8)
		if err != nil {
			t.Fatal(err)
		}
		mean, maxd := diffStats(t, dcd.Image, gd.Image)
		// At 1/8 libjpeg (and so jpeg-dc) gives 4:2:2 and 4:4:0 pictures chroma at the
		// resolution of the chroma blocks (16×8, 8×16 pixels), replicated; the box average of a
		// full decode has finer chroma. Edge blocks average the encoder's padding too (tiny).
		tolMean, tolMax := turboMeanTol, turboMaxTolScaled
		switch {
		case strings.HasPrefix(name, "422") || strings.HasPrefix(name, "440"):
			tolMean, tolMax = 10, 110
		case name == "tiny.jpg":
			tolMean, tolMax = 8, 10
		}
		if mean > tolMean || maxd > tolMax {
			t.Errorf("%s: jpeg-dc vs go mean %.2f max %d (tolerance %.1f, %d)", name, mean, maxd, tolMean, tolMax)
		}
		if !turbo {
			continue
		}
		td, err := (&Decoder{JPEG: JPEGTurbo}).DecodeScaled(data, 8)
		if err != nil {
			t.Fatal(err)
		}
		tm, tx := diffStats(t, dcd.Image, td.Image)
		if tx > dcMaxTol {
			t.Errorf("%s: jpeg-dc vs libjpeg-turbo 1/8: mean %.3f max %d (tolerance max %d)", name, tm, tx, dcMaxTol)
		}
		t.Logf("%s %v: vs turbo mean %.3f max %d; vs go mean %.2f max %d", name, dcd.Image.Rect.Size(), tm, tx, mean, maxd)
	}
	if !turbo {
		testenv.Missing(t, "libturbojpeg.so.0 (the jpeg-dc vs libjpeg-turbo comparison)", "scripts/deps.d/image.sh (apt-get install libturbojpeg0)")
	}
}

// dcMaxTol is the stated tolerance of the jpeg-dc path against libjpeg-turbo's 1/8 decode,
// per 8-bit channel.
const dcMaxTol = 1

// TestJPEGDCMatchesTurbo compares the jpeg-dc path with libjpeg-turbo's 1/8 decode on
// photo-like pictures from image/jpeg's encoder (4:2:0) and Pillow-made photos of the image
// benchmark when IMMKIT_BENCH_IMAGE_DIR names them (scripts/bench-image.sh).
func TestJPEGDCMatchesTurbo(t *testing.T) {
	if err := turbojpeg.Load(); err != nil {
		testenv.Missing(t, "libturbojpeg.so.0 ("+err.Error()+")", "scripts/deps.d/image.sh (apt-get install libturbojpeg0)")
	}
	var files [][]byte
	for _, q := range []int{50, 75, 90, 100} {
		for seed := uint64(0); seed < 2; seed++ {
			files = append(files, encodeJPEG(t, photo(512, 384, seed), q), encodeJPEG(t, photo(203, 517, seed+7), q))
		}
	}
	if dir := os.Getenv("IMMKIT_BENCH_IMAGE_DIR"); dir != "" {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, b)
		}
	}
	worst := 0
	for i, data := range files {
		dcd, err := (&Decoder{JPEG: JPEGDC}).DecodeScaled(data, 8)
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		td, err := (&Decoder{JPEG: JPEGTurbo}).DecodeScaled(data, 8)
		if err != nil {
			t.Fatal(err)
		}
		mean, maxd := diffStats(t, dcd.Image, td.Image)
		if maxd > dcMaxTol {
			t.Errorf("file %d: jpeg-dc vs libjpeg-turbo mean %.3f max %d (tolerance max %d)", i, mean, maxd, dcMaxTol)
		}
		worst = max(worst, maxd)
	}
	t.Logf("%d files: largest difference %d", len(files), worst)
}

// TestJPEGDCAuto checks which path auto takes: jpeg-dc at 1/8 but not at 1/4 (nor when the
// Go path is asked for); and that jpeg-dc gives the same geometry as the other paths,
// orientation included.
func TestJPEGDCAuto(t *testing.T) {
	data := encodeJPEG(t, photo(200, 120, 3), 90)
	auto := PathDC
	for _, c := range []struct {
		be    JPEGBackend
		scale int
		path  string
	}{{JPEGAuto, 8, auto}, {JPEGDC, 8, PathDC}, {JPEGGo, 8, PathGo}} {
		d, err := (&Decoder{JPEG: c.be}).DecodeScaled(data, c.scale)
		if err != nil || d.Path != c.path || d.Image.Rect != image.Rect(0, 0, 25, 15) {
			t.Fatalf("%s 1/%d: path %v, %v", c.be, c.scale, d, err)
		}
	}
	if d, err := (&Decoder{}).DecodeScaled(data, 4); err != nil || d.Path == PathDC {
		t.Fatalf("auto 1/4 took %v, %v", d.Path, err)
	}
	if _, err := (&Decoder{JPEG: JPEGDC}).DecodeScaled(data, 4); !errors.Is(err, ErrFormat) {
		t.Fatalf("dc at 1/4: %v, want an ErrFormat error", err)
	}
	// Orientation 6 (rotate 90° clockwise): a 200×120 picture comes out 15×25.
	d, err := (&Decoder{JPEG: JPEGDC}).DecodeScaled(withEXIF(data, 6, true), 8)
	if err != nil || d.Path != PathDC || d.Image.Rect != image.Rect(0, 0, 15, 25) {
		t.Fatalf("oriented: %v %v", d, err)
	}
	// The limits are checked on the header, before any pixel memory.
	if _, err := (&Decoder{JPEG: JPEGDC, Limits: Limits{MaxPixels: 1000}}).DecodeScaled(data, 8); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("limits: %v", err)
	}
}

// FuzzJPEGDC calls the jpeg-dc decoder directly (no recover around it, so a panic is a
// failure): any input gives a picture of ceil(w/8)×ceil(h/8) or an error.
func FuzzJPEGDC(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "jpegdc", "*.jpg"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(encodeJPEG(f, photo(40, 24, 1), 80))
	f.Fuzz(func(t *testing.T, data []byte) {
		var w, h int
		img, err := decodeJPEGDC(data, func(sw, sh int) error {
			if sw*sh > 1<<20 {
				return ErrTooLarge
			}
			w, h = sw, sh
			return nil
		})
		if err != nil {
			return
		}
		if img.Rect != image.Rect(0, 0, (w+7)/8, (h+7)/8) {
			t.Fatalf("decoded %v for %dx%d", img.Rect, w, h)
		}
	})
}

// TestJPEGDCMutations decodes randomly damaged fixtures (bytes replaced, bits flipped, files
// cut short) on the jpeg-dc path without a recover: any input must end in a picture or an
// error, promptly. A seeded complement to FuzzJPEGDC that runs on every `go test`.
func TestJPEGDCMutations(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "jpegdc", "*.jpg"))
	var seeds [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(5, 6))
	decoded := 0
	for i := 0; i < n; i++ {
		b := slices.Clone(seeds[r.IntN(len(seeds))])
		for k := r.IntN(8) + 1; k > 0; k-- {
			switch r.IntN(3) {
			case 0:
				b[r.IntN(len(b))] = byte(r.IntN(256))
			case 1:
				b[r.IntN(len(b))] ^= 1 << r.IntN(8)
			default:
				b = b[:r.IntN(len(b))+1]
			}
		}
		var w, h int
		img, err := decodeJPEGDC(b, func(sw, sh int) error {
			if sw*sh > 1<<22 {
				return ErrTooLarge
			}
			w, h = sw, sh
			return nil
		})
		if err != nil {
			continue
		}
		decoded++
		if img.Rect != image.Rect(0, 0, (w+7)/8, (h+7)/8) {
			t.Fatalf("input %d: decoded %v for %dx%d", i, img.Rect, w, h)
		}
	}
	t.Logf("%d damaged inputs, %d decoded to a picture, the rest refused", n, decoded)
}
