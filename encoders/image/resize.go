package image

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
	"strings"

	"github.com/disintegration/imaging"
)

// Mode is how a picture is fitted to the target size, with img2dataset's meanings.
type Mode string

const (
	// CenterCrop scales so the picture covers Width×Height and crops the centre (default).
	CenterCrop Mode = "center-crop"
	// KeepRatio scales so the picture covers Width×Height without cropping: for a square
	// target the shorter side becomes the target size; the output is not square in general.
	KeepRatio Mode = "keep-ratio"
	// Pad scales so the picture fits inside Width×Height and letterboxes it, centred, on the
	// background colour.
	Pad Mode = "pad"
)

// ParseMode accepts "center-crop" (or ""), "keep-ratio", "pad".
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", CenterCrop:
		return CenterCrop, nil
	case KeepRatio, Pad:
		return Mode(s), nil
	}
	return "", fmt.Errorf("image: unknown resize mode %q (want center-crop, keep-ratio, pad)", s)
}

// Filters are the resampling filters by name; DefaultFilter is an antialiasing Lanczos-3
// (the kernel is stretched by the scale factor when downscaling, as in Pillow).
var Filters = map[string]imaging.ResampleFilter{
	"lanczos":     imaging.Lanczos,
	"catmull-rom": imaging.CatmullRom,
	"mitchell":    imaging.MitchellNetravali,
	"bicubic":     imaging.CatmullRom,
	"linear":      imaging.Linear,
	"box":         imaging.Box,
	"gaussian":    imaging.Gaussian,
	"nearest":     imaging.NearestNeighbor,
}

// DefaultFilter is the filter used when Resizer.Filter is empty.
const DefaultFilter = "lanczos"

