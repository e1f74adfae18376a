package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/immkit/immkit/kernels"
)

func randSlice(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func buf(d *Device[float64], s []float64) kernels.Buffer {
	b := d.Alloc(len(s))
	d.Write(b, s)
	return b
}

func TestGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, workers := range []int{1, 3} {
		d := New[float64](workers)
		// {64, 300, 260} with ta takes the transposed route for weight gradients (c^T = B^T A).
		for _, sh := range [][3]int{{1, 1, 1}, {5, 7, 3}, {300, 17, 40}, {130, 300, 9}, {64, 64, 0}, {64, 300, 260}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, ta := range []bool{false, true} {
				beta := 0.5
				if sh[2]%2 == 0 {
					beta = 0 // even k: the beta = 0 branches (c is overwritten, not read)
				}
				for _, tb := range []bool{false, true} {
					lda, ldb, ldc := k+2, n+1, n+3
					if ta {
						lda = m + 2
					}
					if tb {
						ldb = k + 1
					}
					a := randSlice(r, max(m, k)*lda)
					b := randSlice(r, max(n, k)*ldb)
					guard := 2
					c := make([]float64, m*ldc+guard)
					for i := range c {
						c[i] = math.NaN()
					}
					c0 := randSlice(r, m*ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							c[i*ldc+j] = c0[i*ldc+j]
						}
					}
					want := append([]float64(nil), c...)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s float64
							for l := 0; l < k; l++ {
								av, bv := a[i*lda+l], b[l*ldb+j]
								if ta {
									av = a[l*lda+i]
								}
								if tb {
									bv = b[j*ldb+l]
								}
								s += av * bv
							}
							want[i*ldc+j] = 1.5*s + beta*c0[i*ldc+j]
						}
					}
					ab, bb, cb := buf(d, a), buf(d, b), buf(d, c)
					a0 := append([]float64(nil), a...)
					d.Gemm(ta, tb, m, n, k, 1.5, ab, lda, bb, ldb, beta, cb, ldc)
					got := Data[float64](cb)
					for i := range got {
						if math.IsNaN(want[i]) != math.IsNaN(got[i]) {
							t.Fatalf("gemm %v: guard/padding element %d changed: %v", sh, i, got[i])
						}
						if !math.IsNaN(want[i]) && math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
							t.Fatalf("gemm %v ta=%v tb=%v: c[%d]=%v want %v", sh, ta, tb, i, got[i], want[i])
						}
					}
					for i := range a0 {
						if Data[float64](ab)[i] != a0[i] {
							t.Fatal("gemm wrote to a")
						}
					}
				}
			}
		}
	}
}

func TestGemmBatched(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := New[float64](2)
	m, n, k, batch := 4, 5, 6, 3
	a, b := randSlice(r, batch*m*k), randSlice(r, batch*n*k)
	c := make([]float64, batch*m*n)
	cb := buf(d, c)
	d.GemmBatched(false, true, m, n, k, 1, buf(d, a), k, m*k, buf(d, b), k, n*k, 0, cb, n, m*n, batch)
	want := make([]float64, len(c))
	for p := 0; p < batch; p++ {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				for l := 0; l < k; l++ {
					want[p*m*n+i*n+j] += a[p*m*k+i*k+l] * b[p*n*k+j*k+l]
				}
			}
		}
	}
	near(t, "batched", Data[float64](cb), want, 1e-12)
}

func TestFloat32Gemm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d := New[float32](2)
	m, n, k := 200, 3, 50
	a64, b64 := randSlice(r, m*k), randSlice(r, k*n)
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(a64[i])
	}
	for i := range b {
		b[i] = float32(b64[i])
	}
	ab, bb, cb := d.Alloc(m*k), d.Alloc(k*n), d.Alloc(m*n)
	d.Write(ab, a)
	d.Write(bb, b)
	d.Gemm(false, false, m, n, k, 1, ab, k, bb, n, 0, cb, n)
	got := Data[float32](cb)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += float64(a[i*k+l]) * float64(b[l*n+j])
			}
			if math.Abs(float64(got[i*n+j])-s) > 1e-4*(1+math.Abs(s)) {
				t.Fatalf("c[%d,%d]=%v want %v", i, j, got[i*n+j], s)
			}
		}
	}
}

