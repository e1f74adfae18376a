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

// bf16Device is a bf16 view of the GPU device that keeps rounded operands (or not).
func bf16Device(t *testing.T, g kernels.Device[float32], keep bool) *Device {
	t.Helper()
	gd, ok := g.(*Device)
	if !ok {
		t.Skip("not run: the CPU stand-in has no bf16 products")
	}
	c := *withBF16(gd).(*Device)
	c.keep = keep
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
	dev := bf16Device(t, r.g, true)
	if !dev.RoundsOperands() || kernels.Rounder[float32](dev) == nil {
		t.Fatal("a bf16 device that keeps rounded operands says it does not round them")
	}
	if kernels.Rounder[float32](withTF32(r.g)) != nil || kernels.Rounder[float32](bf16Device(t, r.g, false)) != nil {
		t.Fatal("a TF32 device, or one with IMMKIT_CUDA_BF16_KEEP=0, says it rounds operands")
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

// stored2 is stored for both operands of a product m x n x k.
func stored2(ta bool, m, k int, tb bool, n int) (ar, ac, br, bc int) {
	ar, ac = stored(ta, m, k)
	br, bc = stored(tb, k, n)
	return
}

// checkKept runs one model step (run, on the given device, returns its loss and
// parameters) with rounded operands kept and without: the same loss and gradients
// (keptTol), and fewer elements rounded. It logs both counts for gpu-check.
func checkKept(t *testing.T, g kernels.Device[float32], what string, run func(d kernels.Device[float32]) (float64, *nn.Registry[float32])) {
	t.Helper()
	if _, ok := g.(*Device); !ok {
		t.Logf("%s: kept bf16 operands not checked: the CPU stand-in has no bf16 products", what)
		return
	}
	var loss [2]float64
	var reg [2]*nn.Registry[float32]
	var rounded [2]int64
	for i, keep := range []bool{true, false} {
		d := bf16Device(t, g, keep)
		p0, k0 := d.BF16Rounded()
		loss[i], reg[i] = run(d)
		p1, k1 := d.BF16Rounded()
		rounded[i] = p1 - p0 + k1 - k0
	}
	tol := keptTol(bf16Device(t, g, true))
	if d := math.Abs(loss[0]-loss[1]) / math.Abs(loss[1]); !(d <= tol) {
		t.Errorf("%s: loss %v with kept rounded operands, %v without (%.3g relative)", what, loss[0], loss[1], d)
	}
	worst := 0.0
	for i, p := range reg[1].Params {
		h := make([]float32, p.G.Len())
		g.Read(h, p.G)
		worst = math.Max(worst, relDiff(g, reg[0].Params[i].G, h))
	}
	t.Logf("PARITY\t%s, bf16 kept operands vs rounding in each product\tgradients\t%.3g", what, worst)
	t.Logf("%s: bf16 elements rounded: %d with kept operands, %d without (%.2fx)", what, rounded[0], rounded[1], float64(rounded[1])/float64(rounded[0]))
	if !(worst <= tol) {
		t.Errorf("%s: gradients differ by %.3g with kept rounded operands", what, worst)
	}
	if rounded[0] >= rounded[1] {
		t.Errorf("%s: kept rounded operands rounded %d elements, not fewer than %d", what, rounded[0], rounded[1])
	}
}
