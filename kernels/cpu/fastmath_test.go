package cpu

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/immkit/immkit/kernels"
)

// inputs32 is a dense grid over [lo, hi] (step 1/1024), random values and edge cases.
func inputs32(lo, hi float32) []float32 {
	var xs []float32
	for v := lo; v <= hi; v += 1.0 / 1024 {
		xs = append(xs, v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		xs = append(xs, lo+(hi-lo)*r.Float32())
	}
	return append(xs, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, lo, hi)
}

// exp32 is within 2 float32 ulps (2.4e-7 relative) of math.Exp on its fast range, and
// exact (math.Exp rounded) outside it, for NaN and the infinities.
func TestExp32(t *testing.T) {
	var worst float64
	for _, x := range inputs32(-87, 88) {
		want := math.Exp(float64(x))
		rel := math.Abs(float64(exp32(x))-want) / want
		worst = max(worst, rel)
		if rel > 2.4e-7 {
			t.Fatalf("exp32(%v) = %v, math.Exp %v: relative error %.3g", x, exp32(x), want, rel)
		}
	}
	t.Logf("max relative error %.3g", worst)
	for _, x := range []float32{-87.01, -100, -1e30, 88.01, 88.7, 89, 1e30, float32(math.Inf(1)), float32(math.Inf(-1))} {
		if got, want := exp32(x), float32(math.Exp(float64(x))); got != want {
			t.Errorf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
	if v := exp32(float32(math.NaN())); v == v {
		t.Errorf("exp32(NaN) = %v", v)
	}
}

// The float32 device's SiLU, GELU-tanh (values and gradients) and softmax agree with the
// float64 formulas of the generic ops. Values: within 4 ulps times (1 + |z|), z the
// sigmoid's argument (x, or 2c(x + 0.044715 x^3)): rounding z in float32 moves e^z by
// |z| ulps, as in any float32 evaluation. Gradients: within 4 ulps of the largest of the
// terms they sum (1 + |x|), as near their zero crossings the float32 sum cancels.
func TestFastActivations32(t *testing.T) {
	xs := inputs32(-40, 40)
	n := len(xs)
	d := New[float32](2)
	x := d.Alloc(n)
	d.Write(x, xs)
	dys := make([]float32, n)
	for i := range dys {
		dys[i] = 1
	}
	dy := d.Alloc(n)
	d.Write(dy, dys)
	for _, a := range []kernels.Act{kernels.SiLU, kernels.GELUTanh} {
		y, g := d.Alloc(n), d.Alloc(n)
		d.Activate(a, y, x)
		d.ActivateGrad(a, g, dy, x, 0)
		ys, gs := Data[float32](y), Data[float32](g)
		var wv, wg float64
		for i, v := range xs {
			want := act(a, float64(v))
			z := float64(v)
			if a == kernels.GELUTanh {
				z = 2 * geluC * (z + 0.044715*z*z*z)
			}
			ev := math.Abs(float64(ys[i])-want) / max(math.Abs(want), 1e-300) / (1 + math.Abs(z))
			if math.Abs(want) < 1e-35 {
				ev = 0 // the sigmoid factor (|x| <= 40 times smaller) is subnormal in float32
			}
			wantG := actGrad(a, float64(v))
			eg := math.Abs(float64(gs[i])-wantG) / (1 + math.Abs(float64(v)))
			wv, wg = max(wv, ev), max(wg, eg)
			if ev > 4.8e-7 || eg > 4.8e-7 {
				t.Fatalf("%s(%v): value %v (float64 %v, rel %.3g), grad %v (float64 %v, err %.3g)", a, v, ys[i], want, ev, gs[i], wantG, eg)
			}
		}
		t.Logf("%s: value max relative error %.3g, gradient %.3g", a, wv, wg)
		// beta != 0 accumulates
		d.Write(g, xs)
		d.ActivateGrad(a, g, dy, x, 0.5)
		for i, v := range xs[:1000] {
			want := 0.5*float64(v) + actGrad(a, float64(v))
			if e := math.Abs(float64(Data[float32](g)[i])-want) / (1 + math.Abs(float64(v))); e > 1e-6 {
				t.Fatalf("%s grad with beta 0.5 at %v: %v, want %v", a, v, Data[float32](g)[i], want)
			}
		}
	}

	rows, cols := 300, 77
	r := rand.New(rand.NewPCG(3, 4))
	h := make([]float32, rows*cols)
	h64 := make([]float64, rows*cols)
	for i := range h {
		h[i] = float32(r.NormFloat64() * 8)
		h64[i] = float64(h[i])
	}
	d64 := New[float64](2)
	x32, y32 := d.Alloc(len(h)), d.Alloc(len(h))
	d.Write(x32, h)
	d.Softmax(y32, x32, rows, cols)
	x64, y64 := d64.Alloc(len(h)), d64.Alloc(len(h))
	d64.Write(x64, h64)
	d64.Softmax(y64, x64, rows, cols)
	// within 4 ulps times (1 + |x - max|), the rounding of x - max in float32 moving e^(x-max)
	for i, want := range Data[float64](y64) {
		got := float64(Data[float32](y32)[i])
		row := h64[i/cols*cols : i/cols*cols+cols]
		z := slices.Max(row) - h64[i]
		if want > 1e-35 && math.Abs(got-want)/want > 4.8e-7*(1+z) {
			t.Fatalf("softmax element %d: %v, float64 %v", i, got, want)
		}
	}
}

func BenchmarkActivate32(b *testing.B) {
	d := New[float32](1)
	n := 1 << 16
	x, y := d.Alloc(n), d.Alloc(n)
	h := make([]float32, n)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range h {
		h[i] = float32(r.NormFloat64() * 3)
	}
	d.Write(x, h)
	for _, a := range []kernels.Act{kernels.SiLU, kernels.GELUTanh} {
		b.Run(a.String(), func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			for b.Loop() {
				d.Activate(a, y, x)
			}
		})
		b.Run(a.String()+"/grad", func(b *testing.B) {
			b.SetBytes(int64(12 * n))
			for b.Loop() {
				d.ActivateGrad(a, y, x, x, 0)
			}
		})
	}
	b.Run("softmax/256", func(b *testing.B) {
		b.SetBytes(int64(8 * n))
		for b.Loop() {
			d.Softmax(y, x, n/256, 256)
		}
	})
}

// The AVX2 kernels give the bits of the scalar Go code, element for element: values of
// SiLU and GELU-tanh, their gradients (beta 0 and 0.75) and softmax's exponentials, on a
// grid, random values, both ends of exp32's fast range, NaN, the infinities, zeros and
// subnormals, in runs whose lengths leave tails. Inputs that need exp32's slow path
// must make the kernels stop there (the slow path is Go's); most groups must run in
// the kernels, or the test would compare the scalar code with itself.
func TestFastmathAVX2(t *testing.T) {
	if !fastmathAVX2 {
		t.Skip("no AVX2: the kernels are not used on this CPU")
	}
	// GELU-tanh's exp leaves the fast range beyond |x| of about 9.6, SiLU's beyond 87
	xs := inputs32(-9, 9)
	inf := float32(math.Inf(1))
	xs = append(xs, float32(math.NaN()), inf, -inf, 1e-40, -1e-40, 9.5, -9.6, 43.5, -43.6, 87, 88, -87, -88, 88.01, -87.01, 100, -100)
	r := rand.New(rand.NewPCG(3, 3))
	for range 200 {
		xs = append(xs, float32(200*r.Float64()-100))
	}
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	n := len(xs) - 5 // not a multiple of 8
	dys, dx0 := make([]float32, n), make([]float32, n)
	for i := range dys {
		dys[i], dx0[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	same := func(name string, got []float32, want func(i int) float32) {
		t.Helper()
		for i, g := range got {
			if w := want(i); math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
				t.Fatalf("%s at x = %v: %v (bits %08x), scalar %v (bits %08x)", name, xs[i], g, math.Float32bits(g), w, math.Float32bits(w))
			}
		}
	}
	x := xs[:n]
	covered := func(name string, kernel func(i int) int) {
		t.Helper()
		done := 0
		for i := 0; i+8 <= n; {
			k := kernel(i)
			done += k
			i += k + 8
		}
		if done < n/2 {
			t.Errorf("%s: the kernel did %d of %d elements", name, done, n)
		}
	}
	y := make([]float32, n)
	act32(kernels.GELUTanh, y, x)
	same("GELU", y, func(i int) float32 { return gelu32(x[i]) })
	covered("GELU", func(i int) int { return actAVX2(true, &y[i], &x[i], n-i) })
	act32(kernels.SiLU, y, x)
	same("SiLU", y, func(i int) float32 { return silu32(x[i]) })
	covered("SiLU", func(i int) int { return actAVX2(false, &y[i], &x[i], n-i) })
	for _, beta := range []float32{0, 0.75} {
		for _, c := range []struct {
			a    kernels.Act
			grad func(float32) float32
			gelu bool
		}{{kernels.GELUTanh, geluGrad32, true}, {kernels.SiLU, siluGrad32, false}} {
			dx := slices.Clone(dx0)
			actGrad32(c.a, dx, dys, x, beta)
			same(c.a.String()+" gradient", dx, func(i int) float32 {
				if beta == 0 {
					return c.grad(x[i]) * dys[i]
				}
				return beta*dx0[i] + c.grad(x[i])*dys[i]
			})
			covered(c.a.String()+" gradient", func(i int) int { return actGradAVX2(c.gelu, &dx[i], &dys[i], &x[i], n-i, beta) })
		}
	}
	for _, mx := range []float32{0, 3.5, -80} {
		e := make([]float32, n)
		eights(n, func(i int) int { return expSubAVX2(&e[i], &x[i], n-i, mx) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				e[i] = exp32(x[i] - mx)
			}
		})
		same(fmt.Sprintf("exp(x - %v)", mx), e, func(i int) float32 { return exp32(x[i] - mx) })
		covered("exp", func(i int) int { return expSubAVX2(&e[i], &x[i], n-i, mx) })
	}
}

// softmaxRow32 (the AVX2 max and exact sum) gives the bits of the sequential loops on
// rows of every length to 80 and 256, at spreads from 1 to 64 (which leave values below
// expSum64's bound) and with zeros of both signs, infinities and NaNs; most typical rows
// take the AVX2 paths.
func TestSoftmaxRowAVX2(t *testing.T) {
	if !fastmathAVX2 {
		t.Skip("no AVX2: the kernels are not used on this CPU")
	}
	scalar := func(out, row []float32) {
		mx := float32(math.Inf(-1))
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float64
		for j, v := range row {
			out[j] = exp32(v - mx)
			sum += float64(out[j])
		}
		inv := float32(1 / sum)
		for j := range out {
			out[j] *= inv
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	nz, inf := float32(math.Copysign(0, -1)), float32(math.Inf(1))
	specials := []float32{0, nz, inf, -inf, float32(math.NaN()), math.Float32frombits(0x7fc00001), 1e-40, -1e-40}
	var rows, exact int
	for _, n := range append(seq(1, 80), 256, 1000) {
		for _, spread := range []float64{1, 4, 16, 64} {
			for trial := range 12 {
				row := make([]float32, n)
				for j := range row {
					row[j] = float32(r.NormFloat64() * spread)
				}
				switch trial {
				case 1: // all equal
					for j := range row {
						row[j] = 2.5
					}
				case 2: // zeros of both signs at the top
					for j := range row {
						row[j] = -float32(math.Abs(float64(row[j])))
					}
					row[r.IntN(n)], row[r.IntN(n)] = 0, nz
				case 3, 4, 5, 6:
					for range 1 + r.IntN(3) {
						row[r.IntN(n)] = specials[r.IntN(len(specials))]
					}
				case 7: // all negative zeros, then all -Inf
					for j := range row {
						row[j] = nz
					}
				case 8:
					for j := range row {
						row[j] = -inf
					}
				}
				got, want := make([]float32, n), make([]float32, n)
				softmaxRow32(got, row)
				scalar(want, row)
				for j := range got {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("n %d spread %v trial %d: element %d (x = %v) is %v (bits %08x), the loops give %v (%08x)",
							n, spread, trial, j, row[j], got[j], math.Float32bits(got[j]), want[j], math.Float32bits(want[j]))
					}
				}
				if m := rowMax32(row); math.Float32bits(m) != math.Float32bits(slices.Max(append([]float32{float32(math.Inf(-1))}, row...))) && m == m {
					t.Fatalf("n %d trial %d: max %v", n, trial, m)
				}
				if n >= 8 && trial == 0 && spread == 1 {
					rows++
					e := make([]float32, n)
					for j := range e {
						e[j] = exp32(row[j] - rowMax32(row))
					}
					lo := float32(math.Ldexp(1, bits.Len(uint(expSumHi*n))-30))
					var acc [4]float64
					if sumExactAVX2(&acc, &e[0], n&^7, lo, expSumHi) {
						exact++
					}
				}
			}
		}
	}
	// expSum64 itself, in float64 bits, where the order matters: a 1 and values near
	// 2^-18 .. 2^-34 with random mantissas, which float64 cannot add to 1 exactly
	for trial := range 2000 {
		e := make([]float32, 8+r.IntN(300))
		for j := range e {
			e[j] = float32(math.Ldexp(1+r.Float64(), -18-r.IntN(17)))
		}
		e[r.IntN(len(e))] = 1
		var want float64
		for _, v := range e {
			want += float64(v)
		}
		if got := expSum64(e); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("trial %d: expSum64 of %d values is %v, the loop gives %v", trial, len(e), got, want)
		}
	}
	if exact < rows*9/10 {
		t.Errorf("the exact AVX2 sum took %d of %d typical rows", exact, rows)
	}
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}
