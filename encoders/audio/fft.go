package audio

import (
	"math"

	"gonum.org/v1/gonum/dsp/fourier"
)

// realFFT computes power spectra of real frames of even length n through a complex FFT of
// length n/2 (mixed radix 2, 3, 4, 5 and generic odd radices, Stockham autosort, twiddles
// precomputed). Odd lengths fall back to gonum's fourier.FFT.
type realFFT struct {
	n      int
	cplx   *cfftPlan    // length n/2; nil for odd n
	post   []complex128 // exp(-2 pi i k / n), k = 0..n/2
	gonumN bool
}

func newRealFFT(n int) *realFFT {
	r := &realFFT{n: n}
	if n%2 == 1 {
		r.gonumN = true
		return r
	}
	m := n / 2
	r.cplx = newCFFTPlan(m)
	r.post = make([]complex128, m+1)
	for k := range r.post {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		r.post[k] = complex(c, s)
	}
	return r
}

type fftScratch struct {
	a, b  []complex128
	plan  *fourier.FFT
	coeff []complex128
}

func (r *realFFT) newScratch() *fftScratch {
	if r.gonumN {
		return &fftScratch{plan: fourier.NewFFT(r.n), coeff: make([]complex128, r.n/2+1)}
	}
	m := r.n / 2
	return &fftScratch{a: make([]complex128, m), b: make([]complex128, m)}
}

// power sets dst[k] = |sum_j x[j] exp(-2 pi i j k / n)|^2 for k = 0..n/2.
func (r *realFFT) power(dst, x []float64, s *fftScratch) {
	if r.gonumN {
		c := s.plan.Coefficients(s.coeff, x)
		for k, v := range c {
			dst[k] = real(v)*real(v) + imag(v)*imag(v)
		}
		return
	}
	m := r.n / 2
	z := s.a[:m]
	x = x[:2*m]
	for j := range z {
		z[j] = complex(x[2*j], x[2*j+1])
	}
	Z := r.cplx.transform(z, s.b[:m])
	dst = dst[:m+1]
	// X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[m-k])/2, O = (Z[k] - conj Z[m-k])/(2i).
	z0 := Z[0]
	dst[0] = (real(z0) + imag(z0)) * (real(z0) + imag(z0))
	dst[m] = (real(z0) - imag(z0)) * (real(z0) - imag(z0))
	post := r.post[:m+1]
	for k := 1; k < m; k++ {
		zk, zc := Z[k], Z[m-k]
		er, ei := 0.5*(real(zk)+real(zc)), 0.5*(imag(zk)-imag(zc))
		// O = (zk - conj zc) / (2i) = (a + ib)/(2i) = (b - ia)/2
		a, b := real(zk)-real(zc), imag(zk)+imag(zc)
		or, oi := 0.5*b, -0.5*a
		w := post[k]
		xr := er + real(w)*or - imag(w)*oi
		xi := ei + real(w)*oi + imag(w)*or
		dst[k] = xr*xr + xi*xi
	}
}

// cfftPlan is a forward complex FFT of length n: X[k] = sum_j x[j] exp(-2 pi i j k / n).
// It runs the Stockham autosort algorithm: for each stage of radix p with ns the product
// of the earlier radices, butterfly j reads x[j + r*n/p] (r < p), multiplies by
// exp(-2 pi i r (j mod ns) / (ns p)), takes a p-point DFT and writes
// y[(j/ns)*ns*p + j mod ns + r*ns].
type cfftPlan struct {
	n      int
	stages []cfftStage
}

type cfftStage struct {
	p, ns int
	tw    []complex128 // tw[k*(p-1)+r-1] = exp(-2 pi i r k / (ns p)), k < ns, 1 <= r < p
	dft   []complex128 // generic radix only: exp(-2 pi i a / p), a < p
}

func newCFFTPlan(n int) *cfftPlan {
	pl := &cfftPlan{n: n}
	var radices []int
	m := n
	for m%4 == 0 {
		radices = append(radices, 4)
		m /= 4
	}
	for _, p := range []int{2, 3, 5} {
		for m%p == 0 {
			radices = append(radices, p)
			m /= p
		}
	}
	for p := 7; m > 1; p += 2 {
		for m%p == 0 {
			radices = append(radices, p)
			m /= p
		}
	}
	ns := 1
	for _, p := range radices {
		st := cfftStage{p: p, ns: ns, tw: make([]complex128, ns*(p-1))}
		for k := 0; k < ns; k++ {
			for r := 1; r < p; r++ {
				s, c := math.Sincos(-2 * math.Pi * float64(r*k) / float64(ns*p))
				st.tw[k*(p-1)+r-1] = complex(c, s)
			}
		}
		if p > 5 {
			st.dft = make([]complex128, p)
			for a := range st.dft {
				s, c := math.Sincos(-2 * math.Pi * float64(a) / float64(p))
				st.dft[a] = complex(c, s)
			}
		}
		pl.stages = append(pl.stages, st)
		ns *= p
	}
	return pl
}

