package cuda

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
)

// keptTol is how far a product with kept rounded operands may be from the same product
// rounding its float32 operands itself: the same bf16 values go into the same cuBLAS
// call, so nothing on the emulator; on a GPU cuBLAS may choose another algorithm for
// other addresses (FP32 accumulation in another order).
func keptTol(d *Device) float64 {
	if strings.Contains(d.ctx.Name, "emulator") {
		return 0
	}
	return 1e-5
}

// bf16RNE rounds x to bf16 (to nearest, ties to even) and back: the reference of
// round_bf16 and to_bf16 for finite x.
func bf16RNE(x float32) float32 {
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b & 0xffff0000)
}

// mustPanic runs f and fails unless it panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		if v == nil || !strings.Contains(fmt.Sprint(v), want) {
			t.Errorf("panic %v, want one containing %q", v, want)
		}
	}()
	f()
}

// bf16Device is a bf16 view of the GPU device that keeps rounded operands (or not) and
// lets layers ask for bf16 outputs (or not).
func bf16Device(t *testing.T, g kernels.Device[float32], keep, out bool) *Device {
	t.Helper()
	gd, ok := g.(*Device)
	if !ok {
		t.Skip("not run: the CPU stand-in has no bf16 products")
	}
	c := *withBF16(gd).(*Device)
	c.keep, c.out16 = keep, out
	return &c
}

