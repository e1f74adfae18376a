package audio

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/mat"
)

// InvertMethod selects how MelToLinear solves mel = filters x linear for the linear
// spectrogram.
type InvertMethod string

// Inversion methods: "nnls" solves the non-negative least squares problem per frame by
// projected gradient descent (librosa.feature.inverse.mel_to_stft), "pinv" applies the
// Moore-Penrose pseudo-inverse of the filter bank and clips negative values.
const (
	InvertNNLS InvertMethod = "nnls"
	InvertPinv InvertMethod = "pinv"
)

// Unlog returns the mel values before the configured log compression (power or
// magnitude, per Config.Power), NMels x Frames row-major. Whisper's floor at max-8 is not
// invertible; floored values come back as 10^(max-8).
func (m *Mel) Unlog() []float64 {
	out := make([]float64, len(m.Data))
	for i, v := range m.Data {
		y := float64(v)
		switch m.Config.Log {
		case LogWhisper:
			y = math.Pow(10, 4*y-4)
		case LogDB:
			y = math.Pow(10, y/10)
		case LogLn:
			y = math.Exp(y)
		}
		out[i] = y
	}
	return out
}

// MelToLinear estimates the linear-frequency spectrogram (|STFT|^Power, NFFT/2+1 bins x
// Frames, row-major by bin: bin k of frame f at [k*Frames+f]) whose mel projection is m.
// iters is the number of projected-gradient steps for nnls (0 means 200).
func MelToLinear(m *Mel, method InvertMethod, iters int) ([]float64, error) {
	c := m.Config
	filt, err := MelFilters(c)
	if err != nil {
		return nil, err
	}
	if m.NMels != c.NMels || len(m.Data) != m.NMels*m.Frames {
		return nil, fmt.Errorf("audio: invert: mel of %d x %d with %d values, config n_mels %d", m.NMels, m.Frames, len(m.Data), c.NMels)
	}
	nBins := c.NFFT/2 + 1
	F := mat.NewDense(c.NMels, nBins, filt)
	M := mat.NewDense(c.NMels, m.Frames, m.Unlog())
	var pinv mat.Dense
	var svd mat.SVD
	if !svd.Factorize(F, mat.SVDThin) {
		return nil, errors.New("audio: invert: SVD of the filter bank failed")
	}
	s := svd.Values(nil)
	sigmaMax := s[0]
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	for i := range s {
		if s[i] > 1e-10*s[0] {
			s[i] = 1 / s[i]
		} else {
			s[i] = 0
		}
	}
	// pinv = V diag(1/s) U^T
	vs := mat.DenseCopyOf(&v)
	r, cc := vs.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < cc; j++ {
			vs.Set(i, j, vs.At(i, j)*s[j])
		}
	}
	pinv.Mul(vs, u.T())
	var S mat.Dense
	S.Mul(&pinv, M)
	sd := S.RawMatrix().Data
	for i, x := range sd {
		sd[i] = math.Max(x, 0)
	}
	switch method {
	case InvertPinv:
		return sd, nil
	case InvertNNLS:
	default:
		return nil, fmt.Errorf("audio: invert: method %q, want nnls or pinv", method)
	}
	if iters <= 0 {
		iters = 200
	}
	// Projected gradient on 0.5||F S - M||^2 with step 1/L, L = ||F||_2^2.
	var FtF, FtM mat.Dense
	FtF.Mul(F.T(), F)
	FtM.Mul(F.T(), M)
	step := 1 / (sigmaMax * sigmaMax)
	var G mat.Dense
	for it := 0; it < iters; it++ {
		G.Mul(&FtF, &S)
		G.Sub(&G, &FtM)
		gd := G.RawMatrix().Data
		for i := range sd {
			sd[i] = math.Max(sd[i]-step*gd[i], 0)
		}
	}
	return sd, nil
}

// GriffinLimOptions controls GriffinLim.
type GriffinLimOptions struct {
	Iters    int          // iterations; 0 means 32
	Momentum float64      // fast Griffin-Lim momentum (Perraudin et al.); 0.99 as librosa
	Method   InvertMethod // mel to linear: nnls (default) or pinv
	Seed     uint64       // seed of the random initial phase
}

