package cpu

import (
	"math"
	"math/bits"

	"github.com/immkit/immkit/kernels"
)

// Float32 fast paths of the transcendental ops. The generic ops evaluate exp and tanh
// in float64 per element (math.Exp, math.Tanh), which dominates the CPU time of SiLU,
// GELU and softmax on float32 data; these evaluate them in float32 with a relative error
// of a few float32 ulps (fastmath_test.go bounds it against float64 math). float64
// devices keep the float64 formulas. On amd64 with AVX2, fastmath_amd64.s runs the same
// operations eight elements at a time, to the same bits.

// exp32 is e^x for float32: Cephes' expf (range reduction by ln 2 in two parts, a
// degree-6 polynomial, then the exponent). Outside [-87, 88] (where the result leaves
// the normal range or overflows) and for NaN it falls back to math.Exp.
func exp32(x float32) float32 {
	if !(x >= exp32Lo && x <= exp32Hi) {
		return float32(math.Exp(float64(x)))
	}
	n := float32(math.Floor(float64(x*exp32Log2e) + 0.5))
	r := x - n*exp32C1 - n*exp32C2
	p := exp32P0
	p = p*r + exp32P1
	p = p*r + exp32P2
	p = p*r + exp32P3
	p = p*r + exp32P4
	p = p*r + exp32P5
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// exp32's constants: its fast range, log2(e), ln 2 in two parts, the polynomial.
const (
	exp32Lo    = float32(-87)
	exp32Hi    = float32(88)
	exp32Log2e = float32(1.44269504088896341)
	exp32C1    = float32(0.693359375)
	exp32C2    = float32(-2.12194440e-4)
	exp32P0    = float32(1.9875691500e-4)
	exp32P1    = float32(1.3981999507e-3)
	exp32P2    = float32(8.3334519073e-3)
	exp32P3    = float32(4.1665795894e-2)
	exp32P4    = float32(1.6666665459e-1)
	exp32P5    = float32(5.0000001201e-1)
)

// sigmoid32 is 1/(1+e^-z); 0 for z below about -88 (e^-z overflows to +Inf).
func sigmoid32(z float32) float32 { return 1 / (1 + exp32(-z)) }

// GELU-tanh written with the sigmoid: 0.5 x (1 + tanh u) = x sigmoid(2u), u = c (x +
// 0.044715 x^3), which avoids the cancellation of 1 + tanh u for negative x.
const (
	gelu32C = float32(geluC)
	gelu32K = float32(0.044715)
)

// fm32 holds the constants of exp32, sigmoid32 and the activations for the AVX2 kernels
// (fastmath_amd64.s reads them by offset: keep the order). fm64Half is exp32's 0.5
// in float64, fm32Bias the float32 exponent bias.
var (
	fm32 = [...]float32{exp32Lo, exp32Hi, exp32Log2e, exp32C1, exp32C2, exp32P0, exp32P1, exp32P2, exp32P3, exp32P4, exp32P5,
		1, 2 * gelu32C, gelu32K, gelu32C, 3 * gelu32K, float32(math.Copysign(0, -1))}
	fm64Half        = 0.5
	fm32Bias uint32 = 127
)

func gelu32(v float32) float32 { return v * sigmoid32(2*gelu32C*(v+gelu32K*v*v*v)) }

func silu32(v float32) float32 { return v * sigmoid32(v) }

func geluGrad32(v float32) float32 {
	s := sigmoid32(2 * gelu32C * (v + gelu32K*v*v*v))
	return s + 2*v*s*(1-s)*gelu32C*(1+3*gelu32K*v*v)
}

func siluGrad32(v float32) float32 {
	s := sigmoid32(v)
	return s * (1 + v*(1-s))
}

// eights runs vec (an AVX2 kernel: it does what it can from i on and returns how many)
// where the CPU has AVX2 and vec is not nil, and scalar on the ranges vec leaves: each
// group of 8 it stops at, and the tail (all of [0, n) without AVX2).
func eights(n int, vec func(i int) int, scalar func(lo, hi int)) {
	i := 0
	for fastmathAVX2 && vec != nil && n-i >= 8 {
		if i += vec(i); n-i >= 8 {
			scalar(i, i+8)
			i += 8
		}
	}
	scalar(i, n)
}

func act32(a kernels.Act, y, x []float32) {
	y = y[:len(x)]
	switch a {
	case kernels.SiLU:
		eights(len(x), func(i int) int { return actAVX2(false, &y[i], &x[i], len(x)-i) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				y[i] = silu32(x[i])
			}
		})
	case kernels.GELUTanh:
		eights(len(x), func(i int) int { return actAVX2(true, &y[i], &x[i], len(x)-i) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				y[i] = gelu32(x[i])
			}
		})
	default:
		copy(y, x)
	}
}

