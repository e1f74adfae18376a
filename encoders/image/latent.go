package image

import (
	"fmt"
	"image"
	"math"
)

// Latent is a C×H×W float32 tensor, channel-major as PyTorch stores it:
// Data[(c*H + y)*W + x].
type Latent struct {
	C, H, W int
	Data    []float32
}

// NewLatent allocates a zero C×H×W latent.
func NewLatent(c, h, w int) Latent { return Latent{C: c, H: h, W: w, Data: make([]float32, c*h*w)} }

// Shape returns "C,H,W" as recorded in the Parquet field metadata.
func (l Latent) Shape() string { return fmt.Sprintf("%d,%d,%d", l.C, l.H, l.W) }

func (l Latent) check() error {
	if l.C <= 0 || l.H <= 0 || l.W <= 0 || len(l.Data) != l.C*l.H*l.W {
		return fmt.Errorf("image: latent %dx%dx%d with %d values", l.C, l.H, l.W, len(l.Data))
	}
	return nil
}

// Pixels is the identity latent: RGB as 3×H×W floats in [-1, 1], v = p/127.5 - 1, or with
// Gray one luma channel (1×H×W, the 8-bit luma of color.GrayModel, ITU-R BT.601 weights)
// for grey corpora such as MNIST, a third of the values of the RGB latent.
type Pixels struct {
	Gray bool
}

// Name and Version identify the encoder in manifests ("pixels@1").
func (Pixels) Name() string    { return "pixels" }
func (Pixels) Version() string { return "1" }

// Channels is the number of latent channels: 1 with Gray, else 3.
func (p Pixels) Channels() int {
	if p.Gray {
		return 1
	}
	return 3
}

// Encode converts an opaque picture to a 3×H×W latent (1×H×W with Gray).
func (p Pixels) Encode(img *image.NRGBA) Latent {
	b := img.Rect
	w, h := b.Dx(), b.Dy()
	l := NewLatent(p.Channels(), h, w)
	if p.Gray {
		for y := range h {
			row := img.Pix[y*img.Stride:]
			for x := range w {
				l.Data[y*w+x] = float32(luma(row[x*4:x*4+3]))/127.5 - 1
			}
		}
		return l
	}
	for y := range h {
		row := img.Pix[(y)*img.Stride:]
		for x := range w {
			for c := range 3 {
				l.Data[(c*h+y)*w+x] = float32(row[x*4+c])/127.5 - 1
			}
		}
	}
	return l
}

// Decode converts a 3×H×W (or 1×H×W grey) latent back to a picture, clamping to [-1, 1] and
// rounding to the nearest 8-bit level, so Decode(Encode(img)) == img.
func (Pixels) Decode(l Latent) (*image.NRGBA, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.C != 3 && l.C != 1 {
		return nil, fmt.Errorf("image: pixels latent needs 1 or 3 channels, got %d", l.C)
	}
	img := image.NewNRGBA(image.Rect(0, 0, l.W, l.H))
	for y := range l.H {
		for x := range l.W {
			i := img.PixOffset(x, y)
			for c := range 3 {
				src := c
				if l.C == 1 {
					src = 0
				}
				img.Pix[i+c] = toByte(l.Data[(src*l.H+y)*l.W+x])
			}
			img.Pix[i+3] = 255
		}
	}
	return img, nil
}

// luma is color.GrayModel's conversion of an 8-bit RGB pixel, in integer arithmetic on the
// 16-bit channel values (v*0x101) it uses, so a grey pixel keeps its value.
func luma(rgb []uint8) uint8 {
	r, g, b := uint32(rgb[0])*0x101, uint32(rgb[1])*0x101, uint32(rgb[2])*0x101
	return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 24)
}

// toByte maps [-1, 1] to 0..255 with rounding; NaN maps to 0.
func toByte(v float32) uint8 {
	f := (float64(v) + 1) * 127.5
	if !(f > 0) {
		return 0
	}
	if f >= 255 {
		return 255
	}
	return uint8(f + 0.5)
}

// LatentStats are per-channel statistics of latents over a sample, for normalising them to
// zero mean and unit variance before training: (v - Mean[c]) / Std[c].
type LatentStats struct {
	Mean []float32 // len C
	Std  []float32 // len C; at least 1e-6
}

// ComputeStats returns per-channel mean and (population) standard deviation, accumulated in
// float64. All latents must have the same channel count.
func ComputeStats(ls []Latent) (LatentStats, error) {
	if len(ls) == 0 {
		return LatentStats{}, fmt.Errorf("image: no latents for statistics")
	}
	C := ls[0].C
	sum := make([]float64, C)
	sq := make([]float64, C)
	var n float64
	for _, l := range ls {
		if err := l.check(); err != nil {
			return LatentStats{}, err
		}
		if l.C != C {
			return LatentStats{}, fmt.Errorf("image: latents with %d and %d channels", C, l.C)
		}
		hw := l.H * l.W
		for c := range C {
			for _, v := range l.Data[c*hw : (c+1)*hw] {
				sum[c] += float64(v)
				sq[c] += float64(v) * float64(v)
			}
		}
		n += float64(hw)
	}
	st := LatentStats{Mean: make([]float32, C), Std: make([]float32, C)}
	for c := range C {
		m := sum[c] / n
		st.Mean[c] = float32(m)
		st.Std[c] = float32(math.Max(math.Sqrt(math.Max(sq[c]/n-m*m, 0)), 1e-6))
	}
	return st, nil
}

// Normalize applies (v - Mean[c]) / Std[c] in place.
func (s LatentStats) Normalize(l Latent) error { return s.apply(l, false) }

// Denormalize applies v*Std[c] + Mean[c] in place.
func (s LatentStats) Denormalize(l Latent) error { return s.apply(l, true) }

func (s LatentStats) apply(l Latent, inverse bool) error {
	if err := l.check(); err != nil {
		return err
	}
	if len(s.Mean) != l.C || len(s.Std) != l.C {
		return fmt.Errorf("image: statistics for %d channels, latent has %d", len(s.Mean), l.C)
	}
	hw := l.H * l.W
	for c := range l.C {
		m, sd := s.Mean[c], s.Std[c]
		d := l.Data[c*hw : (c+1)*hw]
		for i := range d {
			if inverse {
				d[i] = d[i]*sd + m
			} else {
				d[i] = (d[i] - m) / sd
			}
		}
	}
	return nil
}

// PSNR is the peak signal-to-noise ratio in dB of b against a over RGB (peak 255);
// +Inf for identical pictures.
func PSNR(a, b *image.NRGBA) (float64, error) {
	if a.Rect.Size() != b.Rect.Size() {
		return 0, fmt.Errorf("image: PSNR of %v and %v", a.Rect.Size(), b.Rect.Size())
	}
	w, h := a.Rect.Dx(), a.Rect.Dy()
	var se float64
	for y := range h {
		ra := a.Pix[y*a.Stride:]
		rb := b.Pix[y*b.Stride:]
		for x := range w {
			for c := range 3 {
				d := float64(ra[x*4+c]) - float64(rb[x*4+c])
				se += d * d
			}
		}
	}
	mse := se / float64(3*w*h)
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(255*255/mse), nil
}
