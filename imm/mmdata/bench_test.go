package mmdata_test

import (
	"testing"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/shards"
)

// BenchmarkAssemble measures Assemble of a batch of 8 shapes samples (32 px pixels,
// whisper-80 mel, 16 text positions; bytes = particle values written), against copying
// the batch's latent and mel values once (the memory-bound floor, "copy").
func BenchmarkAssemble(b *testing.B) {
	f := shapes(b)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		b.Fatal(err)
	}
	bt := batches(b, l, f.Shards, shards.SplitTrain)[0]
	D := l.Dim()
	x, mask := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
	b.Run("assemble", func(b *testing.B) {
		b.SetBytes(int64(len(x) * 4))
		for b.Loop() {
			if _, err := l.Assemble(bt, x, mask); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bt.Len())/1e3, "us/sample")
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(x) * 4))
		lat := bt.Latents["image_latent"].Data
		mel := readMels(b, f.Shards)
		for b.Loop() {
			n := copy(x, lat)
			for _, k := range bt.Keys {
				n += copy(x[n:], mel[k])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bt.Len())/1e3, "us/sample")
	})
}

// BenchmarkDecode measures decoding one particle per modality, against the encoders'
// own decoders on the shard's values (peer-image: image.Pixels.Decode of the latent,
// peer-audio: audio.GriffinLim of the mel with the same options).
func BenchmarkDecode(b *testing.B) {
	f := shapes(b)
	for _, c := range []struct {
		name, mod, invert string
	}{{"image", mmdata.Image, ""}, {"text", mmdata.Text, ""}, {"audio-nnls", mmdata.Audio, "nnls"}, {"audio-pinv", mmdata.Audio, "pinv"}} {
		l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, MelInvert: c.invert})
		if err != nil {
			b.Fatal(err)
		}
		bt := batches(b, l, f.Shards, shards.SplitTrain)[0]
		D := l.Dim()
		x, mask := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
		if _, err := l.Assemble(bt, x, mask); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := l.DecodeModalities(x[:D], 1, []string{c.mod}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/particle")
		})
		switch c.mod {
		case mmdata.Image:
			b.Run("peer-image", func(b *testing.B) {
				lat := bt.Latents["image_latent"]
				for b.Loop() {
					if _, err := (imgenc.Pixels{}).Decode(imgenc.Latent{C: 3, H: 32, W: 32, Data: lat.Data[:lat.Size]}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/particle")
			})
		case mmdata.Audio:
			b.Run("peer-"+c.name, func(b *testing.B) {
				s := l.Audio
				fm := readMels(b, f.Shards)[bt.Keys[0]]
				m := &audio.Mel{Data: make([]float32, len(fm)), NMels: s.NMels, Frames: s.Frames, Config: s.Mel}
				for fr := range s.Frames {
					for ch := range s.NMels {
						m.Data[ch*s.Frames+fr] = fm[fr*s.NMels+ch]
					}
				}
				for b.Loop() {
					if _, err := audio.GriffinLim(m, audio.GriffinLimOptions{Iters: l.Opts.GriffinLimIters, Momentum: 0.99, Method: audio.InvertMethod(c.invert)}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/particle")
			})
		}
	}
}
