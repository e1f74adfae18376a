package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRealFFTPower compares the power spectrum with a naive float64 DFT loop.
func TestRealFFTPower(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{2, 4, 6, 10, 14, 16, 30, 42, 98, 200, 400, 512, 1024, 2048, 2 * 7 * 11, 2 * 3 * 5 * 7 * 13, 401, 27} {
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		f := newRealFFT(n)
		got := make([]float64, n/2+1)
		f.power(got, x, f.newScratch())
		for k := 0; k <= n/2; k++ {
			var re, im float64
			for j, v := range x {
				s, c := math.Sincos(-2 * math.Pi * float64(j*k%n) / float64(n))
				re += v * c
				im += v * s
			}
			want := re*re + im*im
			if math.Abs(got[k]-want) > 1e-9*float64(n)*(1+want) {
				t.Fatalf("n=%d bin %d: %g, want %g", n, k, got[k], want)
			}
		}
	}
}

func BenchmarkRealFFT400(b *testing.B) {
	f := newRealFFT(400)
	s := f.newScratch()
	x := make([]float64, 400)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	dst := make([]float64, 201)
	for b.Loop() {
		f.power(dst, x, s)
	}
}

func TestFastLn(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 200000; i++ {
		x := math.Exp(r.Float64()*100 - 60)
		if i%3 == 0 {
			x = 1 + (r.Float64()-0.5)*1e-6
		}
		if d := math.Abs(fastLn(x) - math.Log(x)); d > 1e-12 {
			t.Fatalf("fastLn(%g) = %.17g, math.Log %.17g", x, fastLn(x), math.Log(x))
		}
	}
	for _, x := range []float64{1e-310, 0, math.Inf(1), math.NaN(), -1, math.SmallestNonzeroFloat64} {
		a, b := fastLn(x), math.Log(x)
		if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
			t.Errorf("fastLn(%g) = %g, want %g", x, a, b)
		}
	}
}