func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	d := New[float64](3)
	rows, cols := 37, 11
	n := rows * cols
	x, y, a, b := randSlice(r, n), randSlice(r, n), randSlice(r, rows), randSlice(r, rows)
	v := randSlice(r, cols)

	dst := d.Alloc(n)
	d.RowComb(dst, buf(d, a), buf(d, x), buf(d, b), buf(d, y), rows, cols)
	want := make([]float64, n)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			want[i*cols+j] = a[i]*x[i*cols+j] + b[i]*y[i*cols+j]
		}
	}
	near(t, "RowComb", Data[float64](dst), want, 1e-15)
	d.RowComb(dst, buf(d, a), buf(d, x), nil, nil, rows, cols)
	for i := range want {
		want[i] = a[i/cols] * x[i]
	}
	near(t, "RowComb nil", Data[float64](dst), want, 1e-15)

	xb := buf(d, x)
	d.AddRowVector(xb, buf(d, v), rows, cols)
	for i := range want {
		want[i] = x[i] + v[i%cols]
	}
	near(t, "AddRowVector", Data[float64](xb), want, 1e-15)

	s := buf(d, v)
	d.SumRows(s, buf(d, x), rows, cols, 2)
	for j := 0; j < cols; j++ {
		acc := 2 * v[j]
		for i := 0; i < rows; i++ {
			acc += x[i*cols+j]
		}
		if math.Abs(Data[float64](s)[j]-acc) > 1e-12 {
			t.Fatalf("SumRows[%d]=%v want %v", j, Data[float64](s)[j], acc)
		}
	}

	yb := buf(d, y)
	d.Axpby(2, buf(d, x), -1, yb)
	for i := range want {
		want[i] = 2*x[i] - y[i]
	}
	near(t, "Axpby", Data[float64](yb), want, 1e-15)

	mb := buf(d, y)
	d.Mul(mb, buf(d, x), buf(d, y), 0.5)
	for i := range want {
		want[i] = x[i]*y[i] + 0.5*y[i]
	}
	near(t, "Mul", Data[float64](mb), want, 1e-15)

	mod := d.Alloc(n)
	d.Modulate(mod, buf(d, x), buf(d, y), buf(d, want))
	for i := range want {
		want[i] = x[i]*(1+want[i]) + y[i]
	}
	near(t, "Modulate", Data[float64](mod), want, 1e-15)

	// per-sequence vectors: 4 sequences of l rows; v, shift, scale a column block at off of
	// a [4, ld] matrix
	{
		const seqs, off, ld = 4, 3, 17
		l, c := rows/seqs, cols
		nn := l * seqs * c // the rows of whole sequences
		if c > ld-off {
			t.Fatalf("test shape: %d columns do not fit the block", c)
		}
		r := rand.New(rand.NewPCG(7, 8))
		vec := func() (kernels.Buffer, []float64) {
			h := make([]float64, seqs*ld)
			for i := range h {
				h[i] = r.NormFloat64()
			}
			b := buf(d, h)
			return d.Slice(b, off, len(h)-off), h
		}
		v, vh := vec()
		sh, shh := vec()
		for _, beta := range []float64{0, 0.5} {
			dst := buf(d, y)
			d.MulRows(dst, buf(d, x), v, l*seqs, l, c, ld, beta)
			for i := range want[:nn] {
				rr, j := i/c, i%c
				want[i] = x[i]*vh[(rr/l)*ld+off+j] + beta*y[i]
			}
			near(t, fmt.Sprintf("MulRows beta=%g", beta), Data[float64](dst)[:nn], want[:nn], 1e-15)
		}
		dst := d.Alloc(n)
		d.ModulateRows(dst, buf(d, x), sh, v, l*seqs, l, c, ld)
		for i := range want[:nn] {
			rr, j := i/c, i%c
			k := (rr/l)*ld + off + j
			want[i] = x[i]*(1+vh[k]) + shh[k]
		}
		near(t, "ModulateRows", Data[float64](dst)[:nn], want[:nn], 1e-15)
	}

	var sum, sq float64
	for _, u := range x {
		sum += u
		sq += u * u
	}
	if got := d.Sum(buf(d, x)); math.Abs(got-sum) > 1e-12 {
		t.Fatalf("Sum %v want %v", got, sum)
	}
	if got := d.SumSquares(buf(d, x)); math.Abs(got-sq) > 1e-12 {
		t.Fatalf("SumSquares %v want %v", got, sq)
	}
}

func TestActivations(t *testing.T) {
	d := New[float64](2)
	x := []float64{-6, -1.5, -0.3, 0, 0.2, 1, 3.5, 9}
	want := map[kernels.Act]func(float64) float64{
		kernels.Identity: func(u float64) float64 { return u },
		kernels.SiLU:     func(u float64) float64 { return u / (1 + math.Exp(-u)) },
		kernels.GELUTanh: func(u float64) float64 {
			return 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
		},
	}
	for a, f := range want {
		y := d.Alloc(len(x))
		d.Activate(a, y, buf(d, x))
		dx := d.Alloc(len(x))
		d.ActivateGrad(a, dx, buf(d, []float64{1, 1, 1, 1, 1, 1, 1, 1}), buf(d, x), 0)
		for i, u := range x {
			if g := Data[float64](y)[i]; math.Abs(g-f(u)) > 1e-14 {
				t.Fatalf("%v(%v)=%v want %v", a, u, g, f(u))
			}
			h := 1e-5
			fd := (f(u+h) - f(u-h)) / (2 * h)
			if g := Data[float64](dx)[i]; math.Abs(g-fd) > 1e-8 {
				t.Fatalf("%v'(%v)=%v, finite difference %v", a, u, g, fd)
			}
		}
	}
}

