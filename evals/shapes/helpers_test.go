package shapes_test

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/testdata/gen"
)

// corpus renders n samples of the shapes corpus in memory.
func corpus(t testing.TB, o gen.Options, n int) []gen.SampleFiles {
	t.Helper()
	out := make([]gen.SampleFiles, n)
	for i := range out {
		s, err := o.Render(i)
		if err != nil {
			t.Fatalf("render sample %d: %v", i, err)
		}
		out[i] = s
	}
	return out
}

// imageAt is what a generative model's image decoder produces from a sample: the corpus
// file decoded, resized to size x size (center-crop, lanczos, as immdata encode), encoded
// as pixel latents, optionally perturbed by Gaussian noise of standard deviation sigma in
// latent units (pixel values in [-1, 1]), and decoded back to a picture.
func imageAt(t testing.TB, file []byte, size int, sigma float64, r *rand.Rand) image.Image {
	t.Helper()
	var dec imgenc.Decoder
	d, err := dec.Decode(file)
	if err != nil {
		t.Fatalf("decode image: %v", err)
	}
	small, err := imgenc.Resizer{Width: size, Height: size, Mode: imgenc.CenterCrop, Filter: "lanczos"}.Resize(d.Image)
	if err != nil {
		t.Fatalf("resize to %d: %v", size, err)
	}
	l := imgenc.Pixels{}.Encode(small)
	if sigma > 0 {
		for i := range l.Data {
			l.Data[i] += float32(sigma * r.NormFloat64())
		}
	}
	out, err := imgenc.Pixels{}.Decode(l)
	if err != nil {
		t.Fatalf("decode latent: %v", err)
	}
	return out
}

// audioAt is what the generative model's audio decoder produces from a sample: the WAV
// decoded to mono at 16 kHz, cut or zero-padded to clip seconds (as immdata encode), turned
// into the preset's log-mel spectrogram, optionally perturbed by Gaussian noise of standard
// deviation sigma in log-mel units, and inverted by Griffin-Lim.
func audioAt(t testing.TB, file []byte, preset string, clip, sigma float64, r *rand.Rand) ([]float32, int) {
	t.Helper()
	a, err := audio.Decode(file)
	if err != nil {
		t.Fatalf("decode audio: %v", err)
	}
	c, err := audio.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rate != c.SampleRate {
		if a, err = a.Resample(c.SampleRate); err != nil {
			t.Fatal(err)
		}
	}
	x := a.Mono()
	n := int(math.Round(clip * float64(c.SampleRate)))
	x = append(x[:min(n, len(x)):min(n, len(x))], make([]float32, max(n-len(x), 0))...)
	m, err := audio.MelSpectrogram(x, c)
	if err != nil {
		t.Fatalf("mel: %v", err)
	}
	if sigma > 0 {
		for i := range m.Data {
			m.Data[i] += float32(sigma * r.NormFloat64())
		}
	}
	w, err := audio.GriffinLim(m, audio.GriffinLimOptions{Seed: 1})
	if err != nil {
		t.Fatalf("griffin-lim: %v", err)
	}
	return w, c.SampleRate
}
