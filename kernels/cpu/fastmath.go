package cpu

import (
	"math"

	"github.com/immkit/immkit/kernels"
)

// Float32 fast paths of the transcendental ops. The generic ops evaluate exp and tanh
// in float64 per element (math.Exp, math.Tanh), which dominates the CPU time of SiLU,
// GELU and softmax on float32 data; these evaluate them in float32 with a relative error
// of a few float32 ulps (fastmath_test.go bounds it against float64 math). float64
// devices keep the float64 formulas.

// exp32 is e^x for float32: Cephes' expf (range reduction by ln 2 in two parts, a
// degree-6 polynomial, then the exponent). Outside [-87, 88] (where the result leaves
// the normal range or overflows) and for NaN it falls back to math.Exp.
func exp32(x float32) float32 {
	if !(x >= -87 && x <= 88) {
		return float32(math.Exp(float64(x)))
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	n := float32(math.Floor(float64(x*log2e) + 0.5))
	r := x - n*c1 - n*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	return y * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// sigmoid32 is 1/(1+e^-z); 0 for z below about -88 (e^-z overflows to +Inf).
func sigmoid32(z float32) float32 { return 1 / (1 + exp32(-z)) }

// GELU-tanh written with the sigmoid: 0.5 x (1 + tanh u) = x sigmoid(2u), u = c (x +
// 0.044715 x^3), which avoids the cancellation of 1 + tanh u for negative x.
const (
	gelu32C = float32(geluC)
	gelu32K = float32(0.044715)
)

func act32(a kernels.Act, y, x []float32) {
	y = y[:len(x)]
	switch a {
	case kernels.SiLU:
		for i, v := range x {
			y[i] = v * sigmoid32(v)
		}
	case kernels.GELUTanh:
		for i, v := range x {
			y[i] = v * sigmoid32(2*gelu32C*(v+gelu32K*v*v*v))
		}
	default:
		copy(y, x)
	}
}

// actGrad32 sets dx = beta*dx + dy*act'(x).
func actGrad32(a kernels.Act, dx, dy, x []float32, beta float32) {
	dx, dy = dx[:len(x)], dy[:len(x)]
	for i, v := range x {
		var g float32
		switch a {
		case kernels.SiLU:
			s := sigmoid32(v)
			g = s * (1 + v*(1-s))
		case kernels.GELUTanh:
			s := sigmoid32(2 * gelu32C * (v + gelu32K*v*v*v))
			g = s + 2*v*s*(1-s)*gelu32C*(1+3*gelu32K*v*v)
		default:
			g = 1
		}
		g *= dy[i]
		if beta == 0 {
			dx[i] = g
		} else {
			dx[i] = beta*dx[i] + g
		}
	}
}

// softmaxRow32 writes the softmax of row to out (sum in float64, as the generic op).
func softmaxRow32(out, row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		mx = max(mx, v)
	}
	var sum float64
	out = out[:len(row)]
	for j, v := range row {
		e := exp32(v - mx)
		out[j] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for j := range out {
		out[j] *= inv
	}
}