// fdCheck compares an analytic input gradient with central differences of sum(dy*f(x)).
func fdCheck(t *testing.T, what string, x, dy, dx []float64, f func(x []float64) []float64) {
	t.Helper()
	h := 1e-6
	for i := range x {
		old := x[i]
		x[i] = old + h
		yp := f(x)
		x[i] = old - h
		ym := f(x)
		x[i] = old
		var fd float64
		for j := range yp {
			fd += dy[j] * (yp[j] - ym[j]) / (2 * h)
		}
		if math.Abs(fd-dx[i]) > 1e-6*(1+math.Abs(fd)) {
			t.Fatalf("%s: dx[%d]=%v, finite difference %v", what, i, dx[i], fd)
		}
	}
}

func TestLayerNormAndSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	d := New[float64](2)
	rows, cols := 5, 7
	x, dy := randSlice(r, rows*cols), randSlice(r, rows*cols)
	ln := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i := 0; i < rows; i++ {
			var mu, va float64
			for j := 0; j < cols; j++ {
				mu += x[i*cols+j] / float64(cols)
			}
			for j := 0; j < cols; j++ {
				va += (x[i*cols+j] - mu) * (x[i*cols+j] - mu) / float64(cols)
			}
			for j := 0; j < cols; j++ {
				y[i*cols+j] = (x[i*cols+j] - mu) / math.Sqrt(va+1e-6)
			}
		}
		return y
	}
	y, mean, rstd := d.Alloc(rows*cols), d.Alloc(rows), d.Alloc(rows)
	xb := buf(d, x)
	d.LayerNorm(y, mean, rstd, xb, rows, cols, 1e-6)
	near(t, "LayerNorm", Data[float64](y), ln(x), 1e-12)
	dx := d.Alloc(rows * cols)
	d.LayerNormGrad(dx, buf(d, dy), xb, mean, rstd, rows, cols, 0)
	fdCheck(t, "LayerNormGrad", x, dy, Data[float64](dx), ln)

	sm := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i := 0; i < rows; i++ {
			var s float64
			for j := 0; j < cols; j++ {
				s += math.Exp(x[i*cols+j])
			}
			for j := 0; j < cols; j++ {
				y[i*cols+j] = math.Exp(x[i*cols+j]) / s
			}
		}
		return y
	}
	d.Softmax(y, xb, rows, cols)
	near(t, "Softmax", Data[float64](y), sm(x), 1e-12)
	d.SoftmaxGrad(dx, buf(d, dy), y, rows, cols, 0)
	fdCheck(t, "SoftmaxGrad", x, dy, Data[float64](dx), sm)
}

func TestEmbeddings(t *testing.T) {
	d := New[float64](1)
	table := []float64{0, 1, 10, 11, 20, 21}
	ids := []int32{2, 0, 2}
	dst := d.Alloc(6)
	d.Embed(dst, buf(d, table), ids, 2)
	near(t, "Embed", Data[float64](dst), []float64{20, 21, 0, 1, 20, 21}, 0)
	g := d.Alloc(6)
	d.EmbedGrad(g, buf(d, []float64{1, 2, 3, 4, 5, 6}), ids, 2)
	near(t, "EmbedGrad", Data[float64](g), []float64{3, 4, 0, 0, 6, 8}, 0)

	ts := []float64{0, 3, 500}
	te := d.Alloc(3 * 8)
	d.TimeEmbed(te, buf(d, ts), 3, 8)
	for i, tv := range ts {
		for k := 0; k < 4; k++ {
			f := math.Pow(10000, -float64(k)/4)
			got := Data[float64](te)[i*8:]
			if math.Abs(got[k]-math.Cos(tv*f)) > 1e-12 || math.Abs(got[4+k]-math.Sin(tv*f)) > 1e-12 {
				t.Fatalf("TimeEmbed row %d k %d", i, k)
			}
		}
	}
}

