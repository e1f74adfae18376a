package shapes

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/immkit/immkit/testdata/gen"
)

// Audio detector settings.
const (
	envHop       = 0.010 // seconds between envelope frames
	envWindow    = 0.020 // seconds of signal in each envelope frame's RMS
	envFloorDB   = -40   // the envelope in dB is floored this far below its peak
	minPeak      = 1e-3  // envelope peak (RMS, full scale 1) below which the clip is silence
	minRhythm    = 0.5   // smallest correlation of the envelope with a rhythm to count
	pitchLow     = 150.0 // Hz: the palette's pitches (220..740 Hz) lie well inside this band
	pitchHigh    = 1000.0
	maxSemitones = 1.5 // largest distance of a pitch from its palette pitch (half the spacing)
	// minTonality is the smallest fraction of the notes' spectral power between 100 Hz
	// and 4 kHz that lies within maxSemitones of the spectral peak: below it the sound is
	// not a tone and has no colour.
	minTonality = 0.3
)

// FromAudio reads the colour, shape and size a sound encodes: the shapes corpus plays its
// colour's pitch (gen.Colors[k].PitchHz, 220..740 Hz, three semitones apart) in as many
// equal notes as the shape has (gen.Shapes[k].Notes, 1..5; the clip is cut into that many
// equal slots and each note sounds over 10%..80% of its slot), with a peak amplitude that
// gives the size (gen.Sizes: 0.3 small, 0.7 large). wave is mono at rate Hz, nominally in
// [-1, 1], and is one whole clip (its length sets the slots). Position is never set (the
// sound does not carry it).
//
// Method: the RMS envelope in 20 ms windows every 10 ms, in dB below its peak (floored at
// -40 dB), is correlated with each rhythm's note coverage of the same windows; the best
// rhythm names the shape if its correlation is at least 0.5. Matching the whole rhythm
// rather than counting threshold crossings keeps the count right when the notes' level
// fluctuates by 10-20 dB from frame to frame, as after Griffin-Lim from a noisy log-mel
// (docs/eval.md). The power spectra of the rhythm's notes (Hann window, zero-padded) are
// summed, and the peak between 150 Hz and 1 kHz, refined by parabolic interpolation, is
// the pitch: the palette colour within 1.5 semitones names the colour, provided the peak
// holds at least 30% of the power (a tone, not noise). The notes' amplitude (√2 times the
// median envelope RMS inside the notes) above or below the geometric mean of the two
// sizes' amplitudes gives the size.
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
	if peak < minPeak || len(env) < 2 {
		return Attr{}
	}
	count, corr := rhythmOf(env, peak, hop, win, len(x))
	if corr < minRhythm {
		return Attr{}
	}
	var a Attr
	for _, s := range gen.Shapes {
		if s.Notes == count {
			a.Shape = s.Name
		}
	}
	// The notes' samples and envelope frames, trimmed by one frame at each end.
	var segs [][]float64
	var level []float64
	slot := float64(len(x)) / float64(count)
	for k := range count {
		s := int((float64(k)+0.1)*slot) + hop
		e := min(int((float64(k)+0.8)*slot)-hop, len(x))
		if e-s >= win {
			segs = append(segs, x[s:e])
		}
		for f := (s + hop - 1) / hop; f*hop+win <= e && f < len(env); f++ {
			level = append(level, env[f])
		}
	}
	if len(level) > 0 {
		slices.Sort(level)
		a.Size = gen.Sizes[0].Name
		if math.Sqrt2*level[len(level)/2] > math.Sqrt(gen.Sizes[0].Amplitude*gen.Sizes[1].Amplitude) {
			a.Size = gen.Sizes[1].Name
		}
	}
	if hz, ok := pitchOf(segs, rate); ok {
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

// rhythmOf matches the envelope against the corpus's rhythms: for n = 1..5 notes, the clip
// of samples samples is cut into n equal slots with a note over 10%..80% of each, and the
// Pearson correlation of the envelope in dB (floored at 40 dB below the peak) with the
// fraction of each envelope window that a note covers is computed. It returns the best
// note count and its correlation.
func rhythmOf(env []float64, peak float64, hop, win, samples int) (notes int, corr float64) {
	db := make([]float64, len(env))
	for f, e := range env {
		db[f] = 20 * math.Log10(max(e, peak*math.Pow(10, envFloorDB/20))/peak)
	}
	cover := make([]float64, len(env))
	corr = math.Inf(-1)
	for _, sh := range gen.Shapes {
		n := sh.Notes
		slot := float64(samples) / float64(n)
		for f := range cover {
			lo, hi := float64(f*hop), float64(min(f*hop+win, samples))
			c := 0.0
			for k := range n {
				s, e := (float64(k)+0.1)*slot, (float64(k)+0.8)*slot
				c += max(0, min(hi, e)-max(lo, s))
			}
			cover[f] = c / max(hi-lo, 1)
		}
		if r := pearson(db, cover); r > corr {
			notes, corr = n, r
		}
	}
	return notes, corr
}

// pearson returns the correlation coefficient of x and y (0 when either is constant).
func pearson(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// pitchOf returns the frequency of the strongest tone in the segments: the peak between
// pitchLow and pitchHigh of their summed Hann-windowed power spectra (zero-padded to a
// power of two of at least 1 Hz resolution), refined by a parabola through the log powers
// of the peak bin and its neighbours. ok is false when there is no such peak or it holds
// less than minTonality of the power between 100 Hz and 4 kHz (the sound is not a tone).
func pitchOf(segs [][]float64, rate int) (hz float64, ok bool) {
	longest := 0
	for _, s := range segs {
		longest = max(longest, len(s))
	}
	if longest == 0 {
		return 0, false
	}
	n := 1
	for n < longest || float64(rate)/float64(n) > 1 {
		n *= 2
	}
	fft := fourier.NewFFT(n)
	buf := make([]float64, n)
	power := make([]float64, n/2+1)
	var coef []complex128
	for _, s := range segs {
		clear(buf)
		for i, v := range s {
			buf[i] = (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(s)))) * v
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
		return 0, false
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
	return hz, near >= minTonality*total
}
