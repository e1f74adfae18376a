package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMulawRoundTripSNR measures encode/decode SNR on sines of several amplitudes and on
// Laplacian noise and compares it with the closed form computed from the signal's
// variance and mean absolute value.
func TestMulawRoundTripSNR(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	lap := make([]float32, 200000)
	for i := range lap {
		v := r.ExpFloat64() * 0.05
		if r.IntN(2) == 0 {
			v = -v
		}
		lap[i] = float32(max(-1, min(1, v)))
	}
	signals := map[string][]float32{
		"sine 0.9":  sine(200000, 16000, 441, 0.9, 0.1),
		"sine 0.3":  sine(200000, 16000, 441, 0.3, 0.1),
		"sine 0.05": sine(200000, 16000, 441, 0.05, 0.1),
		"laplace":   lap,
	}
	for name, x := range signals {
		y := MulawDecode(MulawEncode(x))
		var s2, ma float64
		ref, got := make([]float64, len(x)), make([]float64, len(x))
		for i, v := range x {
			s2 += float64(v) * float64(v)
			ma += math.Abs(float64(v))
			ref[i], got[i] = float64(v), float64(y[i])
		}
		s2 /= float64(len(x))
		ma /= float64(len(x))
		snr, want := snrDB(ref, got), MulawSNR(s2, ma)
		t.Logf("%s: SNR %.2f dB, closed form %.2f dB", name, snr, want)
		if math.Abs(snr-want) > 1 {
			t.Errorf("%s: SNR %.2f dB, closed form %.2f dB", name, snr, want)
		}
	}
}

func TestMulawTokens(t *testing.T) {
	tok := MulawEncode([]float32{-1, -2, 0, 1, 5, float32(math.NaN())})
	want := []int32{0, 0, 128, 255, 255, 128}
	// 0 maps to y = 0 -> round(127.5) = 128
	for i := range want {
		if tok[i] != want[i] {
			t.Errorf("token %d = %d, want %d", i, tok[i], want[i])
		}
	}
	dec := MulawDecode([]int32{0, 255, -7, 300})
	if dec[0] != -1 || dec[1] != 1 || dec[2] != -1 || dec[3] != 1 {
		t.Errorf("decode ends %v", dec)
	}
	// every token decodes to a value that encodes back to itself
	all := make([]int32, 256)
	for i := range all {
		all[i] = int32(i)
	}
	for i, v := range MulawEncode(MulawDecode(all)) {
		if v != int32(i) {
			t.Errorf("token %d round-trips to %d", i, v)
		}
	}
}

func TestMulawTokensRate(t *testing.T) {
	a := &Audio{Samples: sine(44100, 44100, 500, 0.5, 0), Rate: 44100, Channels: 1}
	tok, err := MulawTokens(a, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 8000 {
		t.Fatalf("%d tokens for 1 s at 8 kHz", len(tok))
	}
	if f := dominantFreq(MulawDecode(tok), 8000); math.Abs(f-500) > 5 {
		t.Errorf("decoded tokens peak at %g Hz, want 500", f)
	}
}
