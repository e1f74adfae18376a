package image

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // gif: first frame
	"image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/immkit/immkit/internal/turbojpeg"
)

// Limits bound what Decode accepts before it allocates pixel memory; they are the probe
// limits of ingest (ingest.ImageLimits, `immdata ingest --max-pixels`): pass the same numbers
// to both, so that what ingest accepted decodes here. Zero fields take the defaults.
type Limits struct {
	MaxBytes  int64 // encoded size; default 256 MiB
	MaxSide   int   // width or height; default 65535 (the JPEG maximum)
	MaxPixels int64 // width*height; default 100 000 000, ingest's --max-pixels default (400 MB as RGBA)
}

// DefaultLimits are the limits used where a field of Limits is zero.
var DefaultLimits = Limits{MaxBytes: 256 << 20, MaxSide: 65535, MaxPixels: 100_000_000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultLimits.MaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	return l
}

// JPEGBackend chooses how JPEG is decoded.
type JPEGBackend string

const (
	JPEGAuto  JPEGBackend = "auto"  // jpeg-dc at 1/8, else libturbojpeg when it loads, else pure Go
	JPEGTurbo JPEGBackend = "turbo" // libturbojpeg or an error
	JPEGGo    JPEGBackend = "go"    // image/jpeg plus a box reduction for the DCT scale
	// JPEGDC is the jpeg-dc path alone (baseline JPEG at scale 1/8, from the DCT
	// coefficients, pure Go, jpegdc.go) or an error; auto tries it first at scale 1/8.
	JPEGDC JPEGBackend = "dc"
)

// Paths reported in Decoded.Path.
const (
	PathTurbo = "turbojpeg"
	PathGo    = "go"
	PathDC    = "jpeg-dc" // baseline JPEG at 1/8 from its DCT coefficients (jpegdc.go)
)

// Errors returned by Decode; wrapped with detail.
var (
	ErrTooLarge = errors.New("image: exceeds decode limits")
	ErrFormat   = errors.New("image: unknown or malformed image")
)

// Decoder decodes images to opaque RGB. The zero value is usable: default limits, EXIF
// orientation applied, alpha composited on black, JPEG backend auto.
type Decoder struct {
	Limits     Limits
	Background color.NRGBA // alpha is composited on this colour (its own alpha is ignored)
	IgnoreEXIF bool        // do not apply the EXIF orientation
	JPEG       JPEGBackend // "" means auto
}

// Decoded is a decoded picture and how it was obtained.
type Decoded struct {
	// Image is opaque (every alpha byte 255), origin (0,0):
	// Pix[y*Stride + x*4 + c], c = R, G, B, A.
	Image *image.NRGBA
	// Format is the name the format registered with image.RegisterFormat ("jpeg", "png", ...).
	Format string
	// Width, Height: size stored in the file, before orientation and scaling.
	Width, Height int
	// Orientation is the EXIF orientation (1..8) found, 1 when none; it has been applied
	// unless Decoder.IgnoreEXIF.
	Orientation int
	// Scale is the DCT-domain reduction (1, 2, 4, 8) applied to a JPEG: each side of Image
	// (before orientation) is ceil(side/Scale).
	Scale int
	// Path is PathTurbo or PathGo; for JPEG, TurboErr says why the turbo path was not used.
	Path     string
	TurboErr error
}

// TurboJPEG reports whether the libjpeg-turbo path is usable in this process: nil, or an
// error wrapping turbojpeg.ErrUnavailable that says why (library not installed, built without
// cgo). Commands print it once so users know which JPEG path their run takes.
func TurboJPEG() error { return turbojpeg.Load() }

// Decode decodes data with reduction 1 (full size). See Decoder.DecodeScaled.
func (d *Decoder) Decode(data []byte) (*Decoded, error) { return d.DecodeScaled(data, 1) }

// DecodeScaled decodes data; a JPEG is reduced by maxScale (1, 2, 4, 8: the largest DCT
// reduction the caller can accept), by libjpeg-turbo in the DCT domain or, on the pure-Go
// path, by averaging maxScale×maxScale blocks of the full decode, so both paths give the
// same geometry: ceil(w/maxScale) × ceil(h/maxScale). Other formats ignore maxScale.
// Malformed input gives an error wrapping ErrFormat, oversized input ErrTooLarge; a panic
// inside a third-party decoder is recovered and returned as an ErrFormat error.
func (d *Decoder) DecodeScaled(data []byte, maxScale int) (*Decoded, error) {
	switch maxScale {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("image: scale 1/%d not supported (want 1, 2, 4, 8)", maxScale)
	}
	return d.decode(data, func(int, int) int { return maxScale })
}

