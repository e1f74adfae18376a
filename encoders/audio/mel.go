package audio

import (
	"errors"
	"fmt"
	"math"
)

// MelScale selects the Hz <-> mel mapping.
type MelScale string

// Mel scales: Slaney's (linear below 1 kHz, logarithmic above; librosa's default and
// Whisper's) and HTK's 2595*log10(1+f/700) (torchaudio's default).
const (
	ScaleSlaney MelScale = "slaney"
	ScaleHTK    MelScale = "htk"
)

// MelNorm selects the normalisation of the triangular filters.
type MelNorm string

// Filter normalisations: "slaney" divides each triangle by its width in Hz (2/(f[m+2]-f[m]),
// constant energy per channel), "none" leaves peaks at 1.
const (
	NormSlaney MelNorm = "slaney"
	NormNone   MelNorm = "none"
)

// PadMode is how a centred STFT pads the signal by NFFT/2 on both sides.
type PadMode string

// Pad modes: "reflect" mirrors without repeating the edge sample (torch/numpy "reflect"),
// "constant" pads zeros.
const (
	PadReflect  PadMode = "reflect"
	PadConstant PadMode = "constant"
)

// LogKind is the compression applied to the mel power.
type LogKind string

// Log kinds:
//   - "none": the mel power (or magnitude) itself.
//   - "whisper": Whisper's log10(max(x, 1e-10)), floored at (global max - 8), then (x+4)/4.
//   - "db": 10*log10(max(x, Amin)) (librosa power_to_db / torchaudio AmplitudeToDB with
//     ref 1), floored at max - TopDB when TopDB > 0.
//   - "ln": natural log of max(x, Amin).
const (
	LogNone    LogKind = "none"
	LogWhisper LogKind = "whisper"
	LogDB      LogKind = "db"
	LogLn      LogKind = "ln"
)

// MelConfig describes a (log-)mel spectrogram. The zero value is not usable; start from
// Preset or fill every field. Centred frames start at sample f*Hop - NFFT/2.
type MelConfig struct {
	SampleRate int      // Hz of the input samples
	NFFT       int      // FFT size; bins 0..NFFT/2
	WinLength  int      // Hann window length, centred in the NFFT frame; 0 means NFFT
	Hop        int      // samples between frames
	NMels      int      // mel channels
	FMin, FMax float64  // filter bank range in Hz; FMax 0 means SampleRate/2
	Scale      MelScale // slaney or htk
	Norm       MelNorm  // slaney or none
	Center     bool     // pad NFFT/2 on both sides (torch.stft center=True)
	PadMode    PadMode  // reflect or constant, when Center
	Power      float64  // exponent on |STFT|: 2 power, 1 magnitude
	Log        LogKind  // none, whisper, db, ln
	Amin       float64  // floor inside the db and ln logs; 0 means 1e-10
	TopDB      float64  // db only: dynamic range kept below the maximum; 0 keeps all
	DropLast   bool     // drop the last frame (Whisper's stft[..., :-1])
}

// Presets are the named configurations accepted by Preset.
var Presets = map[string]MelConfig{
	"whisper-80":  whisperConfig(80),
	"whisper-128": whisperConfig(128),
}

func whisperConfig(nMels int) MelConfig {
	return MelConfig{
		SampleRate: 16000, NFFT: 400, Hop: 160, NMels: nMels,
		Scale: ScaleSlaney, Norm: NormSlaney, Center: true, PadMode: PadReflect,
		Power: 2, Log: LogWhisper, DropLast: true,
	}
}

// Preset returns a named configuration: "whisper-80" or "whisper-128" (OpenAI Whisper's
// log_mel_spectrogram: 16 kHz, n_fft 400, hop 160, periodic Hann, centred reflect-padded
// STFT with the last frame dropped, power spectrum, Slaney mel filters with Slaney
// normalisation, log10 clamped at 1e-10, floored at max-8, scaled (x+4)/4).
func Preset(name string) (MelConfig, error) {
	c, ok := Presets[name]
	if !ok {
		return MelConfig{}, fmt.Errorf("audio: unknown mel preset %q (want whisper-80 or whisper-128)", name)
	}
	return c, nil
}

func (c *MelConfig) winLength() int {
	if c.WinLength == 0 {
		return c.NFFT
	}
	return c.WinLength
}

func (c *MelConfig) fmax() float64 {
	if c.FMax == 0 {
		return float64(c.SampleRate) / 2
	}
	return c.FMax
}

func (c *MelConfig) amin() float64 {
	if c.Amin == 0 {
		return 1e-10
	}
	return c.Amin
}

