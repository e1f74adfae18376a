package audio

import "math"

// MulawLevels is the number of mu-law tokens; mu = MulawLevels-1 = 255.
const MulawLevels = 256

const mulawMu = MulawLevels - 1

// MulawEncode maps samples in [-1, 1] (values outside are clipped) to tokens 0..255:
// y = sign(x) ln(1 + mu|x|) / ln(1 + mu), token = round((y + 1) / 2 * mu) (the WaveNet
// convention: 256 levels uniform in the companded domain). Resample first to choose the
// token rate.
func MulawEncode(x []float32) []int32 {
	out := make([]int32, len(x))
	inv := 1 / math.Log1p(mulawMu)
	for i, v := range x {
		a := math.Min(math.Abs(float64(v)), 1)
		if math.IsNaN(a) {
			a = 0
		}
		y := math.Copysign(math.Log1p(mulawMu*a)*inv, float64(v))
		out[i] = int32(math.Round((y + 1) / 2 * mulawMu))
	}
	return out
}

// MulawDecode maps tokens back to samples: y = 2 t / mu - 1,
// x = sign(y) ((1 + mu)^|y| - 1) / mu. Tokens outside 0..255 are clamped.
func MulawDecode(tokens []int32) []float32 {
	out := make([]float32, len(tokens))
	for i, t := range tokens {
		t = max(0, min(mulawMu, t))
		y := 2*float64(t)/mulawMu - 1
		out[i] = float32(math.Copysign(math.Expm1(math.Abs(y)*math.Log1p(mulawMu))/mulawMu, y))
	}
	return out
}

// MulawSNR is the high-resolution closed form of the mu-law quantisation SNR (dB) for a
// signal with variance sigma2 and mean absolute value meanAbs, peak 1: with L = mu
// quantisation steps of 2/mu in the companded domain,
// SNR = 3 L^2 / ln^2(1+mu) / (1 + 2 E|x| / (mu sigma^2) + 1 / (mu^2 sigma^2)).
func MulawSNR(sigma2, meanAbs float64) float64 {
	l := float64(mulawMu)
	ln := math.Log1p(mulawMu)
	snr := 3 * l * l / (ln * ln) / (1 + 2*meanAbs/(mulawMu*sigma2) + 1/(mulawMu*mulawMu*sigma2))
	return 10 * math.Log10(snr)
}

// MulawTokens mixes a down to mono, resamples it to rate and returns its mu-law tokens
// (rate tokens per second).
func MulawTokens(a *Audio, rate int) ([]int32, error) {
	x, err := Resample(a.Mono(), a.Rate, rate)
	if err != nil {
		return nil, err
	}
	return MulawEncode(x), nil
}
