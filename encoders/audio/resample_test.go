package audio

import (
	"math"
	"testing"
)

// TestResampleSNR resamples a 1 kHz sine and compares the interior of the output with the
// exact sine at the output rate: SNR must exceed 80 dB.
func TestResampleSNR(t *testing.T) {
	for _, tc := range []struct{ from, to int }{
		{44100, 16000}, {48000, 16000}, {22050, 16000}, {8000, 16000}, {16000, 44100}, {11025, 16000}, {16000, 7999},
	} {
		const freq, amp = 1000.0, 0.8
		n := tc.from // one second
		x := sine(n, tc.from, freq, amp, 0.2)
		y, err := Resample(x, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := int(math.Ceil(float64(n) * float64(tc.to) / float64(tc.from)))
		if len(y) != wantLen {
			t.Errorf("%d -> %d: %d samples, want %d", tc.from, tc.to, len(y), wantLen)
		}
		edge := tc.to / 20 // skip 50 ms at both ends (zero padding)
		var ref, got []float64
		for m := edge; m < len(y)-edge; m++ {
			ref = append(ref, amp*math.Sin(2*math.Pi*freq*float64(m)/float64(tc.to)+0.2))
			got = append(got, float64(y[m]))
		}
		snr := snrDB(ref, got)
		t.Logf("%d -> %d Hz: SNR %.1f dB", tc.from, tc.to, snr)
		if snr < 80 {
			t.Errorf("%d -> %d Hz: SNR %.1f dB < 80", tc.from, tc.to, snr)
		}
	}
}

// TestResampleAntiAlias checks a tone above the output Nyquist frequency is removed.
func TestResampleAntiAlias(t *testing.T) {
	x := sine(48000, 48000, 12000, 0.8, 0)
	y, err := Resample(x, 48000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	var e float64
	for _, v := range y[800 : len(y)-800] {
		e += float64(v) * float64(v)
	}
	rms := math.Sqrt(e / float64(len(y)-1600))
	if db := 20 * math.Log10(rms/(0.8/math.Sqrt2)); db > -70 {
		t.Errorf("12 kHz tone after 48k -> 16k: %.1f dB, want < -70", db)
	}
}

func TestResampleErrors(t *testing.T) {
	if _, err := Resample([]float32{1}, 0, 16000); err == nil {
		t.Error("rate 0 accepted")
	}
	if _, err := Resample([]float32{1}, 16000, -1); err == nil {
		t.Error("negative rate accepted")
	}
	y, err := Resample(nil, 44100, 16000)
	if err != nil || len(y) != 0 {
		t.Errorf("empty input: %v %v", y, err)
	}
	a := &Audio{Samples: []float32{0.5, -0.5, 0.5, -0.5}, Rate: 8000, Channels: 2}
	b, err := a.Resample(16000)
	if err != nil || b.Channels != 2 || b.Rate != 16000 || len(b.Samples) != 8 {
		t.Fatalf("stereo resample %+v %v", b, err)
	}
}

func BenchmarkResample44k16k(b *testing.B) {
	x := sine(44100*10, 44100, 1000, 0.5, 0)
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		Resample(x, 44100, 16000)
	}
}