// Validate reports the first unusable field.
func (c *MelConfig) Validate() error {
	switch {
	case c.SampleRate <= 0:
		return fmt.Errorf("audio: mel: sample rate %d", c.SampleRate)
	case c.NFFT < 2 || c.NFFT > 1<<16:
		return fmt.Errorf("audio: mel: n_fft %d, want 2..65536", c.NFFT)
	case c.WinLength < 0 || c.WinLength > c.NFFT:
		return fmt.Errorf("audio: mel: win_length %d, want 0..n_fft (%d)", c.WinLength, c.NFFT)
	case c.Hop < 1:
		return fmt.Errorf("audio: mel: hop %d", c.Hop)
	case c.NMels < 1 || c.NMels > 4096:
		return fmt.Errorf("audio: mel: n_mels %d", c.NMels)
	case c.FMin < 0 || c.fmax() <= c.FMin || c.fmax() > float64(c.SampleRate)/2:
		return fmt.Errorf("audio: mel: fmin %g / fmax %g outside 0..%d", c.FMin, c.fmax(), c.SampleRate/2)
	case c.Scale != ScaleSlaney && c.Scale != ScaleHTK:
		return fmt.Errorf("audio: mel: scale %q, want slaney or htk", c.Scale)
	case c.Norm != NormSlaney && c.Norm != NormNone:
		return fmt.Errorf("audio: mel: norm %q, want slaney or none", c.Norm)
	case c.Center && c.PadMode != PadReflect && c.PadMode != PadConstant:
		return fmt.Errorf("audio: mel: pad mode %q, want reflect or constant", c.PadMode)
	case !(c.Power > 0) || c.Power > 16:
		return fmt.Errorf("audio: mel: power %g, want > 0", c.Power)
	case c.Log != LogNone && c.Log != LogWhisper && c.Log != LogDB && c.Log != LogLn:
		return fmt.Errorf("audio: mel: log %q, want none, whisper, db or ln", c.Log)
	case c.Amin < 0 || c.TopDB < 0:
		return errors.New("audio: mel: amin and top_db must be >= 0")
	}
	return nil
}

// hzToMel and melToHz implement the two scales exactly as librosa does
// (librosa.hz_to_mel / mel_to_hz; torchaudio uses the same formulas).
func hzToMel(f float64, s MelScale) float64 {
	if s == ScaleHTK {
		return 2595 * math.Log10(1+f/700)
	}
	const fSp = 200.0 / 3
	const minLogHz = 1000.0
	const minLogMel = minLogHz / fSp
	logstep := math.Log(6.4) / 27
	if f >= minLogHz {
		return minLogMel + math.Log(f/minLogHz)/logstep
	}
	return f / fSp
}

func melToHz(m float64, s MelScale) float64 {
	if s == ScaleHTK {
		return 700 * (math.Pow(10, m/2595) - 1)
	}
	const fSp = 200.0 / 3
	const minLogHz = 1000.0
	const minLogMel = minLogHz / fSp
	logstep := math.Log(6.4) / 27
	if m >= minLogMel {
		return minLogHz * math.Exp(logstep*(m-minLogMel))
	}
	return fSp * m
}

// MelFilters returns the filter bank as a dense NMels x (NFFT/2+1) row-major matrix:
// weight of FFT bin k in mel channel m is at [m*(NFFT/2+1)+k]. It is librosa.filters.mel
// (and torchaudio.functional.melscale_fbanks with the same scale and norm): triangles
// between NMels+2 points equally spaced on the mel scale, evaluated at the bin centre
// frequencies k*SampleRate/NFFT.
func MelFilters(c MelConfig) ([]float64, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	nBins := c.NFFT/2 + 1
	lo, hi := hzToMel(c.FMin, c.Scale), hzToMel(c.fmax(), c.Scale)
	pts := make([]float64, c.NMels+2)
	for i := range pts {
		pts[i] = melToHz(lo+(hi-lo)*float64(i)/float64(c.NMels+1), c.Scale)
	}
	w := make([]float64, c.NMels*nBins)
	for m := 0; m < c.NMels; m++ {
		d0, d1 := pts[m+1]-pts[m], pts[m+2]-pts[m+1]
		enorm := 1.0
		if c.Norm == NormSlaney {
			enorm = 2 / (pts[m+2] - pts[m])
		}
		for k := 0; k < nBins; k++ {
			f := float64(k) * float64(c.SampleRate) / float64(c.NFFT)
			lower := (f - pts[m]) / d0
			upper := (pts[m+2] - f) / d1
			v := math.Max(0, math.Min(lower, upper))
			w[m*nBins+k] = v * enorm
		}
	}
	return w, nil
}

// Mel is a mel spectrogram.
type Mel struct {
	// Data holds NMels x Frames values, row-major by mel channel: channel m of frame f is
	// Data[m*Frames+f] (the layout of Whisper's and librosa's (n_mels, frames) arrays).
	Data   []float32
	NMels  int
	Frames int
	// Config is the configuration that produced it.
	Config MelConfig
}

// FrameMajor returns the values transposed to Frames x NMels, row-major by frame
// (frame f, channel m at [f*NMels+m]): the layout of the audio_mel column.
func (m *Mel) FrameMajor() []float32 {
	out := make([]float32, len(m.Data))
	for c := 0; c < m.NMels; c++ {
		row := m.Data[c*m.Frames : (c+1)*m.Frames]
		for f, v := range row {
			out[f*m.NMels+c] = v
		}
	}
	return out
}

// NumFrames returns how many frames MelSpectrogram yields for n samples, or an error
// when there are too few samples for the configuration.
func (c *MelConfig) NumFrames(n int) (int, error) {
	padded := n
	if c.Center {
		pad := c.NFFT / 2
		if c.PadMode == PadReflect && n <= pad {
			return 0, fmt.Errorf("audio: mel: %d samples are too few for reflect padding by %d (need > %d)", n, pad, pad)
		}
		padded += 2 * pad
	}
	if padded < c.NFFT {
		return 0, fmt.Errorf("audio: mel: %d samples are fewer than n_fft %d", n, c.NFFT)
	}
	frames := 1 + (padded-c.NFFT)/c.Hop
	if c.DropLast {
		frames--
	}
	if frames < 1 {
		return 0, fmt.Errorf("audio: mel: %d samples give no frame", n)
	}
	return frames, nil
}