// decode decodes data; scale receives the upright size (after EXIF orientation) and returns
// the JPEG reduction to use.
func (d *Decoder) decode(data []byte, scale func(w, h int) int) (out *Decoded, err error) {
	lim := d.Limits.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrFormat, r)
		}
	}()
	orientation := 1
	if !d.IgnoreEXIF {
		orientation = Orientation(data)
	}
	checkSize := func(format string, w, h int) error {
		if w <= 0 || h <= 0 || w > lim.MaxSide || h > lim.MaxSide || int64(w)*int64(h) > lim.MaxPixels {
			return fmt.Errorf("%w: %s %dx%d (max side %d, max pixels %d)", ErrTooLarge, format, w, h, lim.MaxSide, lim.MaxPixels)
		}
		return nil
	}
	upright := func(w, h int) (int, int) {
		if orientation >= 5 {
			return h, w
		}
		return w, h
	}
	backend := d.JPEG
	if backend == "" {
		backend = JPEGAuto
	}
	var turboErr error
	isJPEG := len(data) > 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF
	if (backend == JPEGAuto || backend == JPEGDC) && isJPEG {
		// jpeg-dc: at scale 1/8 the picture comes from the DC coefficients (and 4:2:0 chroma's
		// first AC terms), computed as libjpeg-turbo computes it (bit for bit), in pure Go and
		// faster, since the AC terms libjpeg would decode and discard are only stepped over.
		// Anything it does not handle falls through to libjpeg-turbo, then image/jpeg.
		out = &Decoded{Format: "jpeg", Orientation: orientation, Path: PathDC}
		img, err := decodeJPEGDC(data, func(w, h int) error {
			out.Width, out.Height = w, h
			if err := checkSize("jpeg", w, h); err != nil {
				return err
			}
			if out.Scale = scale(upright(w, h)); out.Scale != 8 {
				return errDCUnsupported
			}
			return nil
		})
		switch {
		case err == nil:
			out.Image = Orient(img, orientation)
			return out, nil
		case errors.Is(err, ErrTooLarge):
			return nil, err
		case backend == JPEGDC:
			if errors.Is(err, errDCUnsupported) {
				return nil, fmt.Errorf("%w: jpeg: %v", ErrFormat, err)
			}
			return nil, err
		}
	}
	if backend != JPEGGo && backend != JPEGDC && isJPEG {
		// Fast path: libjpeg-turbo parses the header once, the limits are checked on it, and
		// the DCT-domain reduction is chosen before any pixel memory is allocated.
		out = &Decoded{Format: "jpeg", Orientation: orientation, Path: PathTurbo}
		pix, w, h, err := turbojpeg.Decode(data, 0, func(hdr turbojpeg.Header) (int, error) {
			out.Width, out.Height = hdr.Width, hdr.Height
			if err := checkSize("jpeg", hdr.Width, hdr.Height); err != nil {
				return 0, err
			}
			out.Scale = scale(upright(hdr.Width, hdr.Height))
			return out.Scale, nil
		})
		switch {
		case err == nil:
			out.Image = Orient(&image.NRGBA{Pix: pix, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}, orientation)
			return out, nil
		case errors.Is(err, ErrTooLarge):
			return nil, err
		case backend == JPEGTurbo:
			return nil, fmt.Errorf("%w: jpeg: %v", ErrFormat, err)
		}
		turboErr = err // fall back to the pure-Go decoder below
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if err := checkSize(format, cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	out = &Decoded{Format: format, Width: cfg.Width, Height: cfg.Height, Orientation: orientation, Scale: 1, Path: PathGo, TurboErr: turboErr}
	switch {
	case format == "jpeg" && backend == JPEGTurbo:
		return nil, fmt.Errorf("%w: jpeg: turbojpeg backend requested but the input is not a plain JPEG stream", ErrFormat)
	case format == "jpeg":
		out.Scale = scale(upright(cfg.Width, cfg.Height))
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: jpeg: %v", ErrFormat, err)
		}
		if ycc, ok := img.(*image.YCbCr); ok && out.Scale > 1 {
			out.Image = reduceYCbCr(ycc, out.Scale)
		} else {
			out.Image = BoxReduce(toOpaque(img, d.Background), out.Scale)
		}
	default:
		img, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrFormat, format, err)
		}
		if screen := image.Rect(0, 0, cfg.Width, cfg.Height); img.Bounds() != screen {
			// A GIF's first frame may cover part of the logical screen the header
			// declares: draw it at its offset on a transparent screen (then the background),
			// as browsers and Pillow show it.
			canvas := image.NewNRGBA(screen)
			draw.Draw(canvas, img.Bounds().Intersect(screen), img, img.Bounds().Intersect(screen).Min, draw.Src)
			img = canvas
		}
		out.Image = toOpaque(img, d.Background)
	}
	out.Image = Orient(out.Image, out.Orientation)
	return out, nil
}

