package mmdata

import (
	"fmt"
	"image"
	"math"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
)

// Media are decoded particles: entry i of every slice is particle i.
type Media struct {
	// Images are the pictures of the image segment, one entry per particle: nil entries
	// when there is no image segment, it was not decoded, or its latents have no decoder
	// (external latents).
	Images []*image.RGBA
	// Audio are mono waveforms, AudioRate Hz, from the mel segment by Griffin-Lim
	// (nil when there is no audio segment): sample j of particle i is Audio[i][j].
	Audio     [][]float32
	AudioRate int
	// Captions are the texts of the text segment: nearest embedding per position up to the
	// first end token, detokenised (invalid UTF-8 replaced by U+FFFD); nil without text.
	Captions []string
}

// Decode turns n particles x (n*Dim values, as Assemble writes them) back into media.
// Image latents are denormalised and decoded by the shards' image encoder (values
// clamped to the 8-bit range), mels are denormalised and inverted by Griffin-Lim
// (GriffinLimIters iterations after the MelInvert mel-to-linear solve, seed = the particle's
// index), text vectors are decoded by
// nearest embedding. Clips are decoded on GOMAXPROCS goroutines.
func (l *Layout) Decode(x []float32, n int) (*Media, error) {
	return l.DecodeModalities(x, n, nil)
}

// DecodeModalities is Decode restricted to the named segments (nil means all): the media
// of the others stay nil. Griffin-Lim is the expensive part, so leaving audio out makes
// decoding many times faster.
func (l *Layout) DecodeModalities(x []float32, n int, mods []string) (*Media, error) {
	for _, m := range mods {
		if _, ok := l.Offset(m); !ok {
			return nil, fmt.Errorf("mmdata: decode %s: the layout has no such segment (it has %v)", m, l.Segments)
		}
	}
	use := func(m string) bool { return mods == nil || slices.Contains(mods, m) }
	D := l.Dim()
	if n < 0 || len(x) != n*D {
		return nil, fmt.Errorf("mmdata: decode %d particles of dim %d from %d values", n, D, len(x))
	}
	md := &Media{}
	for _, sg := range l.Segments {
		if !use(sg.Name) {
			continue
		}
		off, _ := l.Offset(sg.Name)
		for i := range n {
			for j, v := range x[i*D+off : i*D+off+sg.Tokens*sg.Features] {
				if v-v != 0 { // NaN or ±Inf
					return nil, fmt.Errorf("mmdata: decode: particle %d holds %v at %s value %d", i, v, sg.Name, j)
				}
			}
		}
	}
	img, aud, txt := l.Image, l.Audio, l.Text
	if !use(Image) {
		img = nil
	}
	if !use(Audio) {
		aud = nil
	}
	if !use(Text) {
		txt = nil
	}
	md.Images = make([]*image.RGBA, n) // nil entries unless decoded
	if aud != nil {
		md.Audio = make([][]float32, n)
		md.AudioRate = aud.SampleRate
	}
	if txt != nil {
		md.Captions = make([]string, n)
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		p := x[i*D : (i+1)*D]
		if s := img; s != nil && s.Decodable() {
			off, _ := l.Offset(Image)
			g.Go(func() error {
				img, err := s.decode(p[off:], l.Opts.SigmaD)
				if err != nil {
					return fmt.Errorf("mmdata: decode image of particle %d: %w", i, err)
				}
				md.Images[i] = img
				return nil
			})
		}
		if s := aud; s != nil {
			off, _ := l.Offset(Audio)
			g.Go(func() error {
				w, err := s.decode(p[off:], l.Opts.SigmaD, l.Opts.GriffinLimIters, audio.InvertMethod(l.Opts.MelInvert), uint64(i))
				if err != nil {
					return fmt.Errorf("mmdata: decode audio of particle %d: %w", i, err)
				}
				md.Audio[i] = w
				return nil
			})
		}
		if s := txt; s != nil {
			off, _ := l.Offset(Text)
			c, err := s.decode(p[off : off+s.Len*s.Dim])
			if err != nil {
				return nil, fmt.Errorf("mmdata: decode text of particle %d: %w", i, err)
			}
			md.Captions[i] = c
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return md, nil
}

// Latent returns the denormalised C x H x W latent of an image segment (Tokens*Features
// values at the segment's offset) of a latent encoder (not vq, see Codes).
func (s *ImageSegment) Latent(seg []float32, sigma float64) imgenc.Latent {
	lat := imgenc.NewLatent(s.C, s.H, s.W)
	s.unpatch(lat.Data, seg, sigma)
	return lat
}

func (s *ImageSegment) decode(seg []float32, sigma float64) (*image.RGBA, error) {
	if s.vq != nil {
		img, err := s.vq.Decode(imgenc.Tokens{H: s.H, W: s.W, IDs: s.Codes(seg, sigma)})
		if err != nil {
			return nil, err
		}
		return toRGBA(img), nil
	}
	lat := s.Latent(seg, sigma)
	var img *image.NRGBA
	var err error
	if s.pca != nil {
		img, err = s.pca.Decode(lat)
	} else {
		img, err = imgenc.Pixels{}.Decode(lat)
	}
	if err != nil {
		return nil, err
	}
	return toRGBA(img), nil
}

// toRGBA copies an opaque NRGBA picture (every alpha 255, as the decoders make) to RGBA;
// for opaque pixels the two layouts hold the same bytes.
func toRGBA(src *image.NRGBA) *image.RGBA {
	b := src.Rect
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		copy(out.Pix[y*out.Stride:y*out.Stride+4*b.Dx()], src.Pix[y*src.Stride:y*src.Stride+4*b.Dx()])
	}
	return out
}

// MelOf returns the denormalised mel of an audio segment (the values at the segment's
// offset), NMels x Frames row-major as audio.Mel holds it, each bin clamped to [Min, Max]
// when the segment has a range (Stats.AudioMin/AudioMax).
func (s *AudioSegment) MelOf(seg []float32, sigma float64) *audio.Mel {
	fm := make([]float32, s.Frames*s.NMels)
	s.ungroup(fm, seg, sigma)
	m := &audio.Mel{Data: make([]float32, len(fm)), NMels: s.NMels, Frames: s.Frames, Config: s.Mel}
	clamp := len(s.Min) == s.NMels && len(s.Max) == s.NMels
	for c := range s.NMels {
		lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
		if clamp {
			lo, hi = float32(s.Min[c]), float32(s.Max[c])
		}
		row := m.Data[c*s.Frames : (c+1)*s.Frames]
		for f := range row {
			row[f] = min(max(fm[f*s.NMels+c], lo), hi)
		}
	}
	return m
}

func (s *AudioSegment) decode(seg []float32, sigma float64, iters int, method audio.InvertMethod, seed uint64) ([]float32, error) {
	return audio.GriffinLim(s.MelOf(seg, sigma), audio.GriffinLimOptions{Iters: iters, Momentum: 0.99, Method: method, Seed: seed})
}

// IDs returns the token ids of a text segment (Len*Dim values): the nearest table row of
// every position, cut before the first end token.
func (s *TextSegment) IDs(seg []float32) ([]int32, error) {
	ids, err := s.Table.Decode(seg)
	if err != nil {
		return nil, err
	}
	for j, id := range ids {
		if id == s.End {
			return ids[:j], nil
		}
	}
	return ids, nil
}

func (s *TextSegment) decode(seg []float32) (string, error) {
	ids, err := s.IDs(seg)
	if err != nil {
		return "", err
	}
	var b []byte
	for _, id := range ids {
		b = append(b, s.enc.TokenBytes(id)...) // ids without bytes add nothing
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}
