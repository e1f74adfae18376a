package audio

import (
	"fmt"
	"math"
)

// MelBank computes mel spectrograms for one configuration: it holds the window, the
// sparse filter bank and the FFT plan. It is safe for concurrent use.
type MelBank struct {
	cfg    MelConfig
	window []float64 // NFFT values, the Hann window centred and zero-padded
	// filters in sparse form: channel m has weights filt[m] for bins first[m]...
	first []int
	filt  [][]float64
	dense []float64 // MelFilters(cfg), NMels x (NFFT/2+1)
	fft   *realFFT
}

// NewMelBank validates c and prepares its filters, window and FFT.
func NewMelBank(c MelConfig) (*MelBank, error) {
	dense, err := MelFilters(c)
	if err != nil {
		return nil, err
	}
	b := &MelBank{cfg: c, dense: dense, fft: newRealFFT(c.NFFT)}
	wl := c.winLength()
	b.window = make([]float64, c.NFFT)
	off := (c.NFFT - wl) / 2
	for i := 0; i < wl; i++ {
		b.window[off+i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(wl))
	}
	nBins := c.NFFT/2 + 1
	b.first = make([]int, c.NMels)
	b.filt = make([][]float64, c.NMels)
	for m := 0; m < c.NMels; m++ {
		row := dense[m*nBins : (m+1)*nBins]
		lo, hi := 0, -1
		for k, v := range row {
			if v != 0 {
				if hi < 0 {
					lo = k
				}
				hi = k
			}
		}
		b.first[m] = lo
		b.filt[m] = row[lo : hi+1]
	}
	return b, nil
}

// Config returns the configuration.
func (b *MelBank) Config() MelConfig { return b.cfg }

// Filters returns the dense filter bank (see MelFilters); do not modify it.
func (b *MelBank) Filters() []float64 { return b.dense }

// MelSpectrogram computes the mel spectrogram of mono samples x (at c.SampleRate) with a
// new MelBank. Reuse a MelBank for many inputs.
func MelSpectrogram(x []float32, c MelConfig) (*Mel, error) {
	b, err := NewMelBank(c)
	if err != nil {
		return nil, err
	}
	return b.Compute(x)
}

// Compute returns the (log-)mel spectrogram of mono samples x. All arithmetic is float64;
// the result is rounded to float32 once.
func (b *MelBank) Compute(x []float32) (*Mel, error) {
	c := &b.cfg
	frames, err := c.NumFrames(len(x))
	if err != nil {
		return nil, err
	}
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return nil, fmt.Errorf("audio: mel: sample %d is %v", i, v)
		}
	}
	nfft := c.NFFT
	nBins := nfft/2 + 1
	pad := 0
	if c.Center {
		pad = nfft / 2
	}
	out := make([]float32, c.NMels*frames)
	frame := make([]float64, nfft)
	spec := make([]float64, nBins)
	scratch := b.fft.newScratch()
	// Frames are processed in blocks so that each mel row of the output is written in
	// runs of melBlock contiguous values instead of one strided value per frame.
	const melBlock = 64
	blk := make([]float64, c.NMels*melBlock)
	logMax := math.Inf(-1)
	amin := c.amin()
	n := len(x)
	for f0 := 0; f0 < frames; f0 += melBlock {
		nb := min(melBlock, frames-f0)
		for fi := 0; fi < nb; fi++ {
			start := (f0+fi)*c.Hop - pad
			if start >= 0 && start+nfft <= n {
				seg := x[start : start+nfft]
				for i, w := range b.window {
					frame[i] = float64(seg[i]) * w
				}
			} else {
				for i, w := range b.window {
					frame[i] = b.paddedSample(x, start+i) * w
				}
			}
			b.fft.power(spec, frame, scratch)
			if c.Power != 2 {
				p := c.Power / 2
				for k, v := range spec {
					if p == 0.5 {
						spec[k] = math.Sqrt(v)
					} else {
						spec[k] = math.Pow(v, p)
					}
				}
			}
			for m, w := range b.filt {
				s := spec[b.first[m] : b.first[m]+len(w)]
				var acc float64
				for k, v := range w {
					acc += v * s[k]
				}
				blk[m*melBlock+fi] = acc
			}
		}
		for m := 0; m < c.NMels; m++ {
			row := out[m*frames+f0 : m*frames+f0+nb]
			src := blk[m*melBlock : m*melBlock+nb]
			switch c.Log {
			case LogNone:
				for i, v := range src {
					row[i] = float32(v)
				}
			case LogWhisper:
				for i, v := range src {
					y := fastLn(max(v, 1e-10)) * (1 / math.Ln10)
					logMax = max(logMax, y)
					row[i] = float32(y)
				}
			case LogDB:
				for i, v := range src {
					y := fastLn(max(v, amin)) * (10 / math.Ln10)
					logMax = max(logMax, y)
					row[i] = float32(y)
				}
			case LogLn:
				for i, v := range src {
					row[i] = float32(fastLn(max(v, amin)))
				}
			}
		}
	}
	switch c.Log {
	case LogWhisper:
		floor := float32(logMax - 8)
		for i, v := range out {
			if v < floor {
				v = floor
			}
			out[i] = (v + 4) / 4
		}
	case LogDB:
		if c.TopDB > 0 {
			floor := float32(logMax - c.TopDB)
			for i, v := range out {
				if v < floor {
					out[i] = floor
				}
			}
		}
	}
	return &Mel{Data: out, NMels: c.NMels, Frames: frames, Config: *c}, nil
}

// paddedSample returns sample i of the centred, padded signal's coordinates shifted so
// that 0 is x[0]: reflect mirrors around the edge samples, constant gives zero.
func (b *MelBank) paddedSample(x []float32, i int) float64 {
	n := len(x)
	if i >= 0 && i < n {
		return float64(x[i])
	}
	if b.cfg.PadMode == PadConstant || !b.cfg.Center {
		return 0
	}
	if i < 0 {
		i = -i
	} else {
		i = 2*(n-1) - i
	}
	if i < 0 || i >= n {
		return 0
	}
	return float64(x[i])
}

// ComputeAudio mixes a down to mono, resamples it to the configuration's rate and returns
// its mel spectrogram: the path from Decode to the audio_mel column.
func (b *MelBank) ComputeAudio(a *Audio) (*Mel, error) {
	x, err := Resample(a.Mono(), a.Rate, b.cfg.SampleRate)
	if err != nil {
		return nil, err
	}
	return b.Compute(x)
}