// transform computes the FFT of x using y as scratch; the result is in x or y (returned).
// Both must have length n.
func (pl *cfftPlan) transform(x, y []complex128) []complex128 {
	n := pl.n
	for i := range pl.stages {
		st := &pl.stages[i]
		switch st.p {
		case 2:
			radix2(x, y, n, st.ns, st.tw)
		case 3:
			radix3(x, y, n, st.ns, st.tw)
		case 4:
			radix4(x, y, n, st.ns, st.tw)
		case 5:
			radix5(x, y, n, st.ns, st.tw)
		default:
			radixGeneric(x, y, n, st.p, st.ns, st.tw, st.dft)
		}
		x, y = y, x
	}
	return x
}

func cmul(a, b complex128) complex128 {
	return complex(real(a)*real(b)-imag(a)*imag(b), real(a)*imag(b)+imag(a)*real(b))
}

func radix2(x, y []complex128, n, ns int, tw []complex128) {
	q := n / 2
	for j := 0; j < q; j++ {
		k := j % ns
		a, b := x[j], cmul(x[j+q], tw[k])
		d := (j-k)*2 + k
		y[d], y[d+ns] = a+b, a-b
	}
}

func radix4(x, y []complex128, n, ns int, tw []complex128) {
	q := n / 4
	x0, x1, x2, x3 := x[0:q], x[q:2*q], x[2*q:3*q], x[3*q:4*q]
	for k := 0; k < ns; k++ {
		w1, w2, w3 := tw[3*k], tw[3*k+1], tw[3*k+2]
		for j := k; j < q; j += ns {
			a0 := x0[j]
			a1 := cmul(x1[j], w1)
			a2 := cmul(x2[j], w2)
			a3 := cmul(x3[j], w3)
			s02, d02 := a0+a2, a0-a2
			s13, d13 := a1+a3, a1-a3
			// -i * d13
			md := complex(imag(d13), -real(d13))
			d := (j-k)*4 + k
			y[d] = s02 + s13
			y[d+ns] = d02 + md
			y[d+2*ns] = s02 - s13
			y[d+3*ns] = d02 - md
		}
	}
}

func radix3(x, y []complex128, n, ns int, tw []complex128) {
	q := n / 3
	const c1 = -0.5
	s1 := -math.Sqrt(3) / 2
	for j := 0; j < q; j++ {
		k := j % ns
		a0 := x[j]
		a1 := cmul(x[j+q], tw[2*k])
		a2 := cmul(x[j+2*q], tw[2*k+1])
		t1 := a1 + a2
		t2 := a0 + complex(c1, 0)*t1
		t3 := a1 - a2
		// s1 * i * t3
		m := complex(-s1*imag(t3), s1*real(t3))
		d := (j-k)*3 + k
		y[d] = a0 + t1
		y[d+ns] = t2 + m
		y[d+2*ns] = t2 - m
	}
}

func radix5(x, y []complex128, n, ns int, tw []complex128) {
	q := n / 5
	c1 := math.Cos(2 * math.Pi / 5)
	c2 := math.Cos(4 * math.Pi / 5)
	s1 := -math.Sin(2 * math.Pi / 5)
	s2 := -math.Sin(4 * math.Pi / 5)
	x0, x1, x2, x3, x4 := x[0:q], x[q:2*q], x[2*q:3*q], x[3*q:4*q], x[4*q:5*q]
	for k := 0; k < ns; k++ {
		w1, w2, w3, w4 := tw[4*k], tw[4*k+1], tw[4*k+2], tw[4*k+3]
		for j := k; j < q; j += ns {
			a0 := x0[j]
			a1 := cmul(x1[j], w1)
			a2 := cmul(x2[j], w2)
			a3 := cmul(x3[j], w3)
			a4 := cmul(x4[j], w4)
			b1, b4 := a1+a4, a1-a4
			b2, b3 := a2+a3, a2-a3
			r1 := a0 + complex(c1*real(b1)+c2*real(b2), c1*imag(b1)+c2*imag(b2))
			r2 := a0 + complex(c2*real(b1)+c1*real(b2), c2*imag(b1)+c1*imag(b2))
			// i*(s1*b4 + s2*b3) and i*(s2*b4 - s1*b3)
			u1r, u1i := s1*real(b4)+s2*real(b3), s1*imag(b4)+s2*imag(b3)
			u2r, u2i := s2*real(b4)-s1*real(b3), s2*imag(b4)-s1*imag(b3)
			i1 := complex(-u1i, u1r)
			i2 := complex(-u2i, u2r)
			d := (j-k)*5 + k
			y[d] = a0 + b1 + b2
			y[d+ns] = r1 + i1
			y[d+2*ns] = r2 + i2
			y[d+3*ns] = r2 - i2
			y[d+4*ns] = r1 - i1
		}
	}
}

func radixGeneric(x, y []complex128, n, p, ns int, tw, dft []complex128) {
	q := n / p
	v := make([]complex128, p)
	for j := 0; j < q; j++ {
		k := j % ns
		v[0] = x[j]
		for r := 1; r < p; r++ {
			v[r] = cmul(x[j+r*q], tw[k*(p-1)+r-1])
		}
		d := (j-k)*p + k
		for a := 0; a < p; a++ {
			var s complex128
			for r := 0; r < p; r++ {
				s += cmul(v[r], dft[(a*r)%p])
			}
			y[d+a*ns] = s
		}
	}
}
