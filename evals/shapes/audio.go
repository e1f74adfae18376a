package shapes

import (
	"math"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/immkit/immkit/testdata/gen"
)

// Audio detector settings.
const (
	envHop       = 0.010 // seconds between envelope frames
	envWindow    = 0.020 // seconds of signal in each envelope frame's RMS
	noteOn       = 0.40  // a note starts when the envelope rises above this fraction of its peak
	noteOff      = 0.20  // and ends when it falls below this fraction
	minNote      = 0.020 // seconds: shorter bursts are not notes
	minPeak      = 1e-3  // envelope peak (RMS, full scale 1) below which the clip is silence
	pitchLow     = 150.0 // Hz: the palette's pitches (220..740 Hz) lie well inside this band
	pitchHigh    = 1000.0
	maxSemitones = 1.5 // largest distance of a pitch from its palette pitch (half the spacing)
	// minTonality is the smallest fraction of the note's spectral energy between 100 Hz
	// and 4 kHz that lies within maxSemitones of the spectral peak: below it the sound is
	// not a tone and has no colour.
	minTonality = 0.3
)

// FromAudio reads the colour, shape and size a sound encodes: the shapes corpus plays its
// colour's pitch (gen.Colors[k].PitchHz, 220..740 Hz, three semitones apart) in as many
// equal notes as the shape has (gen.Shapes[k].Notes, 1..5), with a peak amplitude that
// gives the size (gen.Sizes: 0.3 small, 0.7 large). wave is mono at rate Hz, nominally in
// [-1, 1]. Position is never set (the sound does not carry it).
//
// Method: the RMS envelope in 20 ms windows every 10 ms is segmented into notes with
// hysteresis (a note starts above 40% of the envelope's peak, ends below 20%, and lasts at
// least 20 ms); 1..5 notes name the shape. The power spectra of the notes (Hann window,
// zero-padded) are summed, and the peak between 150 Hz and 1 kHz, refined by parabolic
// interpolation, is the pitch: the palette colour within 1.5 semitones names the colour,
// provided the peak holds at least 30% of the power (a tone, not noise). The tone's
// amplitude, from the power near the peak, above or below the geometric mean of the two
// sizes' amplitudes gives the size. See toneOf.
func FromAudio(wave []float32, rate int) Attr {
	if rate <= 0 || len(wave) == 0 {
		return Attr{}
	}
	x := make([]float64, len(wave))
	for i, v := range wave {
		if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
			x[i] = f
		}
	}
	hop := max(int(math.Round(envHop*float64(rate))), 1)
	win := max(int(math.Round(envWindow*float64(rate))), 1)
	var env []float64
	for s := 0; s < len(x); s += hop {
		e := min(s+win, len(x))
		sum := 0.0
		for _, v := range x[s:e] {
			sum += v * v
		}
		env = append(env, math.Sqrt(sum/float64(win)))
	}
	peak := 0.0
	for _, e := range env {
		peak = max(peak, e)
	}
	if peak < minPeak {
		return Attr{}
	}
	// Notes as [start, end) envelope frames.
	var notes [][2]int
	on, start := false, 0
	minFrames := int(math.Ceil(minNote / envHop))
	for f := 0; f <= len(env); f++ {
		e := 0.0
		if f < len(env) {
			e = env[f]
		}
		switch {
		case !on && e > noteOn*peak:
			on, start = true, f
		case on && e < noteOff*peak:
			on = false
			if f-start >= minFrames {
				notes = append(notes, [2]int{start, f})
			}
		}
	}
	var a Attr
	for _, s := range gen.Shapes {
		if s.Notes == len(notes) {
			a.Shape = s.Name
		}
	}
	if len(notes) == 0 {
		return a
	}
	// Pitch from the notes' samples, trimmed by one envelope frame at each end.
	var segs [][]float64
	for _, n := range notes {
		s, e := (n[0]+1)*hop, min((n[1]-1)*hop, len(x))
		if e-s >= win {
			segs = append(segs, x[s:e])
		}
	}
	hz, amp, ok := toneOf(segs, rate)
	if !ok {
		return a
	}
	// Sizes: the threshold is the geometric mean of the two peak amplitudes.
	a.Size = gen.Sizes[0].Name
	if amp > math.Sqrt(gen.Sizes[0].Amplitude*gen.Sizes[1].Amplitude) {
		a.Size = gen.Sizes[1].Name
	}
	{
		best, bestDist := "", math.Inf(1)
		for _, c := range gen.Colors {
			if d := math.Abs(12 * math.Log2(hz/c.PitchHz)); d < bestDist {
				best, bestDist = c.Name, d
			}
		}
		if bestDist <= maxSemitones {
			a.Color = best
		}
	}
	return a
}

// toneOf returns the frequency and amplitude of the strongest tone in the segments. The
// frequency is the peak between pitchLow and pitchHigh of their summed Hann-windowed power
// spectra (zero-padded to a power of two of at least 1 Hz resolution), refined by a
// parabola through the log powers of the peak bin and its neighbours. The amplitude A
// follows from Parseval's theorem: the power within maxSemitones of the peak, summed over
// the segments, is n Σ_seg A²/2 Σ_i w_i² for an n-point FFT and Hann window w. ok is false
// when there is no such peak or it holds less than minTonality of the power between 100 Hz
// and 4 kHz (the sound is not a tone).
func toneOf(segs [][]float64, rate int) (hz, amp float64, ok bool) {
	longest := 0
	for _, s := range segs {
		longest = max(longest, len(s))
	}
	if longest == 0 {
		return 0, 0, false
	}
	n := 1
	for n < longest || float64(rate)/float64(n) > 1 {
		n *= 2
	}
	fft := fourier.NewFFT(n)
	buf := make([]float64, n)
	power := make([]float64, n/2+1)
	var coef []complex128
	w2 := 0.0 // Σ over segments of Σ_i w_i²
	for _, s := range segs {
		clear(buf)
		for i, v := range s {
			w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(s)))
			buf[i] = w * v
			w2 += w * w
		}
		coef = fft.Coefficients(coef, buf)
		for k, c := range coef {
			power[k] += real(c)*real(c) + imag(c)*imag(c)
		}
	}
	binHz := float64(rate) / float64(n)
	lo, hi := int(math.Ceil(pitchLow/binHz)), min(int(pitchHigh/binHz), len(power)-2)
	k := -1
	for i := lo; i <= hi; i++ {
		if k < 0 || power[i] > power[k] {
			k = i
		}
	}
	if k <= 0 || power[k] <= 0 {
		return 0, 0, false
	}
	frac := 0.0
	if a, b, c := math.Log(power[k-1]+1e-300), math.Log(power[k]), math.Log(power[k+1]+1e-300); a-2*b+c < 0 {
		frac = 0.5 * (a - c) / (a - 2*b + c)
	}
	hz = (float64(k) + frac) * binHz
	var total, near float64
	band := math.Pow(2, maxSemitones/12)
	for i := int(100 / binHz); i <= min(int(4000/binHz), len(power)-1); i++ {
		total += power[i]
		if f := float64(i) * binHz; f >= hz/band && f <= hz*band {
			near += power[i]
		}
	}
	// power holds |X_k|² for k = 0..n/2; the negative frequencies double it.
	amp = math.Sqrt(2 * 2 * near / (float64(n) * w2))
	return hz, amp, near >= minTonality*total
}