// TestRoundedOperands checks the bf16 operand copies of kernels.OperandRounder on the
// GPU. Round, a Slice of its storage and RoundTemp round to nearest even: read back
// exactly through a bf16 product with the identity, against a host rounding that
// includes ties. Gemm (four transposes, padded leading dimensions, beta), GemmBatched
// (strided, and an operand shared by the batch), GemmBiasAct (fused GELU with bias and
// pre-activation, the bias epilogue, SiLU falling back to separate ops) and GemmActGrad
// give the same output with rounded copies as with the float32 operands they came from,
// and round nothing more. A copy where float32 memory is needed, and a product reading
// past a copy's end, panic with a message. AdaLayerNorm writes the rounding of its
// float32 output into rounded storage.
func TestRoundedOperands(t *testing.T) {
	r := newRig(t)
	dev := bf16Device(t, r.g, true, true)
	if !dev.RoundsOperands() || !dev.RoundsOutputs() || kernels.Rounder[float32](dev) == nil {
		t.Fatal("a bf16 device that keeps rounded operands and outputs says it does not round them")
	}
	if kernels.Rounder[float32](withTF32(r.g)) != nil || kernels.Rounder[float32](bf16Device(t, r.g, false, true)) != nil {
		t.Fatal("a TF32 device, or one with IMMKIT_CUDA_BF16_KEEP=0, says it rounds operands")
	}
	if bf16Device(t, r.g, true, false).RoundsOutputs() {
		t.Fatal("a device with IMMKIT_CUDA_BF16_OUT=0 says it rounds outputs")
	}
	tol := keptTol(dev)

	// Round's values, through A_rounded x I (exact: one nonzero term per output)
	rows, cols := 37, 64
	host := make([]float32, rows*cols)
	for i := range host {
		host[i] = float32(r.rng.NormFloat64() * math.Pow(10, float64(i%7-3)))
	}
	// ties: the low 16 bits exactly half, above an even and above an odd bf16
	host[5] = math.Float32frombits(0x3f808000)
	host[6] = math.Float32frombits(0x3f818000)
	host[7] = math.Float32frombits(0xbf818000)
	a := r.put(host)
	id := make([]float32, cols*cols)
	for i := range cols {
		id[i*cols+i] = 1
	}
	ib := r.put(id)
	whole, at := dev.AllocRounded(2*rows*cols+3), rows*cols+3
	copies := map[string]kernels.Buffer{"Round": dev.Slice(whole, 0, rows*cols), "Round into a Slice": dev.Slice(dev.Slice(whole, 1, at-1+rows*cols), at-1, rows*cols)}
	dev.Round(copies["Round"], a.g)
	dev.Round(copies["Round into a Slice"], a.g)
	for _, name := range []string{"Round", "Round into a Slice", "RoundTemp"} {
		ar := copies[name]
		if name == "RoundTemp" {
			ar = dev.RoundTemp(a.g, rows*cols)
		}
		out := r.out(rows * cols)
		dev.Gemm(false, false, rows, cols, cols, 1, ar, cols, ib.g, cols, 0, out.g, cols)
		got := make([]float32, rows*cols)
		dev.Read(got, out.g)
		bad := 0
		for i, v := range host {
			if want := bf16RNE(v); got[i] != want {
				if bad < 5 {
					t.Errorf("%s: element %d (%08x) rounded to %08x, want %08x", name, i, math.Float32bits(v), math.Float32bits(got[i]), math.Float32bits(want))
				}
				bad++
			}
		}
		t.Logf("PARITY\tRound (bf16, exact)\t%s %dx%d\t%d wrong", name, rows, cols, bad)
	}

	// the products: rounded copies against the float32 operands
	sameOut := func(op, shape string, run func(a, b kernels.Buffer, out pair), a, b pair, n int) {
		t.Helper()
		want := r.in(n, 1, 0)
		got := r.put(want.host)
		run(a.g, b.g, want)
		ar, br := dev.AllocRounded(a.g.Len()), dev.RoundTemp(b.g, b.g.Len())
		dev.Round(ar, a.g)
		p0, _ := dev.BF16Rounded()
		run(ar, br, got)
		if p1, _ := dev.BF16Rounded(); p1 != p0 {
			t.Errorf("%s %s: the product rounded %d more elements although both operands were rounded copies", op, shape, p1-p0)
		}
		wh := make([]float32, n)
		dev.Read(wh, want.g)
		d := relDiff(dev, got.g, wh)
		t.Logf("PARITY\t%s/bf16 kept operands vs rounding its own\t%s\t%.3g", op, shape, d)
		if !(d <= tol) {
			t.Errorf("%s %s: rounded copies give %.3g relative difference (tolerance %g)", op, shape, d, tol)
		}
	}
	for _, c := range []struct {
		ta, tb  bool
		m, n, k int
		beta    float32
	}{{false, false, 130, 70, 257, 0}, {true, false, 64, 129, 33, 0.5}, {false, true, 1, 300, 64, 0}, {true, true, 200, 3, 100, -1}} {
		ar, ac, br, bc := stored2(c.ta, c.m, c.k, c.tb, c.n)
		lda, ldb, ldc := ac+3, bc+1, c.n+2
		a, b := r.in(ar*lda, 1, 0.1), r.in(br*ldb, 1, -0.1)
		sameOut("Gemm", fmt.Sprintf("%dx%dx%d ta=%v tb=%v beta=%g", c.m, c.n, c.k, c.ta, c.tb, c.beta), func(a, b kernels.Buffer, out pair) {
			dev.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1.25, a, lda, b, ldb, c.beta, out.g, ldc)
		}, a, b, c.m*ldc)
	}
	m, n, k, batch := 33, 17, 64, 12
	sa, sb, sc := m*k+5, k*n+7, m*n+3
	ba, bb := r.in(batch*sa, 1, 0), r.in(batch*sb, 1, 0)
	for _, strideA := range []int{sa, 0} {
		sameOut("GemmBatched", fmt.Sprintf("%dx(%dx%dx%d) strideA=%d", batch, m, n, k, strideA), func(a, b kernels.Buffer, out pair) {
			dev.GemmBatched(true, false, m, n, k, 0.5, a, m, strideA, b, n, sb, 1, out.g, n, sc, batch)
		}, ba, bb, batch*sc)
	}
	m, n, k = 130, 96, 70
	x, w, bias := r.in(m*k, 1, 0.1), r.in(n*k, 1, -0.1), r.in(n, 1, 0)
	for _, c := range []struct {
		act  kernels.Act
		pre  bool
		bias bool
	}{{kernels.GELUTanh, true, true}, {kernels.Identity, false, true}, {kernels.SiLU, true, true}, {kernels.GELUTanh, true, false}} {
		var bb kernels.Buffer
		if c.bias {
			bb = bias.g
		}
		shape := fmt.Sprintf("%dx%dx%d %s bias=%v pre=%v", m, n, k, c.act, c.bias, c.pre)
		sameOut("GemmBiasAct", shape, func(a, b kernels.Buffer, out pair) {
			var pb kernels.Buffer // the pre-activation: the second half of out
			if c.pre {
				pb = dev.Slice(out.g, m*n, m*n)
			}
			dev.GemmBiasAct(false, true, m, n, k, a, k, b, k, bb, c.act, dev.Slice(out.g, 0, m*n), pb)
		}, x, w, 2*m*n)
	}
	pre := r.in(m*k, 1, 0)
	dy, wt := r.in(m*n, 1, 0), r.in(n*k, 1, 0)
	sameOut("GemmActGrad", fmt.Sprintf("%dx%dx%d gelu-tanh", m, k, n), func(a, b kernels.Buffer, out pair) {
		dev.GemmActGrad(false, false, m, k, n, a, n, b, k, kernels.GELUTanh, pre.g, out.g)
	}, dy, wt, m*k)

	// AdaLayerNorm into rounded storage (warp, block and wider-than-block rows): the
	// float32 op's output rounded, exactly, and the same mean and rstd
	for _, cols := range []int{384, 1500, 5000} {
		rows, l, ld := 8, 4, 2*cols
		x, mod := r.in(rows*cols, 2, 0.5), r.in(rows/l*ld, 0.3, 0)
		shift, scale := mod.g, dev.Slice(mod.g, cols, rows/l*ld-cols)
		y, m1, s1, m2, s2 := r.out(rows*cols), r.out(rows), r.out(rows), r.out(rows), r.out(rows)
		dev.AdaLayerNorm(y.g, m1.g, s1.g, x.g, shift, scale, rows, l, cols, ld, 1e-6)
		yr := dev.AllocRounded(rows * cols)
		dev.AdaLayerNorm(yr, m2.g, s2.g, x.g, shift, scale, rows, l, cols, ld, 1e-6)
		id := make([]float32, cols*cols)
		for i := range cols {
			id[i*cols+i] = 1
		}
		got := r.out(rows * cols)
		dev.Gemm(false, false, rows, cols, cols, 1, yr, cols, r.put(id).g, cols, 0, got.g, cols)
		want, have := make([]float32, rows*cols), make([]float32, rows*cols)
		dev.Read(want, y.g)
		dev.Read(have, got.g)
		bad := 0
		for i := range want {
			if bf16RNE(want[i]) != have[i] {
				bad++
			}
		}
		for _, pr := range [][2]pair{{m1, m2}, {s1, s2}} {
			a, b := make([]float32, rows), make([]float32, rows)
			dev.Read(a, pr[0].g)
			dev.Read(b, pr[1].g)
			if !slices.Equal(a, b) {
				t.Errorf("AdaLayerNorm %dx%d into rounded storage: mean or rstd %v, float32 output's %v", rows, cols, b, a)
			}
		}
		t.Logf("PARITY	AdaLayerNorm into rounded storage (exact)	%dx%d	%d wrong", rows, cols, bad)
		if bad != 0 {
			t.Errorf("AdaLayerNorm %dx%d into rounded storage: %d of %d values are not the float32 output rounded", rows, cols, bad, rows*cols)
		}
	}

	cp := dev.AllocRounded(16)
	mustPanic(t, "bf16 products only", func() { dev.Axpby(1, cp, 1, r.in(16, 1, 0).g) })
	mustPanic(t, "past the 16 elements", func() { dev.Gemm(false, false, 5, 4, 4, 1, cp, 4, ib.g, cols, 0, r.out(20).g, 4) })
	mustPanic(t, "not storage from AllocRounded", func() { dev.Round(r.out(4).g, a.g) })
}

