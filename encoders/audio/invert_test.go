package audio

import (
	"bytes"
	"math"
	"testing"
)

// TestSTFTRoundTrip checks the ISTFT inverts the STFT away from the edges.
func TestSTFTRoundTrip(t *testing.T) {
	c, _ := Preset("whisper-80")
	x32 := benchSignal(16000)
	x := make([]float64, len(x32))
	for i, v := range x32 {
		x[i] = float64(v)
	}
	st, err := newSTFT(c)
	if err != nil {
		t.Fatal(err)
	}
	frames := 1 + len(x)/c.Hop
	spec := st.forward(x, frames)
	y := make([]float64, len(x))
	st.inverse(y, spec, frames)
	var maxErr float64
	for i := range x {
		maxErr = math.Max(maxErr, math.Abs(x[i]-y[i]))
	}
	if maxErr > 1e-9 {
		t.Errorf("STFT round trip max error %g", maxErr)
	}
}

// TestGriffinLimSine inverts the whisper-80 log-mel of a sine and checks the pitch of the
// reconstruction, written to and read back from a WAV file.
func TestGriffinLimSine(t *testing.T) {
	for _, freq := range []float64{440, 1000, 2500} {
		c, _ := Preset("whisper-80")
		mel, err := MelSpectrogram(sine(16000, 16000, freq, 0.5, 0), c)
		if err != nil {
			t.Fatal(err)
		}
		y, err := GriffinLim(mel, GriffinLimOptions{Iters: 32, Momentum: 0.99})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteWAV(&buf, &Audio{Samples: y, Rate: 16000, Channels: 1}, WAVPCM16); err != nil {
			t.Fatal(err)
		}
		a, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got := dominantFreq(a.Samples, a.Rate)
		t.Logf("%g Hz -> Griffin-Lim dominant %.1f Hz (%d samples)", freq, got, len(y))
		if math.Abs(got-freq) > 0.02*freq {
			t.Errorf("%g Hz: dominant frequency %.1f, more than 2%% off", freq, got)
		}
	}
}

// TestMelToLinear checks the recovered linear spectrogram projects back onto the mel.
func TestMelToLinear(t *testing.T) {
	c, _ := Preset("whisper-80")
	c.Log = LogNone
	mel, err := MelSpectrogram(benchSignal(8000), c)
	if err != nil {
		t.Fatal(err)
	}
	filt, _ := MelFilters(c)
	nBins := c.NFFT/2 + 1
	for _, method := range []InvertMethod{InvertPinv, InvertNNLS} {
		lin, err := MelToLinear(mel, method, 300)
		if err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for m := 0; m < c.NMels; m++ {
			for f := 0; f < mel.Frames; f++ {
				var s float64
				for k := 0; k < nBins; k++ {
					if lin[k*mel.Frames+f] < 0 {
						t.Fatalf("%s: negative value", method)
					}
					s += filt[m*nBins+k] * lin[k*mel.Frames+f]
				}
				d := s - float64(mel.Data[m*mel.Frames+f])
				num += d * d
				den += float64(mel.Data[m*mel.Frames+f]) * float64(mel.Data[m*mel.Frames+f])
			}
		}
		rel := math.Sqrt(num / den)
		t.Logf("%s: relative mel residual %.3g", method, rel)
		if rel > 0.05 {
			t.Errorf("%s: relative mel residual %g", method, rel)
		}
	}
	if _, err := MelToLinear(mel, "magic", 0); err == nil {
		t.Error("unknown method accepted")
	}
}
