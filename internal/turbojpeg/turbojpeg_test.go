package turbojpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
)

func jpegOf(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	if err := Load(); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Load error %v does not wrap ErrUnavailable", err)
		}
		testenv.Missing(t, "libturbojpeg.so.0 ("+err.Error()+")", "scripts/deps.d/image.sh")
	}
	data := jpegOf(t, 61, 35)
	h, err := DecodeHeader(data)
	if err != nil || h.Width != 61 || h.Height != 35 || h.Subsamp != 2 || h.Colorspace != 1 {
		t.Fatalf("header %+v, %v", h, err)
	}
	for _, n := range []int{1, 2, 4, 8} {
		pix, w, hh, err := DecodeRGBA(data, n, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if w != ScaledSize(61, n) || hh != ScaledSize(35, n) || len(pix) != w*hh*4 {
			t.Fatalf("1/%d: %dx%d, %d bytes", n, w, hh, len(pix))
		}
		// Compare with the standard library's decode at full size.
		if n == 1 {
			ref, _ := jpeg.Decode(bytes.NewReader(data))
			r, g, b, _ := ref.At(30, 20).RGBA()
			i := (20*w + 30) * 4
			for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				if d := int(pix[i+c]) - int(v); d > 3 || d < -3 {
					t.Fatalf("pixel channel %d = %d, image/jpeg %d", c, pix[i+c], v)
				}
			}
			if pix[i+3] != 255 {
				t.Fatal("alpha not 255")
			}
		}
	}
	if _, _, _, err := DecodeRGBA(data, 3, 0, 0); err == nil {
		t.Error("scale 1/3 accepted")
	}
	if _, _, _, err := DecodeRGBA(data, 1, 0, 100); err == nil {
		t.Error("pixel limit ignored")
	}
	for _, bad := range [][]byte{nil, []byte("not a jpeg"), data[:len(data)/3]} {
		if _, _, _, err := DecodeRGBA(bad, 1, 0, 0); err == nil {
			t.Errorf("malformed input of %d bytes decoded", len(bad))
		}
	}
}

// Handles that saw an error (malformed input, a size refused by choose) must not poison later
// decodes.
func TestErrorsDoNotPoisonHandles(t *testing.T) {
	if err := Load(); err != nil {
		testenv.Missing(t, "libturbojpeg.so.0 ("+err.Error()+")", "scripts/deps.d/image.sh")
	}
	good := jpegOf(t, 40, 24)
	refuse := errors.New("refused")
	for i := range 200 {
		switch i % 3 {
		case 0:
			_, _, _, _ = DecodeRGBA(good[:len(good)/2], 1, 0, 0)
		case 1:
			_, _, _, _ = Decode(good, 0, func(Header) (int, error) { return 0, refuse })
		}
		if _, w, h, err := DecodeRGBA(good, 2, 0, 0); err != nil || w != 20 || h != 12 {
			t.Fatalf("iteration %d: %dx%d %v", i, w, h, err)
		}
	}
}

// Concurrent decodes share the handle pool and give the same pixels as a sequential decode.
func TestConcurrentDecode(t *testing.T) {
	if err := Load(); err != nil {
		testenv.Missing(t, "libturbojpeg.so.0 ("+err.Error()+")", "scripts/deps.d/image.sh")
	}
	data := jpegOf(t, 64, 48)
	want, _, _, err := DecodeRGBA(data, 2, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				got, _, _, err := DecodeRGBA(data, 2, 0, 0)
				if err == nil && !bytes.Equal(got, want) {
					err = errors.New("pixels differ from the sequential decode")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