func TestAdamWAndEMA(t *testing.T) {
	d := New[float64](2)
	o := kernels.AdamW{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	p, g := []float64{1, -2, 0.5}, []float64{0.3, -0.1, 2}
	pb, gb, mb, vb := buf(d, p), buf(d, g), d.Alloc(3), d.Alloc(3)
	m, v := make([]float64, 3), make([]float64, 3)
	for step := 1; step <= 3; step++ {
		d.AdamW(pb, gb, mb, vb, o, step, 0.5)
		for i := range p {
			gi := g[i] * 0.5
			m[i] = 0.9*m[i] + 0.1*gi
			v[i] = 0.999*v[i] + 0.001*gi*gi
			mh := m[i] / (1 - math.Pow(0.9, float64(step)))
			vh := v[i] / (1 - math.Pow(0.999, float64(step)))
			p[i] -= 0.01 * (mh/(math.Sqrt(vh)+1e-8) + 0.1*p[i])
		}
	}
	near(t, "AdamW", Data[float64](pb), p, 1e-14)
	avg := buf(d, []float64{1, 1, 1})
	d.EMA(avg, buf(d, []float64{0, 2, 4}), 0.75)
	near(t, "EMA", Data[float64](avg), []float64{0.75, 1.25, 1.75}, 1e-15)

	// AdamWEMA: the same bits as AdamW then EMA, in float32 over several workers' ranges.
	f := New[float32](2)
	rng := rand.New(rand.NewPCG(5, 6))
	n := 3*elemGrain + 17
	vals := func(scale float64, abs bool) []float32 {
		s := make([]float32, n)
		for i := range s {
			x := rng.NormFloat64() * scale
			if abs {
				x = math.Abs(x)
			}
			s[i] = float32(x)
		}
		return s
	}
	p0, g0, m0, v0, a0 := vals(1, false), vals(0.1, false), vals(0.01, false), vals(1e-4, true), vals(1, false)
	two := [2][5]kernels.Buffer{}
	for k := range two {
		for j, s := range [][]float32{p0, g0, m0, v0, a0} {
			two[k][j] = f.Alloc(n)
			f.Write(two[k][j], s)
		}
	}
	for step := 4; step <= 6; step++ {
		s, u := two[0], two[1]
		f.AdamW(s[0], s[1], s[2], s[3], o, step, 0.7)
		f.EMA(s[4], s[0], 0.99)
		f.AdamWEMA(u[0], u[1], u[2], u[3], u[4], o, step, 0.7, 0.99)
	}
	for j, name := range []string{"p", "g", "m", "v", "avg"} {
		a, b := Data[float32](two[0][j]), Data[float32](two[1][j])
		if !slices.Equal(a, b) {
			t.Fatalf("AdamWEMA %s differs from AdamW then EMA", name)
		}
	}
	if slices.Equal(Data[float32](two[1][4]), a0) || slices.Equal(Data[float32](two[1][0]), p0) {
		t.Fatal("AdamWEMA left the weights or the average unchanged")
	}
}

// TestPhiloxKnownAnswers checks the Random123 known-answer vectors of philox4x32_10.
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct{ ctr, key, want []uint32 }{
		{[]uint32{0, 0, 0, 0}, []uint32{0, 0}, []uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}, []uint32{^uint32(0), ^uint32(0)}, []uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, []uint32{0xa4093822, 0x299f31d0}, []uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		got := philox4x32([4]uint32(c.ctr), [2]uint32(c.key))
		if got != [4]uint32(c.want) {
			t.Fatalf("philox(%x,%x) = %x, want %x", c.ctr, c.key, got, c.want)
		}
	}
}

func TestRandStreams(t *testing.T) {
	n := 200003
	var ref []float64
	for _, w := range []int{1, 2, 5} {
		d := New[float64](w)
		b := d.Alloc(n)
		d.RandNormal(b, 42, 7, 2)
		x := Data[float64](b)
		if ref == nil {
			ref = append([]float64(nil), x...)
		} else {
			near(t, "RandNormal across worker counts", x, ref, 0)
		}
	}
	var mu, va float64
	for _, v := range ref {
		mu += v / float64(n)
	}
	for _, v := range ref {
		va += (v - mu) * (v - mu) / float64(n)
	}
	if math.Abs(mu) > 0.03 || math.Abs(math.Sqrt(va)-2) > 0.03 {
		t.Fatalf("RandNormal mean %v std %v, want 0 and 2", mu, math.Sqrt(va))
	}
	d := New[float64](2)
	u := d.Alloc(n)
	d.RandUniform(u, 1, 0)
	var s float64
	for _, v := range Data[float64](u) {
		if v < 0 || v >= 1 {
			t.Fatalf("uniform %v outside [0,1)", v)
		}
		s += v / float64(n)
	}
	if math.Abs(s-0.5) > 0.01 {
		t.Fatalf("uniform mean %v", s)
	}
	// Offsetting the counter by one block shifts the stream by four elements.
	v := d.Alloc(8)
	d.RandUniform(v, 1, 1)
	near(t, "counter offset", Data[float64](v), Data[float64](u)[4:12], 0)
}