// GriffinLim reconstructs a waveform at m.Config.SampleRate from a (log-)mel spectrogram:
// MelToLinear, then Griffin-Lim phase retrieval with the same window, hop and centring.
// The result has (Frames-1)*Hop samples (plus NFFT when not centred).
func GriffinLim(m *Mel, o GriffinLimOptions) ([]float32, error) {
	if o.Iters <= 0 {
		o.Iters = 32
	}
	if o.Method == "" {
		o.Method = InvertNNLS
	}
	lin, err := MelToLinear(m, o.Method, 0)
	if err != nil {
		return nil, err
	}
	c := m.Config
	nBins, frames := c.NFFT/2+1, m.Frames
	mag := make([]float64, len(lin)) // frame-major: [f*nBins+k]
	for k := 0; k < nBins; k++ {
		for f := 0; f < frames; f++ {
			mag[f*nBins+k] = math.Pow(lin[k*frames+f], 1/c.Power)
		}
	}
	st, err := newSTFT(c)
	if err != nil {
		return nil, err
	}
	n := (frames - 1) * c.Hop
	if !c.Center {
		n += c.NFFT
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	angles := make([]complex128, frames*nBins)
	for i := range angles {
		angles[i] = cmplx.Rect(1, 2*math.Pi*r.Float64())
	}
	spec := make([]complex128, len(angles))
	prev := make([]complex128, len(angles))
	apply := func() {
		for i, a := range angles {
			spec[i] = a * complex(mag[i], 0)
		}
	}
	alpha := o.Momentum / (1 + o.Momentum)
	x := make([]float64, n)
	for it := 0; it < o.Iters; it++ {
		apply()
		st.inverse(x, spec, frames)
		reb := st.forward(x, frames)
		for i, v := range reb {
			a := v - complex(alpha, 0)*prev[i]
			if abs := cmplx.Abs(a); abs > 1e-16 {
				angles[i] = a / complex(abs, 0)
			} else {
				angles[i] = 1
			}
		}
		prev = reb
	}
	apply()
	st.inverse(x, spec, frames)
	out := make([]float32, n)
	for i, v := range x {
		out[i] = float32(v)
	}
	return out, nil
}

// stft is the forward and inverse short-time Fourier transform of a MelConfig, on
// frame-major complex spectra ([f*nBins+k]).
type stft struct {
	c      MelConfig
	window []float64
	fft    *fourier.FFT
	frame  []float64
	coeff  []complex128
}

func newSTFT(c MelConfig) (*stft, error) {
	b, err := NewMelBank(c)
	if err != nil {
		return nil, err
	}
	return &stft{c: c, window: b.window, fft: fourier.NewFFT(c.NFFT), frame: make([]float64, c.NFFT), coeff: make([]complex128, c.NFFT/2+1)}, nil
}

func (s *stft) pad() int {
	if s.c.Center {
		return s.c.NFFT / 2
	}
	return 0
}

// forward returns the STFT of x (frames frames; centred frames use the pad mode).
func (s *stft) forward(x []float64, frames int) []complex128 {
	nBins, pad := s.c.NFFT/2+1, s.pad()
	out := make([]complex128, frames*nBins)
	n := len(x)
	for f := 0; f < frames; f++ {
		start := f*s.c.Hop - pad
		for i := range s.frame {
			j := start + i
			var v float64
			switch {
			case j >= 0 && j < n:
				v = x[j]
			case s.c.PadMode == PadReflect && s.c.Center && n > 1:
				if j < 0 {
					j = -j
				} else {
					j = 2*(n-1) - j
				}
				if j >= 0 && j < n {
					v = x[j]
				}
			}
			s.frame[i] = v * s.window[i]
		}
		copy(out[f*nBins:(f+1)*nBins], s.fft.Coefficients(s.coeff, s.frame))
	}
	return out
}

// inverse overlap-adds the windowed inverse FFTs of spec into x, normalised by the summed
// squared window (the least-squares ISTFT of Griffin and Lim).
func (s *stft) inverse(x []float64, spec []complex128, frames int) {
	nfft, nBins, pad := s.c.NFFT, s.c.NFFT/2+1, s.pad()
	n := len(x)
	wsum := make([]float64, n)
	for i := range x {
		x[i] = 0
	}
	for f := 0; f < frames; f++ {
		seq := s.fft.Sequence(s.frame, spec[f*nBins:(f+1)*nBins])
		start := f*s.c.Hop - pad
		for i, v := range seq {
			j := start + i
			if j < 0 || j >= n {
				continue
			}
			w := s.window[i]
			x[j] += v / float64(nfft) * w
			wsum[j] += w * w
		}
	}
	for i := range x {
		if wsum[i] > 1e-10 {
			x[i] /= wsum[i]
		}
	}
}
