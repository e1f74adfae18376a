package mmdata_test

import (
	"context"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
	"github.com/immkit/immkit/shards"
)

var (
	fixOnce sync.Once
	fix     *mmdatatest.Fixture
	fixErr  error
	fixDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// shapes returns the shared fixture: 40 shapes samples (32 px PNG, 1 s WAV, caption,
// colour-shape label) through ingest, encode (pixels, whisper-80, trained BPE) and shard.
func shapes(t testing.TB) *mmdatatest.Fixture {
	t.Helper()
	fixOnce.Do(func() {
		fixDir, fixErr = os.MkdirTemp("", "mmdata-test-")
		if fixErr == nil {
			fix, fixErr = mmdatatest.BuildShapes(context.Background(), fixDir, mmdatatest.Options{Seed: 7})
		}
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

// batches reads every sample of a split through the loader with the layout's options.
func batches(t testing.TB, l *mmdata.Layout, dir, split string) []*shards.Batch {
	t.Helper()
	ld, err := shards.NewLoader(dir, l.LoaderOptions(shards.LoaderOptions{Split: split, GlobalBatch: 8, Epochs: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	var out []*shards.Batch
	for {
		b, err := ld.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func readPNG(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

func nrgba(img *image.RGBA) *image.NRGBA {
	return &image.NRGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
}

// TestRoundTrip assembles every sample of both splits and decodes the particles: the
// pictures equal the corpus PNGs (pixels latents are lossless at 8 bits), the captions
// equal the corpus texts exactly, the waveforms equal Griffin-Lim run directly on the
// shards' mel (same seed) within float rounding, labels name the sample's directory, and
// the masks cover exactly the real coordinates.
func TestRoundTrip(t *testing.T) {
	f := shapes(t)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Segments); got != 3 {
		t.Fatalf("segments %+v, want image, audio, text", l.Segments)
	}
	img, aud, txt := l.Image, l.Audio, l.Text
	if img.C != 3 || img.H != 32 || img.W != 32 || aud.NMels != 80 || aud.Frames != 100 {
		t.Fatalf("image %dx%dx%d, mel %d x %d", img.C, img.H, img.W, aud.Frames, aud.NMels)
	}
	wantSeg := []int{64 * 48, 10 * 800, 16 * 16}
	for k, s := range l.Segments {
		if s.Tokens*s.Features != wantSeg[k] {
			t.Errorf("segment %s: %d x %d, want %d values", s.Name, s.Tokens, s.Features, wantSeg[k])
		}
	}
	if l.Dim() != 64*48+8000+256 {
		t.Fatalf("dim %d", l.Dim())
	}
	D := l.Dim()
	imgOff, _ := l.Offset(mmdata.Image)
	audOff, _ := l.Offset(mmdata.Audio)
	txtOff, _ := l.Offset(mmdata.Text)
	// The raw mel of every key, read independently of the layout.
	raw := readMels(t, f.Shards)
	seen := 0
	for _, split := range []string{shards.SplitTrain, shards.SplitVal} {
		for bi, b := range batches(t, l, f.Shards, split) {
			n := b.Len()
			x, mask := make([]float32, n*D), make([]float32, n*D)
			labels, err := l.Assemble(b, x, mask)
			if err != nil {
				t.Fatal(err)
			}
			// Griffin-Lim is slow: decode audio for the first batch of each split only.
			var mods []string
			if bi > 0 {
				mods = []string{mmdata.Image, mmdata.Text}
			}
			md, err := l.DecodeModalities(x, n, mods)
			if err != nil {
				t.Fatal(err)
			}
			if (md.Audio == nil) != (bi > 0) || len(md.Images) != n || md.Captions == nil {
				t.Fatalf("decoded %v: images %v audio %v captions %v", mods, md.Images != nil, md.Audio != nil, md.Captions != nil)
			}
			for i, key := range b.Keys {
				seen++
				dirName, _, _ := strings.Cut(key, "/")
				if labels[i] < 0 || int(labels[i]) >= l.Classes || l.Labels[labels[i]] != dirName {
					t.Errorf("%s: label %d (%v), want %s", key, labels[i], l.Labels, dirName)
				}
				orig := readPNG(t, filepath.Join(f.Corpus, key+".png"))
				psnr, err := imgenc.PSNR(orig, nrgba(md.Images[i]))
				if err != nil {
					t.Fatal(err)
				}
				if psnr < 50 {
					t.Errorf("%s: decoded picture PSNR %.1f dB against the corpus PNG, want >= 50", key, psnr)
				}
				caption, err := os.ReadFile(filepath.Join(f.Corpus, key+".txt"))
				if err != nil {
					t.Fatal(err)
				}
				if md.Captions[i] != string(caption) {
					t.Errorf("%s: caption %q, want %q", key, md.Captions[i], caption)
				}
				// masks
				p, m := x[i*D:(i+1)*D], mask[i*D:(i+1)*D]
				if c := count(m[imgOff:audOff]); c != audOff-imgOff {
					t.Errorf("%s: image mask has %d ones of %d", key, c, audOff-imgOff)
				}
				if c := count(m[audOff:txtOff]); c != 100*80 {
					t.Errorf("%s: audio mask has %d ones, want 8000", key, c)
				}
				nTok := int(b.Ints["text_len"][i])
				wantText := min(nTok+1, txt.Len) * txt.Dim
				if c := count(m[txtOff:]); c != wantText {
					t.Errorf("%s: text mask has %d ones, want %d (%d tokens + end)", key, c, wantText, nTok)
				}
				for j := txtOff + wantText; j < D; j++ {
					if m[j] != 0 || p[j] != 0 {
						t.Fatalf("%s: text padding coordinate %d: x %v mask %v, want 0, 0", key, j-txtOff, p[j], m[j])
					}
				}
				// audio: the layout's decode against Griffin-Lim of the shard's own mel
				if i < 2 && bi == 0 {
					// Griffin-Lim amplifies the float32 rounding of normalising and back
					// a little, so compare relative RMS and the spectra.
					ref := rawGriffinLim(t, aud, raw[key], uint64(i), l.Opts.GriffinLimIters)
					if d := relRMS(md.Audio[i], ref); d > 1e-2 {
						t.Errorf("%s: waveform differs from Griffin-Lim of the shard mel by relative RMS %g, want <= 1e-2", key, d)
					}
					if e := melError(t, aud, md.Audio[i], melOf(t, aud, ref)); e > 0.005 {
						t.Errorf("%s: mean |log-mel difference| to Griffin-Lim of the shard mel %g, want <= 0.005", key, e)
					}
					// and its log-mel is close to the shard's mel (the lossy part is Griffin-Lim)
					if e := melError(t, aud, md.Audio[i], raw[key]); e > 0.15 {
						t.Errorf("%s: mean |log-mel error| of the decoded clip %.3f, want <= 0.15", key, e)
					} else {
						t.Logf("%s: mean |log-mel error| of the decoded clip %.3f", key, e)
					}
				}
			}
		}
	}
	if seen != 40 {
		t.Fatalf("checked %d samples", seen)
	}
}

func count(m []float32) int {
	n := 0
	for _, v := range m {
		if v == 1 {
			n++
		} else if v != 0 {
			return -1
		}
	}
	return n
}

// relRMS is ||a-b|| / ||b||.
func relRMS(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// readMels reads key -> audio_mel (frame-major) of every shard with pqarrow.
func readMels(t testing.TB, dir string) map[string][]float32 {
	t.Helper()
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, s := range m.Shards {
		for k, v := range readColumn(t, filepath.Join(dir, s.Path), "audio_mel") {
			out[k] = v.([]float32)
		}
	}
	return out
}

// rawGriffinLim inverts a frame-major mel directly with encoders/audio.
func rawGriffinLim(t *testing.T, s *mmdata.AudioSegment, fm []float32, seed uint64, iters int) []float32 {
	t.Helper()
	m := &audio.Mel{Data: make([]float32, len(fm)), NMels: s.NMels, Frames: s.Frames, Config: s.Mel}
	for f := range s.Frames {
		for c := range s.NMels {
			m.Data[c*s.Frames+f] = fm[f*s.NMels+c]
		}
	}
	w, err := audio.GriffinLim(m, audio.GriffinLimOptions{Iters: iters, Momentum: 0.99, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// melOf is the whisper log-mel (frame-major) of wave padded to the clip length.
func melOf(t *testing.T, s *mmdata.AudioSegment, wave []float32) []float32 {
	t.Helper()
	bank, err := audio.NewMelBank(s.Mel)
	if err != nil {
		t.Fatal(err)
	}
	clip := make([]float32, s.Frames*s.Hop)
	copy(clip, wave)
	m, err := bank.Compute(clip)
	if err != nil {
		t.Fatal(err)
	}
	return m.FrameMajor()
}

// melError is the mean absolute difference between the whisper log-mel of wave (padded
// to the clip length) and want (frame-major).
func melError(t *testing.T, s *mmdata.AudioSegment, wave, want []float32) float64 {
	t.Helper()
	got := melOf(t, s, wave)
	if len(got) != len(want) {
		t.Fatalf("mel of %d values, want %d", len(got), len(want))
	}
	var e float64
	for i := range got {
		e += math.Abs(float64(got[i]) - float64(want[i]))
	}
	return e / float64(len(got))
}