// readRounded reads rounded storage of rows x cols back as float32, exactly: through a
// bf16 product with the identity (one nonzero term per output).
func readRounded(r *rig, dev *Device, b kernels.Buffer, rows, cols int) []float32 {
	id := make([]float32, cols*cols)
	for i := range cols {
		id[i*cols+i] = 1
	}
	out := r.out(rows * cols)
	dev.Gemm(false, false, rows, cols, cols, 1, b, cols, r.put(id).g, cols, 0, out.g, cols)
	h := make([]float32, rows*cols)
	dev.Read(h, out.g)
	return h
}

// roundedWrong counts the elements of got (read back from rounded storage) that are not
// want rounded to bf16: exactly on the emulator; on a GPU, where cuBLAS may choose
// another algorithm for a bf16 output than for a float32 one, within one bf16 ulp.
func roundedWrong(t *testing.T, dev *Device, what string, got, want []float32) int {
	t.Helper()
	ulps := 0.0
	if keptTol(dev) != 0 {
		ulps = 1
	}
	return roundedWrongUlps(t, ulps, what, got, want)
}

// roundedWrongUlps is roundedWrong allowing ulps bf16 ulps everywhere.
func roundedWrongUlps(t *testing.T, ulps float64, what string, got, want []float32) int {
	t.Helper()
	bad := 0
	for i, w := range want {
		rw := bf16RNE(w)
		d := math.Abs(float64(got[i]) - float64(rw))
		if !(d <= ulps*math.Abs(float64(rw))/128) {
			if bad < 5 {
				t.Errorf("%s: element %d is %v, want %v rounded (%v)", what, i, got[i], w, rw)
			}
			bad++
		}
	}
	return bad
}