func TestLaplaceMMD(t *testing.T) {
	// segs nil is one Euclidean norm over the particle; {0, 2, 3, 7} sums three segment
	// norms (the product of three Laplace kernels); {0, 4, 7} has a segment that is equal
	// in two particles (its norm is clamped to 0 for that pair). m = 1 and 2 and a wider
	// particle (37, segments not multiples of 4) cover the pair loops and the loop tails.
	for _, c := range []struct {
		m, dim int
		segs   []int
	}{{4, 7, nil}, {4, 7, []int{0, 2, 3, 7}}, {4, 7, []int{0, 4, 7}}, {1, 9, nil}, {2, 37, []int{0, 13, 14, 37}}, {3, 37, nil}} {
		t.Run(fmt.Sprint(c.m, c.dim, c.segs), func(t *testing.T) {
			segs, m, dim := c.segs, c.m, c.dim
			r := rand.New(rand.NewPCG(11, 12))
			d := New[float64](2)
			groups := 3
			n := groups * m * dim
			yt, yr := randSlice(r, n), randSlice(r, n)
			shared := len(segs) == 3
			if shared {
				copy(yt[dim:dim+4], yt[:4]) // particles 0 and 1 of group 0 share segment 0
			}
			bounds := segs
			if bounds == nil {
				bounds = []int{0, dim}
			}
			kw := []float64{0.5, 2, 7}
			gw := []float64{1, 0.3, 2}
			ref := func(yt []float64) []float64 {
				out := make([]float64, groups)
				for g := 0; g < groups; g++ {
					k := func(a, b []float64, j, l int) float64 {
						var dist float64
						for q := 1; q < len(bounds); q++ {
							var s float64
							for i := bounds[q-1]; i < bounds[q]; i++ {
								v := a[(g*m+j)*dim+i] - b[(g*m+l)*dim+i]
								s += v * v
							}
							dist += math.Sqrt(s)
						}
						return math.Exp(-kw[g] * math.Max(dist, 1e-8) / float64(dim))
					}
					for j := 0; j < m; j++ {
						for l := 0; l < m; l++ {
							out[g] += (k(yt, yt, j, l) + k(yr, yr, j, l) - 2*k(yt, yr, j, l)) / float64(m*m)
						}
					}
				}
				return out
			}
			mmd, grad := d.Alloc(groups), d.Alloc(n)
			d.LaplaceMMD(mmd, grad, buf(d, yt), buf(d, yr), buf(d, kw), buf(d, gw), groups, m, dim, segs)
			near(t, "mmd", Data[float64](mmd), ref(yt), 1e-12)
			if !shared { // finite differences are not defined at the shared segment's kink
				fdCheck(t, "mmd grad", yt, gw, Data[float64](grad), ref)
			}
			// The MMD of a set with itself is zero.
			d.LaplaceMMD(mmd, nil, buf(d, yt), buf(d, yt), buf(d, kw), nil, groups, m, dim, segs)
			near(t, "mmd(x,x)", Data[float64](mmd), make([]float64, groups), 1e-15)
			// A NaN or an infinity in a row of group 1 (yt or yr) makes that group's MMD
			// NaN and leaves the others as they were.
			for _, bad := range []float64{math.NaN(), math.Inf(1)} {
				for _, inT := range []bool{true, false} {
					bt, br := slices.Clone(yt), slices.Clone(yr)
					tgt := br
					if inT {
						tgt = bt
					}
					tgt[(m+m-1)*dim+dim/2] = bad
					d.LaplaceMMD(mmd, grad, buf(d, bt), buf(d, br), buf(d, kw), buf(d, gw), groups, m, dim, segs)
					got, want := Data[float64](mmd), ref(yt)
					if !math.IsNaN(got[1]) || math.Abs(got[0]-want[0]) > 1e-12 || math.Abs(got[2]-want[2]) > 1e-12 {
						t.Fatalf("%v in a %s row of group 1: mmd %v, want NaN in group 1 and %v, %v", bad, map[bool]string{true: "yt", false: "yr"}[inT], got, want[0], want[2])
					}
				}
			}
		})
	}
}

func TestSegments(t *testing.T) {
	for _, c := range []struct {
		segs, want []int
	}{{nil, []int{0, 7}}, {[]int{0, 7}, []int{0, 7}}, {[]int{0, 3, 7}, []int{0, 3, 7}}, {[]int{0}, nil}, {[]int{1, 7}, nil},
		{[]int{0, 3, 6}, nil}, {[]int{0, 3, 3, 7}, nil}, {[]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, nil}} {
		d := 7
		if len(c.segs) == 10 {
			d = 9
		}
		got, err := kernels.Segments(c.segs, d)
		if (err == nil) != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("Segments(%v, %d) = %v, %v; want %v", c.segs, d, got, err, c.want)
		}
	}
}

