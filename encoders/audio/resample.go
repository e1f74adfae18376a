package audio

import (
	"fmt"
	"math"
)

// Resampler parameters: a Kaiser-windowed sinc with resampZeros zero crossings on each side
// of the centre, window beta resampBeta (about 100 dB stopband attenuation) and the
// cutoff at resampRolloff times the lower Nyquist frequency.
const (
	resampZeros   = 32
	resampBeta    = 10.0
	resampRolloff = 0.94
	// maxTablePhases bounds the polyphase table (phases x taps float64); ratios with more
	// phases evaluate the filter per output sample instead.
	maxTablePhases = 4096
)

// Resample converts mono samples from rate from to rate to (Hz) with a polyphase
// Kaiser-windowed sinc filter for the rational ratio to/from (reduced by their gcd).
// Samples outside the input are taken as zero. The output has ceil(len(x)*to/from)
// samples; sample m lies at input time m*from/to.
func Resample(x []float32, from, to int) ([]float32, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("audio: resample: rates must be positive, got %d -> %d", from, to)
	}
	if from == to {
		return append([]float32(nil), x...), nil
	}
	g := gcd(from, to)
	up, down := to/g, from/g
	fc := resampRolloff
	if up < down {
		fc *= float64(up) / float64(down)
	}
	halfWidth := resampZeros / fc // in input samples
	K := int(math.Ceil(halfWidth))
	taps := 2 * K
	nOut := int((int64(len(x))*int64(up) + int64(down) - 1) / int64(down))
	out := make([]float32, nOut)
	xf := make([]float64, len(x))
	for i, v := range x {
		xf[i] = float64(v)
	}
	i0b := besselI0(resampBeta)
	coef := func(tau float64) float64 {
		if math.Abs(tau) >= halfWidth {
			return 0
		}
		r := tau / halfWidth
		w := besselI0(resampBeta*math.Sqrt(1-r*r)) / i0b
		return fc * sinc(fc*tau) * w
	}
	var table []float64
	if up <= maxTablePhases {
		table = make([]float64, up*taps)
		for p := 0; p < up; p++ {
			frac := float64(p) / float64(up)
			for j := 0; j < taps; j++ {
				table[p*taps+j] = coef(frac + float64(K-1-j))
			}
		}
	}
	h := make([]float64, taps)
	for m := range out {
		num := int64(m) * int64(down)
		k0 := int(num / int64(up))
		p := int(num % int64(up))
		if table != nil {
			h = table[p*taps : (p+1)*taps]
		} else {
			frac := float64(p) / float64(up)
			for j := range h {
				h[j] = coef(frac + float64(K-1-j))
			}
		}
		start := k0 - (K - 1)
		var acc float64
		if start >= 0 && start+taps <= len(xf) {
			seg := xf[start : start+taps]
			for j, c := range h {
				acc += c * seg[j]
			}
		} else {
			for j, c := range h {
				if k := start + j; k >= 0 && k < len(xf) {
					acc += c * xf[k]
				}
			}
		}
		out[m] = float32(acc)
	}
	return out, nil
}

// Resample returns a copy of a at the given rate, each channel resampled separately.
func (a *Audio) Resample(to int) (*Audio, error) {
	if a.Channels == 1 {
		s, err := Resample(a.Samples, a.Rate, to)
		if err != nil {
			return nil, err
		}
		return &Audio{Samples: s, Rate: to, Channels: 1}, nil
	}
	n := a.Frames()
	ch := make([]float32, n)
	var out []float32
	for c := 0; c < a.Channels; c++ {
		for i := range ch {
			ch[i] = a.Samples[i*a.Channels+c]
		}
		r, err := Resample(ch, a.Rate, to)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]float32, len(r)*a.Channels)
		}
		for i, v := range r {
			out[i*a.Channels+c] = v
		}
	}
	return &Audio{Samples: out, Rate: to, Channels: a.Channels}, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	px := math.Pi * x
	return math.Sin(px) / px
}

// besselI0 is the modified Bessel function of the first kind, order 0 (power series).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}
