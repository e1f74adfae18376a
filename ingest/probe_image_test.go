package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func noisyImage(w, h int, seed uint64) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	return img
}

type encodedImage struct {
	name string
	data []byte
}

// encodeAll encodes one image with every standard-library and x/image encoder.
func encodeAll(t testing.TB, w, h int, seed uint64) []encodedImage {
	t.Helper()
	img := noisyImage(w, h, seed)
	var out []encodedImage
	add := func(name string, enc func(*bytes.Buffer) error) {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		out = append(out, encodedImage{name, b.Bytes()})
	}
	add("jpeg", func(b *bytes.Buffer) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 90}) })
	add("jpeg-gray", func(b *bytes.Buffer) error {
		g := image.NewGray(img.Bounds())
		for i := range g.Pix {
			g.Pix[i] = img.Pix[i*4]
		}
		return jpeg.Encode(b, g, &jpeg.Options{Quality: 50})
	})
	add("png", func(b *bytes.Buffer) error { return png.Encode(b, img) })
	add("png-paletted", func(b *bytes.Buffer) error {
		p := image.NewPaletted(img.Bounds(), color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}})
		for i := range p.Pix {
			p.Pix[i] = img.Pix[i*4] % 3
		}
		return png.Encode(b, p)
	})
	add("gif", func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) })
	add("bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, img) })
	add("tiff", func(b *bytes.Buffer) error { return tiff.Encode(b, img, &tiff.Options{Compression: tiff.Deflate}) })
	return out
}

func reasonOf(err error) string {
	var pe *probeError
	if errors.As(err, &pe) {
		return pe.reason
	}
	return ""
}

// TestProbeImageSizes compares the probed size with the standard decoders' DecodeConfig.
func TestProbeImageSizes(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {7, 3}, {64, 48}, {333, 17}} {
		for _, e := range encodeAll(t, sz[0], sz[1], uint64(sz[0]*1000+sz[1])) {
			cfg, format, err := image.DecodeConfig(bytes.NewReader(e.data))
			if err != nil {
				t.Fatalf("%s: reference DecodeConfig: %v", e.name, err)
			}
			info, err := ProbeImage(e.data, ImageLimits{})
			if err != nil {
				t.Errorf("%s %dx%d: %v", e.name, sz[0], sz[1], err)
				continue
			}
			if info.Format != format || info.Width != cfg.Width || info.Height != cfg.Height {
				t.Errorf("%s: probe %v, reference %s %dx%d", e.name, info, format, cfg.Width, cfg.Height)
			}
		}
	}
}

// TestProbeImageTruncated cuts every encoded image at many points: each cut must be
// rejected, and jpeg/png/gif/bmp cuts must say image_truncated.
func TestProbeImageTruncated(t *testing.T) {
	for _, e := range encodeAll(t, 40, 30, 7) {
		n := len(e.data)
		for _, cut := range []int{n / 2, n - 1, n - 2, n * 3 / 4, n / 3} {
			_, err := ProbeImage(e.data[:cut], ImageLimits{})
			if err == nil {
				if e.name == "tiff" {
					continue // tiff has no end marker; the header probe cannot see a cut strip
				}
				t.Errorf("%s cut at %d of %d: accepted", e.name, cut, n)
				continue
			}
			if r := reasonOf(err); e.name != "tiff" && r != ReasonImageTruncated {
				t.Errorf("%s cut at %d of %d: reason %q (%v), want image_truncated", e.name, cut, n, r, err)
			}
		}
	}
}

// pngChunk builds one PNG chunk with a correct CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	b.Write(hdr[:])
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(hdr[:], crc32.ChecksumIEEE(append([]byte(typ), data...)))
	b.Write(hdr[:])
	return b.Bytes()
}

func hugePNG(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, pngChunk("IEND", nil)...)
}

func TestProbePNGCRC(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, noisyImage(20, 20, 3)); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	// Flip one bit in every byte position after the signature: a flip in a length field may
	// read as truncation or corruption, anywhere else it must be a CRC mismatch.
	crcs := 0
	for i := 8; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		_, err := ProbeImage(bad, ImageLimits{})
		if err == nil {
			t.Fatalf("flip at byte %d accepted", i)
		}
		if reasonOf(err) == ReasonPNGCRC {
			crcs++
		}
	}
	if crcs < len(good)*8/10 {
		t.Errorf("only %d of %d flipped bytes reported as png_crc", crcs, len(good)-8)
	}
}

func TestProbeImageLimits(t *testing.T) {
	if _, err := ProbeImage(hugePNG(100000, 100000), ImageLimits{MaxPixels: 100_000_000}); reasonOf(err) != ReasonImageTooLarge {
		t.Errorf("100000x100000 png: %v, want image_too_large", err)
	}
	if _, err := ProbeImage(hugePNG(100, 100), ImageLimits{MaxPixels: 100_000_000}); err != nil {
		t.Errorf("100x100 png: %v", err)
	}
	var b bytes.Buffer
	jpeg.Encode(&b, noisyImage(30, 10, 1), nil)
	if _, err := ProbeImage(b.Bytes(), ImageLimits{MinSide: 16}); reasonOf(err) != ReasonImageTooSmall {
		t.Errorf("30x10 jpeg with min side 16: %v, want image_too_small", err)
	}
	if _, err := ProbeImage(b.Bytes(), ImageLimits{MaxPixels: 299}); reasonOf(err) != ReasonImageTooLarge {
		t.Errorf("30x10 jpeg with max pixels 299: %v, want image_too_large", err)
	}
	if _, err := ProbeImage(b.Bytes(), ImageLimits{MaxPixels: 300, MinSide: 10}); err != nil {
		t.Errorf("30x10 jpeg at the limits: %v", err)
	}
	if _, err := ProbeImage(nil, ImageLimits{}); reasonOf(err) != ReasonEmptyFile {
		t.Errorf("empty: %v", err)
	}
	if _, err := ProbeImage([]byte("hello world"), ImageLimits{}); reasonOf(err) != ReasonImageUnknownFormat {
		t.Errorf("text as image: %v", err)
	}
}

func FuzzProbeImage(f *testing.F) {
	for _, w := range []int{1, 9} {
		for _, e := range encodeAll(f, w, 5, 1) {
			f.Add(e.data)
		}
	}
	f.Add(hugePNG(100000, 100000))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ProbeImage(b, ImageLimits{MaxPixels: 1 << 24})
		if err == nil && (info.Width <= 0 || info.Height <= 0) {
			t.Errorf("accepted with size %dx%d", info.Width, info.Height)
		}
		if err != nil && reasonOf(err) == "" {
			t.Errorf("error without a reason: %v", err)
		}
	})
}