// TestSumRowsTallFloat32: a float32 SumRows over 70,001 rows is within 1e-6 of the
// float64 sum (a float32 running sum is off by ~1e-5, more than the GPU parity tolerance).
func TestSumRowsTallFloat32(t *testing.T) {
	const rows, cols = 70001, 33
	d := New[float32](2)
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	xb := d.Alloc(len(x))
	d.Write(xb, x)
	s := d.Alloc(cols)
	d.SumRows(s, xb, rows, cols, 0)
	var maxDiff, maxRef float64
	for j := 0; j < cols; j++ {
		acc := 0.0
		for i := 0; i < rows; i++ {
			acc += float64(x[i*cols+j])
		}
		maxDiff = math.Max(maxDiff, math.Abs(float64(Data[float32](s)[j])-acc))
		maxRef = math.Max(maxRef, math.Abs(acc))
	}
	if rel := maxDiff / maxRef; rel > 1e-6 {
		t.Fatalf("SumRows of %dx%d float32: relative error %.3g against the float64 sum", rows, cols, rel)
	}
}

// TestSgemmPacked checks the float32 GEMM (the packed AVX2 kernel where the CPU has it)
// against a float64 loop: every transpose, edges of the 6x16 tiles, k over several 256
// blocks, leading dimensions wider than the matrices, alpha and beta, and C poisoned
// with NaN where beta is 0 (it must not be read).
func TestSgemmPacked(t *testing.T) {
	t.Logf("packed AVX2 kernel: %v", packedGemm)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {5, 15, 300}, {72, 64, 64}, {100, 33, 513}, {1024, 64, 256}, {13, 200, 77}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 0.75} {
					m, n, k := s.m, s.n, s.k
					lda, ldb, ldc := k+3, n+5, n+2
					if ta {
						lda = m + 3
					}
					if tb {
						ldb = k + 5
					}
					rowsA, rowsB := m, k
					if ta {
						rowsA = k
					}
					if tb {
						rowsB = n
					}
					a, b := make([]float32, rowsA*lda), make([]float32, rowsB*ldb)
					c := make([]float32, m*ldc)
					for i := range a {
						a[i] = float32(rng.NormFloat64())
					}
					for i := range b {
						b[i] = float32(rng.NormFloat64())
					}
					for i := range c {
						c[i] = float32(rng.NormFloat64())
						if beta == 0 {
							c[i] = float32(math.NaN())
						}
					}
					ref := make([]float64, m*n)
					var maxRef float64
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var sum float64
							for l := 0; l < k; l++ {
								var av, bv float32
								if ta {
									av = a[l*lda+i]
								} else {
									av = a[i*lda+l]
								}
								if tb {
									bv = b[j*ldb+l]
								} else {
									bv = b[l*ldb+j]
								}
								sum += float64(av) * float64(bv)
							}
							ref[i*n+j] = 1.5 * sum
							if beta != 0 {
								ref[i*n+j] += float64(beta) * float64(c[i*ldc+j])
							}
							maxRef = math.Max(maxRef, math.Abs(ref[i*n+j]))
						}
					}
					gemm := func(workers int) []float32 {
						d := New[float32](workers)
						cb, ab, bb := d.Alloc(len(c)), d.Alloc(len(a)), d.Alloc(len(b))
						d.Write(cb, c)
						d.Write(ab, a)
						d.Write(bb, b)
						d.Gemm(ta, tb, m, n, k, 1.5, ab, lda, bb, ldb, beta, cb, ldc)
						return Data[float32](cb)
					}
					got := gemm(3)
					// the same bits for any worker count
					for _, w := range []int{1, 2, 7} {
						for i, v := range gemm(w) {
							if v != got[i] && !(v != v && got[i] != got[i]) {
								t.Fatalf("%dx%dx%d: %d workers give c[%d] = %v, 3 workers %v", m, n, k, w, i, v, got[i])
							}
						}
					}
					var maxDiff float64
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							maxDiff = math.Max(maxDiff, math.Abs(float64(got[i*ldc+j])-ref[i*n+j]))
						}
						for j := n; j < ldc; j++ { // beyond n: untouched
							if g, w := got[i*ldc+j], c[i*ldc+j]; g != w && !(g != g && w != w) {
								t.Fatalf("%dx%dx%d: wrote c[%d,%d] beyond n", m, n, k, i, j)
							}
						}
					}
					if rel := maxDiff / maxRef; !(rel < 2e-6) {
						t.Errorf("%dx%dx%d ta=%v tb=%v beta=%v: relative error %.3g", m, n, k, ta, tb, beta, rel)
					}
				}
			}
		}
	}
}