// FilterNames lists the accepted filter names, sorted.
func FilterNames() []string {
	var n []string
	for k := range Filters {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Resizer fits pictures to a target size.
type Resizer struct {
	Width, Height int
	Mode          Mode        // "" means CenterCrop
	Filter        string      // a key of Filters; "" means DefaultFilter
	Background    color.NRGBA // Pad's border colour (alpha ignored)
}

// Validate checks the size, mode and filter.
func (r Resizer) Validate() error {
	if r.Width <= 0 || r.Height <= 0 || r.Width > 1<<15 || r.Height > 1<<15 {
		return fmt.Errorf("image: target size %dx%d out of range", r.Width, r.Height)
	}
	if _, err := ParseMode(string(r.Mode)); err != nil {
		return err
	}
	if _, err := r.filter(); err != nil {
		return err
	}
	return nil
}

func (r Resizer) filter() (imaging.ResampleFilter, error) {
	name := r.Filter
	if name == "" {
		name = DefaultFilter
	}
	f, ok := Filters[strings.ToLower(name)]
	if !ok {
		return f, fmt.Errorf("image: unknown filter %q (want one of %s)", r.Filter, strings.Join(FilterNames(), ", "))
	}
	return f, nil
}

// Geometry says what Resize does to a sw×sh picture: the source rectangle crop is resampled
// to size and drawn at offset on a canvas of canvas size (canvas = size except for Pad).
type Geometry struct {
	Crop   image.Rectangle
	Size   image.Point
	Offset image.Point
	Canvas image.Point
}

// Geometry computes the crop, scaled size and placement for a sw×sh source.
func (r Resizer) Geometry(sw, sh int) Geometry {
	W, H := r.Width, r.Height
	full := image.Rect(0, 0, sw, sh)
	switch mode, _ := ParseMode(string(r.Mode)); mode {
	case KeepRatio:
		s := math.Max(float64(W)/float64(sw), float64(H)/float64(sh))
		sz := image.Pt(roundPos(float64(sw)*s), roundPos(float64(sh)*s))
		return Geometry{Crop: full, Size: sz, Canvas: sz}
	case Pad:
		s := math.Min(float64(W)/float64(sw), float64(H)/float64(sh))
		sz := image.Pt(min(W, roundPos(float64(sw)*s)), min(H, roundPos(float64(sh)*s)))
		return Geometry{Crop: full, Size: sz, Offset: image.Pt((W-sz.X)/2, (H-sz.Y)/2), Canvas: image.Pt(W, H)}
	default: // CenterCrop: the largest centred region with the target's aspect ratio
		cw, ch := sw, sh
		if int64(sw)*int64(H) > int64(sh)*int64(W) { // source wider than target
			cw = min(sw, roundPos(float64(sh)*float64(W)/float64(H)))
		} else {
			ch = min(sh, roundPos(float64(sw)*float64(H)/float64(W)))
		}
		x0, y0 := (sw-cw)/2, (sh-ch)/2
		return Geometry{Crop: image.Rect(x0, y0, x0+cw, y0+ch), Size: image.Pt(W, H), Canvas: image.Pt(W, H)}
	}
}

func roundPos(v float64) int { return max(1, int(math.Floor(v+0.5))) }

// MaxScale is the largest DCT reduction n in {1, 2, 4, 8} that still leaves the picture at
// least as large as needed, so that resizing after the reduction only downsamples.
func (r Resizer) MaxScale(sw, sh int) int {
	var s float64 // output pixels per source pixel
	if mode, _ := ParseMode(string(r.Mode)); mode == Pad {
		s = math.Min(float64(r.Width)/float64(sw), float64(r.Height)/float64(sh))
	} else {
		s = math.Max(float64(r.Width)/float64(sw), float64(r.Height)/float64(sh))
	}
	for _, n := range []int{8, 4, 2} {
		if float64(n)*s <= 1 {
			return n
		}
	}
	return 1
}

// Resize fits img to the target. The result is opaque, origin (0,0), and of size
// Width×Height (KeepRatio: the covering size of Geometry).
func (r Resizer) Resize(img *image.NRGBA) (*image.NRGBA, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	f, _ := r.filter()
	b := img.Bounds()
	g := r.Geometry(b.Dx(), b.Dy())
	src := img.SubImage(g.Crop.Add(b.Min))
	var out *image.NRGBA
	if g.Crop.Dx() == g.Size.X && g.Crop.Dy() == g.Size.Y {
		out = copyNRGBA(src.(*image.NRGBA))
	} else {
		out = imaging.Resize(src, g.Size.X, g.Size.Y, f)
	}
	if g.Canvas == g.Size {
		return out, nil
	}
	bg := r.Background
	bg.A = 255
	canvas := imaging.New(g.Canvas.X, g.Canvas.Y, bg)
	return imaging.Paste(canvas, out, g.Offset), nil
}

// Pipeline decodes and resizes in one step, choosing the JPEG DCT reduction from the target
// (libjpeg-turbo, or the equivalent box reduction on the pure-Go path).
type Pipeline struct {
	Decoder Decoder
	Resizer Resizer
}

// Load decodes data and fits it to the target. The Decoded value reports the format, the
// orientation applied, the DCT reduction and the JPEG path used. When the decoded picture
// already has the target size and needs no crop (e.g. a 512×512 JPEG decoded at 1/8 for a
// 64×64 target), the returned picture is Decoded.Image itself, not a copy.
func (p *Pipeline) Load(data []byte) (*image.NRGBA, *Decoded, error) {
	if err := p.Resizer.Validate(); err != nil {
		return nil, nil, err
	}
	d, err := p.Decoder.decode(data, func(w, h int) int { return p.Resizer.MaxScale(w, h) })
	if err != nil {
		return nil, nil, err
	}
	if b := d.Image.Rect; b.Min == (image.Point{}) {
		if g := p.Resizer.Geometry(b.Dx(), b.Dy()); g.Crop == b && g.Size == b.Size() && g.Canvas == g.Size {
			return d.Image, d, nil // Resize would only copy it
		}
	}
	out, err := p.Resizer.Resize(d.Image)
	if err != nil {
		return nil, nil, err
	}
	return out, d, nil
}

// copyNRGBA copies img to a new picture at origin (0,0).
func copyNRGBA(img *image.NRGBA) *image.NRGBA {
	b := img.Rect
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		i := img.PixOffset(b.Min.X, b.Min.Y+y)
		copy(out.Pix[y*out.Stride:(y+1)*out.Stride], img.Pix[i:i+4*b.Dx()])
	}
	return out
}
