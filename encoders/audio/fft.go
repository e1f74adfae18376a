package audio

import "gonum.org/v1/gonum/dsp/fourier"

// realFFT computes power spectra of real frames.
type realFFT struct {
	n int
}

func newRealFFT(n int) *realFFT { return &realFFT{n: n} }

type fftScratch struct {
	plan  *fourier.FFT
	coeff []complex128
}

func (r *realFFT) newScratch() *fftScratch {
	return &fftScratch{plan: fourier.NewFFT(r.n), coeff: make([]complex128, r.n/2+1)}
}

// power sets dst[k] = |sum_j x[j] exp(-2 pi i j k / n)|^2 for k = 0..n/2.
func (r *realFFT) power(dst, x []float64, s *fftScratch) {
	c := s.plan.Coefficients(s.coeff, x)
	for k, v := range c {
		dst[k] = real(v)*real(v) + imag(v)*imag(v)
	}
}