// TestSgemmBatched checks the float32 GemmBatched (packed where the CPU has AVX2/FMA)
// against one Gemm per product: bit for bit, since every element must be summed as
// Gemm sums it, also where a tile holds rows of two products (shared B: all products'
// rows form one product) and whatever the worker count. Strides leave gaps between
// products (a segment of a sequence), beta is 0 (C poisoned with NaN), 1 and 0.75, and
// each result is also checked against a float64 loop.
func TestSgemmBatched(t *testing.T) {
	t.Logf("packed AVX2 kernel: %v", packedGemm)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range []struct{ m, n, k, batch int }{{5, 64, 300, 7}, {1, 17, 3, 13}, {33, 33, 16, 4}, {7, 40, 600, 3}, {80, 16, 5, 3}} {
		for _, sharedB := range []bool{true, false} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, beta := range []float32{0, 1, 0.75} {
						m, n, k := s.m, s.n, s.k
						lda, ldb, ldc := k+3, n+5, n+2
						rowsA, rowsB := m, k
						if ta {
							lda, rowsA = m+3, k
						}
						if tb {
							ldb, rowsB = k+5, n
						}
						sa, sb, sc := rowsA*lda+11, rowsB*ldb+7, m*ldc+13
						if sharedB {
							sb = 0
						}
						fill := func(n int, nan bool) []float32 {
							x := make([]float32, n)
							for i := range x {
								x[i] = float32(rng.NormFloat64())
								if nan {
									x[i] = float32(math.NaN())
								}
							}
							return x
						}
						a, b, c := fill(s.batch*sa, false), fill(s.batch*max(sb, 1)+rowsB*ldb, false), fill(s.batch*sc, beta == 0)
						name := fmt.Sprintf("%dx(%dx%dx%d) sharedB=%v ta=%v tb=%v beta=%v", s.batch, m, n, k, sharedB, ta, tb, beta)
						run := func(workers int, each bool) []float32 {
							d := New[float32](workers)
							ab, bb, cb := d.Alloc(len(a)), d.Alloc(len(b)), d.Alloc(len(c))
							d.Write(ab, a)
							d.Write(bb, b)
							d.Write(cb, c)
							if !each {
								d.GemmBatched(ta, tb, m, n, k, 1.5, ab, lda, sa, bb, ldb, sb, beta, cb, ldc, sc, s.batch)
								return Data[float32](cb)
							}
							for p := 0; p < s.batch; p++ {
								d.Gemm(ta, tb, m, n, k, 1.5, d.Slice(ab, p*sa, len(a)-p*sa), lda, d.Slice(bb, p*sb, len(b)-p*sb), ldb, beta, d.Slice(cb, p*sc, len(c)-p*sc), ldc)
							}
							return Data[float32](cb)
						}
						want := run(1, true)
						for _, w := range []int{1, 2, 5} {
							for i, v := range run(w, false) {
								if v != want[i] && !(v != v && want[i] != want[i]) {
									t.Fatalf("%s, %d workers: c[%d] = %v, one Gemm per product %v", name, w, i, v, want[i])
								}
							}
						}
						var maxDiff, maxRef float64
						for p := 0; p < s.batch; p++ {
							for i := 0; i < m; i++ {
								for j := 0; j < n; j++ {
									var sum float64
									for l := 0; l < k; l++ {
										ai, bi := p*sa+i*lda+l, p*sb+l*ldb+j
										if ta {
											ai = p*sa + l*lda + i
										}
										if tb {
											bi = p*sb + j*ldb + l
										}
										sum += float64(a[ai]) * float64(b[bi])
									}
									ref := 1.5 * sum
									if beta != 0 {
										ref += float64(beta) * float64(c[p*sc+i*ldc+j])
									}
									maxRef = math.Max(maxRef, math.Abs(ref))
									maxDiff = math.Max(maxDiff, math.Abs(float64(want[p*sc+i*ldc+j])-ref))
								}
							}
						}
						if rel := maxDiff / maxRef; !(rel < 2e-6) {
							t.Errorf("%s: relative error %.3g against float64", name, rel)
						}
					}
				}
			}
		}
	}
}