// toOpaque converts any image to an opaque NRGBA at origin (0,0), compositing alpha over bg.
func toOpaque(img image.Image, bg color.NRGBA) *image.NRGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src) // premultiplied 8-bit
	// Composite: out = c + (1-a)·bg, in premultiplied terms.
	br, bgg, bb := uint32(bg.R), uint32(bg.G), uint32(bg.B)
	for i := 0; i+3 < len(dst.Pix); i += 4 {
		p := dst.Pix[i : i+4 : i+4]
		if a := uint32(p[3]); a != 255 {
			k := 255 - a
			p[0] = uint8(uint32(p[0]) + (k*br+127)/255)
			p[1] = uint8(uint32(p[1]) + (k*bgg+127)/255)
			p[2] = uint8(uint32(p[2]) + (k*bb+127)/255)
			p[3] = 255
		}
	}
	return (*image.NRGBA)(dst) // opaque: premultiplied and straight alpha coincide
}

// BoxReduce averages n×n blocks (n ≥ 1); the result is ceil(w/n) × ceil(h/n), edge blocks
// averaging the pixels they cover. It is the pure-Go stand-in for DCT-domain scaling.
func BoxReduce(src *image.NRGBA, n int) *image.NRGBA {
	if n <= 1 {
		return src
	}
	b := src.Rect
	sw, sh := b.Dx(), b.Dy()
	w, h := (sw+n-1)/n, (sh+n-1)/n
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	acc := make([]uint32, w*4)
	for by := 0; by < h; by++ {
		clear(acc)
		y0, y1 := by*n, min(by*n+n, sh)
		for y := y0; y < y1; y++ {
			row := src.Pix[(y)*src.Stride : (y)*src.Stride+sw*4]
			for x := 0; x < sw; x++ {
				a := acc[(x/n)*4 : (x/n)*4+4 : (x/n)*4+4]
				p := row[x*4 : x*4+4 : x*4+4]
				a[0] += uint32(p[0])
				a[1] += uint32(p[1])
				a[2] += uint32(p[2])
				a[3] += uint32(p[3])
			}
		}
		drow := dst.Pix[by*dst.Stride:]
		for bx := 0; bx < w; bx++ {
			cnt := uint32((min(bx*n+n, sw) - bx*n) * (y1 - y0))
			for c := 0; c < 4; c++ {
				drow[bx*4+c] = uint8((acc[bx*4+c] + cnt/2) / cnt)
			}
		}
	}
	return dst
}

// reduceYCbCr box-reduces the Y, Cb, Cr planes by n and converts to RGB: the chroma planes
// are averaged over the same source area as luma, so the result equals (up to rounding)
// converting first and reducing after, at a fraction of the cost.
func reduceYCbCr(src *image.YCbCr, n int) *image.NRGBA {
	b := src.Rect
	sw, sh := b.Dx(), b.Dy()
	w, h := (sw+n-1)/n, (sh+n-1)/n
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	ay := make([]uint32, w)
	acb := make([]uint32, w)
	acr := make([]uint32, w)
	// Horizontal chroma subsampling shift: chroma column of luma column x is x>>cs.
	cs := 0
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		cs = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		cs = 2
	}
	for by := 0; by < h; by++ {
		clear(ay)
		clear(acb)
		clear(acr)
		y0, y1 := by*n, min(by*n+n, sh)
		for y := y0; y < y1; y++ {
			yrow := src.Y[src.YOffset(b.Min.X, b.Min.Y+y):]
			c0 := src.COffset(b.Min.X, b.Min.Y+y)
			cb, cr := src.Cb[c0:], src.Cr[c0:]
			cx0 := b.Min.X >> cs
			for x := 0; x < sw; x++ {
				cx := ((b.Min.X + x) >> cs) - cx0
				k := x / n
				ay[k] += uint32(yrow[x])
				acb[k] += uint32(cb[cx])
				acr[k] += uint32(cr[cx])
			}
		}
		drow := dst.Pix[by*dst.Stride:]
		for bx := 0; bx < w; bx++ {
			cnt := uint32((min(bx*n+n, sw) - bx*n) * (y1 - y0))
			r, g, bl := color.YCbCrToRGB(uint8((ay[bx]+cnt/2)/cnt), uint8((acb[bx]+cnt/2)/cnt), uint8((acr[bx]+cnt/2)/cnt))
			drow[bx*4], drow[bx*4+1], drow[bx*4+2], drow[bx*4+3] = r, g, bl, 255
		}
	}
	return dst
}