// actGrad32 sets dx = beta*dx + dy*act'(x).
func actGrad32(a kernels.Act, dx, dy, x []float32, beta float32) {
	dx, dy = dx[:len(x)], dy[:len(x)]
	var vec func(i int) int
	if a == kernels.SiLU || a == kernels.GELUTanh {
		vec = func(i int) int { return actGradAVX2(a == kernels.GELUTanh, &dx[i], &dy[i], &x[i], len(x)-i, beta) }
	}
	eights(len(x), vec, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := float32(1)
			switch a {
			case kernels.SiLU:
				g = siluGrad32(x[i])
			case kernels.GELUTanh:
				g = geluGrad32(x[i])
			}
			g *= dy[i]
			if beta == 0 {
				dx[i] = g
			} else {
				dx[i] = beta*dx[i] + g
			}
		}
	})
}

// softmaxRow32 writes the softmax of row to out (sum in float64, as the generic op).
func softmaxRow32(out, row []float32) {
	out = out[:len(row)]
	mx := rowMax32(row)
	eights(len(row), func(j int) int { return expSubAVX2(&out[j], &row[j], len(row)-j, mx) }, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			out[j] = exp32(row[j] - mx)
		}
	})
	inv := float32(1 / expSum64(out))
	for j := range out {
		out[j] *= inv
	}
}

// rowMax32 is the largest value of row by Go's max, starting from -Inf: what the loop
// mx = max(mx, v) gives. Without NaNs that max is a total order (+0 above -0), so eight
// lanes (maxAVX2) and then the tail give it in any order; a row with a NaN goes through
// the loop, for that NaN's bits.
func rowMax32(row []float32) float32 {
	loop := func(xs []float32, mx float32) float32 {
		for _, v := range xs {
			mx = max(mx, v)
		}
		return mx
	}
	n8 := len(row) &^ 7
	if !fastmathAVX2 || n8 == 0 {
		return loop(row, float32(math.Inf(-1)))
	}
	if mx := loop(row[n8:], maxAVX2(&row[0], n8)); mx == mx {
		return mx
	}
	return loop(row, float32(math.Inf(-1)))
}

// expSumHi bounds the values whose float64 sum expSum64 takes in lanes (exp32 of x - max
// is at most 1; the bound leaves a factor 2).
const expSumHi = 2

// expSum64 is the float64 sum of e, values of exp32 at most 1, in increasing index: the
// sum of a sequential loop. When every value is 0 or in [lo, expSumHi], with lo =
// 2^(b-30) and expSumHi*len(e) < 2^b, every partial sum in any order is a multiple of
// 2^(b-53) below 2^b, so exact in float64: the sum does not depend on the order, and
// eight lanes (sumExactAVX2) give the loop's bits. Other rows (values below lo, NaNs)
// take the loop.
func expSum64(e []float32) float64 {
	if n8 := len(e) &^ 7; fastmathAVX2 && n8 > 0 {
		lo := float32(math.Ldexp(1, bits.Len(uint(expSumHi*len(e)))-30))
		var acc [4]float64
		ok := sumExactAVX2(&acc, &e[0], n8, lo, expSumHi)
		sum := acc[0] + acc[1] + acc[2] + acc[3]
		for _, v := range e[n8:] {
			ok = ok && (v == 0 || v >= lo && v <= expSumHi)
			sum += float64(v)
		}
		if ok {
			return sum
		}
	}
	var sum float64
	for _, v := range e {
		sum += float64(v)
	}
	return sum
}