// GemmBiasAct and GemmActGrad against float64 loops written from their definitions, for
// every transpose, with and without the bias and the saved pre-activation.
func TestGemmEpilogues(t *testing.T) {
	d := New[float64](2)
	rng := rand.New(rand.NewPCG(4, 4))
	gelu := func(u float64) float64 { return 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u))) }
	dgelu := func(u float64) float64 { h := 1e-6; return (gelu(u+h) - gelu(u-h)) / (2 * h) }
	rnd := func(n int) []float64 { return randSlice(rng, n) }
	m, n, k := 7, 9, 5
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a, b, bias, pre0 := rnd(m*k), rnd(k*n), rnd(n), rnd(m*n)
			at := func(i, l int) float64 {
				if ta {
					return a[l*m+i]
				}
				return a[i*k+l]
			}
			bt := func(l, j int) float64 {
				if tb {
					return b[j*k+l]
				}
				return b[l*n+j]
			}
			lda, ldb := k, n
			if ta {
				lda = m
			}
			if tb {
				ldb = k
			}
			prod := func(i, j int) float64 {
				var s float64
				for l := 0; l < k; l++ {
					s += at(i, l) * bt(l, j)
				}
				return s
			}
			for _, withBias := range []bool{false, true} {
				for _, withPre := range []bool{false, true} {
					c, pre := d.Alloc(m*n), kernels.Buffer(nil)
					if withPre {
						pre = d.Alloc(m * n)
					}
					var bb kernels.Buffer
					if withBias {
						bb = buf(d, bias)
					}
					d.GemmBiasAct(ta, tb, m, n, k, buf(d, a), lda, buf(d, b), ldb, bb, kernels.GELUTanh, c, pre)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							z := prod(i, j)
							if withBias {
								z += bias[j]
							}
							if g := Data[float64](c)[i*n+j]; math.Abs(g-gelu(z)) > 1e-12 {
								t.Fatalf("GemmBiasAct ta=%v tb=%v bias=%v: c[%d,%d]=%v want %v", ta, tb, withBias, i, j, g, gelu(z))
							}
							if withPre && math.Abs(Data[float64](pre)[i*n+j]-z) > 1e-12 {
								t.Fatalf("GemmBiasAct ta=%v tb=%v bias=%v: pre[%d,%d]=%v want %v", ta, tb, withBias, i, j, Data[float64](pre)[i*n+j], z)
							}
						}
					}
				}
			}
			c := d.Alloc(m * n)
			d.GemmActGrad(ta, tb, m, n, k, buf(d, a), lda, buf(d, b), ldb, kernels.GELUTanh, buf(d, pre0), c)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					want := prod(i, j) * dgelu(pre0[i*n+j])
					if g := Data[float64](c)[i*n+j]; math.Abs(g-want) > 1e-8 {
						t.Fatalf("GemmActGrad ta=%v tb=%v: c[%d,%d]=%v want %v", ta, tb, i, j, g, want)
					}
				}
			}
		}
	}
}

// AdaLayerNorm and AdaLayerNormGrad (one pass per row) against their definitions composed
// of LayerNorm, ModulateRows, MulRows, Axpby, LayerNormGrad and Mul (kernels.AdaLayerNormOps).
func TestAdaLayerNorm(t *testing.T) {
	d := New[float64](2)
	rng := rand.New(rand.NewPCG(5, 6))
	rows, l, cols, ld := 12, 3, 17, 40
	x, dy, mod := buf(d, randSlice(rng, rows*cols)), buf(d, randSlice(rng, rows*cols)), buf(d, randSlice(rng, rows/l*ld))
	shift, scale := d.Slice(mod, 2, rows/l*ld-2), d.Slice(mod, 2+cols, rows/l*ld-2-cols)
	y1, m1, r1 := d.Alloc(rows*cols), d.Alloc(rows), d.Alloc(rows)
	y2, m2, r2 := d.Alloc(rows*cols), d.Alloc(rows), d.Alloc(rows)
	d.AdaLayerNorm(y1, m1, r1, x, shift, scale, rows, l, cols, ld, 1e-5)
	kernels.AdaLayerNormOps[float64](d, y2, m2, r2, x, shift, scale, rows, l, cols, ld, 1e-5)
	near(t, "y", Data[float64](y1), Data[float64](y2), 1e-14)
	near(t, "mean", Data[float64](m1), Data[float64](m2), 1e-14)
	near(t, "rstd", Data[float64](r1), Data[float64](r2), 1e-14)
	dx1, ds1, dx2, ds2 := d.Alloc(rows*cols), d.Alloc(rows*cols), d.Alloc(rows*cols), d.Alloc(rows*cols)
	d.AdaLayerNormGrad(dx1, ds1, dy, x, m1, r1, scale, rows, l, cols, ld, 1e-5)
	kernels.AdaLayerNormGradOps[float64](d, dx2, ds2, dy, x, m2, r2, scale, rows, l, cols, ld, 1e-5)
	near(t, "dx", Data[float64](dx1), Data[float64](dx2), 1e-13)
	near(t, "dscale", Data[float64](ds1), Data[float64](ds2), 1e-13)
}