// TestRoundedOutputs checks the bf16 outputs of kernels.OperandRounder.RoundsOutputs on
// the GPU, with cuBLASLt's fused epilogues and without (IMMKIT_CUDA_LT=0): GemmBiasAct
// into rounded storage (GELU with bias and pre-activation, GELU without bias, the bias
// epilogue, no epilogue, SiLU, which cuBLASLt has no epilogue for, and a width that is
// not a multiple of 8, which its auxiliary matrix needs) writes the float32 op's output
// and pre-activation, given the bf16-rounded bias, rounded to bf16; GemmActGrad from a
// rounded pre-activation into rounded storage writes the float32 op's output for the same
// pre-activation values rounded; Gemm, GemmBatched and MulRows into rounded storage
// write the float32 result rounded; SumRows of rounded storage equals SumRows of the same values
// in float32, on the one-pass and the chunked kernels. Mixed float32 and rounded
// outputs, and an output past the end of its storage, panic with a message.
func TestRoundedOutputs(t *testing.T) {
	r := newRig(t)
	dev := bf16Device(t, r.g, true, true)
	for _, lt := range []string{"1", "0"} {
		t.Setenv("IMMKIT_CUDA_LT", lt)
		f0 := fusedCount(dev)
		k := 70
		for _, c := range []struct {
			n         int
			act       kernels.Act
			pre, bias bool
		}{{96, kernels.GELUTanh, true, true}, {96, kernels.GELUTanh, true, false}, {96, kernels.Identity, false, true},
			{96, kernels.Identity, false, false}, {96, kernels.SiLU, true, true}, {100, kernels.GELUTanh, true, true}} {
			m, n := 130, c.n
			x, w, bias := r.in(m*k, 1, 0.1), r.in(n*k, 1, -0.1), r.in(n, 1, 0)
			xr, wr := dev.AllocRounded(m*k), dev.AllocRounded(n*k)
			dev.Round(xr, x.g)
			dev.Round(wr, w.g)
			var bb kernels.Buffer
			if c.bias {
				hb := make([]float32, n)
				for i, v := range bias.host {
					hb[i] = bf16RNE(v)
				}
				bb = r.put(hb).g // the reference's bias: the rounded values
			}
			c32, p32 := r.out(m*n), r.out(m*n)
			var pre32, preR kernels.Buffer
			if c.pre {
				pre32, preR = p32.g, dev.AllocRounded(m*n)
			}
			dev.GemmBiasAct(false, true, m, n, k, xr, k, wr, k, bb, c.act, c32.g, pre32)
			cR := dev.AllocRounded(m * n)
			if c.bias {
				bb = bias.g // float32: the op rounds it
			}
			dev.GemmBiasAct(false, true, m, n, k, xr, k, wr, k, bb, c.act, cR, preR)
			shape := fmt.Sprintf("%dx%dx%d %s bias=%v pre=%v IMMKIT_CUDA_LT=%s", m, n, k, c.act, c.bias, c.pre, lt)
			want := make([]float32, m*n)
			dev.Read(want, c32.g)
			bad := roundedWrong(t, dev, "GemmBiasAct "+shape+" output", readRounded(r, dev, cR, m, n), want)
			if c.pre {
				dev.Read(want, p32.g)
				bad += roundedWrong(t, dev, "GemmBiasAct "+shape+" pre-activation", readRounded(r, dev, preR, m, n), want)
			}
			t.Logf("PARITY\tGemmBiasAct into rounded storage (vs float32 rounded)\t%s\t%d wrong", shape, bad)
		}
		// GemmActGrad: c [m, k] = (dy W) * gelu'(pre), pre rounded
		m, n := 130, 96
		ph := make([]float32, m*k)
		for i := range ph {
			ph[i] = bf16RNE(float32(r.rng.NormFloat64()))
		}
		pre := r.put(ph)
		preR := dev.AllocRounded(m * k)
		dev.Round(preR, pre.g)
		dy, wt := r.in(m*n, 1, 0), r.in(n*k, 1, 0)
		dyr, wtr := dev.RoundTemp(dy.g, m*n), dev.AllocRounded(n*k)
		dev.Round(wtr, wt.g)
		for _, act := range []kernels.Act{kernels.GELUTanh, kernels.SiLU} {
			c32, cR := r.out(m*k), dev.AllocRounded(m*k)
			dev.GemmActGrad(false, false, m, k, n, dyr, n, wtr, k, act, pre.g, c32.g)
			dev.GemmActGrad(false, false, m, k, n, dyr, n, wtr, k, act, preR, cR)
			want := make([]float32, m*k)
			dev.Read(want, c32.g)
			shape := fmt.Sprintf("%dx%dx%d %s IMMKIT_CUDA_LT=%s", m, k, n, act, lt)
			bad := roundedWrong(t, dev, "GemmActGrad "+shape, readRounded(r, dev, cR, m, k), want)
			t.Logf("PARITY\tGemmActGrad into rounded storage (vs float32 rounded)\t%s\t%d wrong", shape, bad)
		}
		f1 := fusedCount(dev)
		t.Logf("IMMKIT_CUDA_LT=%s: cuBLASLt so far: %s", lt, dev.ltSummary())
		if lt == "0" && f1 != f0 || lt == "1" && f1 == f0 {
			t.Errorf("IMMKIT_CUDA_LT=%s: %d fused products and %d without an algorithm before, %d and %d after", lt, f0[0], f0[1], f1[0], f1[1])
		}
	}

	// Gemm and GemmBatched into rounded storage (the attention's O and the projection's
	// dO): the float32 product rounded
	for _, batch := range []int{1, 3} {
		m, n, k := 37, 48, 70
		a, b := r.in(batch*m*k, 1, 0), r.in(batch*k*n, 1, 0)
		c32, cR := r.out(batch*m*n), dev.AllocRounded(batch*m*n)
		if batch == 1 {
			dev.Gemm(false, true, m, n, k, 0.5, a.g, k, b.g, k, 0, c32.g, n)
			dev.Gemm(false, true, m, n, k, 0.5, a.g, k, b.g, k, 0, cR, n)
		} else {
			dev.GemmBatched(false, true, m, n, k, 0.5, a.g, k, m*k, b.g, k, k*n, 0, c32.g, n, m*n, batch)
			dev.GemmBatched(false, true, m, n, k, 0.5, a.g, k, m*k, b.g, k, k*n, 0, cR, n, m*n, batch)
		}
		want := make([]float32, batch*m*n)
		dev.Read(want, c32.g)
		shape := fmt.Sprintf("%dx(%dx%dx%d)", batch, m, n, k)
		bad := roundedWrong(t, dev, "Gemm "+shape, readRounded(r, dev, cR, batch*m, n), want)
		t.Logf("PARITY\tGemm into rounded storage (vs float32 rounded)\t%s\t%d wrong", shape, bad)
	}
	// MulRows into rounded storage (a gated branch's output gradient): the float32 op's
	// output rounded
	{
		rows, l, cols, ld := 96, 32, 80, 3*80
		x, v := r.in(rows*cols, 1, 0), r.in(rows/l*ld, 1, 0)
		vb := dev.Slice(v.g, cols, rows/l*ld-cols) // a column block, as the DiT's gates
		y32, yR := r.out(rows*cols), dev.AllocRounded(rows*cols)
		dev.MulRows(y32.g, x.g, vb, rows, l, cols, ld, 0)
		dev.MulRows(yR, x.g, vb, rows, l, cols, ld, 0)
		want := make([]float32, rows*cols)
		dev.Read(want, y32.g)
		bad := roundedWrong(t, dev, "MulRows", readRounded(r, dev, yR, rows, cols), want)
		t.Logf("PARITY\tMulRows into rounded storage (vs float32 rounded)\t%dx%d l=%d\t%d wrong", rows, cols, l, bad)
		mustPanic(t, "beta must be 0", func() { dev.MulRows(yR, x.g, vb, rows, l, cols, ld, 1) })
	}
	mustPanic(t, "past the 64 elements of its rounded storage", func() {
		f := r.out(64)
		dev.Gemm(false, false, 8, 8, 8, 1, f.g, 8, f.g, 8, 0, dev.AllocRounded(64), 9)
	})

	// SumRows of rounded storage: the one-pass kernel and the chunked one, beta 0 and 1
	for _, c := range []struct{ rows, cols int }{{37, 64}, {3 * 2 * sumRowsChunk, 96}} {
		h := make([]float32, c.rows*c.cols)
		for i := range h {
			h[i] = bf16RNE(float32(r.rng.NormFloat64()))
		}
		x := r.put(h)
		xr := dev.AllocRounded(c.rows * c.cols)
		dev.Round(xr, x.g)
		for _, beta := range []float32{0, 1} {
			init := r.in(c.cols, 1, 0)
			a, b := r.put(init.host), r.put(init.host)
			dev.SumRows(a.g, x.g, c.rows, c.cols, beta)
			dev.SumRows(b.g, xr, c.rows, c.cols, beta)
			ha := make([]float32, c.cols)
			dev.Read(ha, a.g)
			d := relDiff(dev, b.g, ha)
			t.Logf("PARITY\tSumRows of rounded storage (vs float32)\t%dx%d beta=%g\t%.3g", c.rows, c.cols, beta, d)
			if d != 0 {
				t.Errorf("SumRows %dx%d beta=%g of rounded storage differs from float32 by %.3g", c.rows, c.cols, beta, d)
			}
		}
	}

	cr, f := dev.AllocRounded(64), r.out(64)
	mustPanic(t, "must be rounded storage too", func() {
		dev.GemmBiasAct(false, true, 8, 8, 8, f.g, 8, f.g, 8, nil, kernels.GELUTanh, cr, r.out(64).g)
	})
	mustPanic(t, "both rounded storage, or neither", func() {
		dev.GemmActGrad(false, false, 8, 8, 8, f.g, 8, f.g, 8, kernels.GELUTanh, cr, r.out(64).g)
	})
	mustPanic(t, "from 64 rounded elements", func() { dev.SumRows(r.out(8).g, cr, 9, 8, 0) })
}

// stored2 is stored for both operands of a product m x n x k.
func stored2(ta bool, m, k int, tb bool, n int) (ar, ac, br, bc int) {
	ar, ac = stored(ta, m, k)
	br, bc = stored(tb, k, n)
	return
}

// checkKept runs one model step (run, on the given device, returns its loss and
// parameters) three ways: with rounded operands kept and bf16 outputs (the default),
// with kept operands and float32 outputs, and with neither. Kept operands alone give the
// same loss and gradients as neither (keptTol) and round fewer elements; bf16 outputs
// (the MLPs' first layers write their output and pre-activation in bf16, and the
// gradient of that pre-activation) stay within outTol of float32 outputs and round
// fewer still. It logs the differences and counts for gpu-check.
func checkKept(t *testing.T, g kernels.Device[float32], what string, outTol float64, run func(d kernels.Device[float32]) (float64, *nn.Registry[float32])) {
	t.Helper()
	if _, ok := g.(*Device); !ok {
		t.Logf("%s: kept bf16 operands not checked: the CPU stand-in has no bf16 products", what)
		return
	}
	modes := []struct {
		name      string
		keep, out bool
	}{{"kept operands, bf16 outputs", true, true}, {"kept operands", true, false}, {"rounding in each product", false, false}}
	var loss [3]float64
	var reg [3]*nn.Registry[float32]
	var rounded [3]int64
	for i, m := range modes {
		d := bf16Device(t, g, m.keep, m.out)
		p0, k0 := d.BF16Rounded()
		loss[i], reg[i] = run(d)
		p1, k1 := d.BF16Rounded()
		rounded[i] = p1 - p0 + k1 - k0
	}
	tol := keptTol(bf16Device(t, g, true, true))
	for _, c := range []struct {
		i, j int
		tol  float64
	}{{1, 2, tol}, {0, 1, outTol}} {
		a, b := modes[c.i].name, modes[c.j].name
		if d := math.Abs(loss[c.i]-loss[c.j]) / math.Abs(loss[c.j]); !(d <= c.tol) {
			t.Errorf("%s: loss %v with %s, %v with %s (%.3g relative, tolerance %g)", what, loss[c.i], a, loss[c.j], b, d, c.tol)
		}
		worst := 0.0
		for k, p := range reg[c.j].Params {
			h := make([]float32, p.G.Len())
			g.Read(h, p.G)
			worst = math.Max(worst, relDiff(g, reg[c.i].Params[k].G, h))
		}
		t.Logf("PARITY\t%s, bf16 %s vs %s\tgradients\t%.3g", what, a, b, worst)
		if !(worst <= c.tol) {
			t.Errorf("%s: gradients differ by %.3g with %s from %s (tolerance %g)", what, worst, a, b, c.tol)
		}
		if rounded[c.i] >= rounded[c.j] {
			t.Errorf("%s: %s rounded %d elements, not fewer than the %d of %s", what, a, rounded[c.i], rounded[c.j], b)
		}
	}
	t.Logf("%s: bf16 elements rounded: %d with kept operands and bf16 outputs, %d with kept operands, %d rounding in each product (%.2fx)",
		what, rounded[0], rounded[1], rounded[2], float64(rounded[2])/float64(rounded[0]))
}
