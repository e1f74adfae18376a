package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/immkit/immkit/internal/cudadrv"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

var (
	gpuOnce sync.Once
	gpuDev  *Device
	gpuErr  error
)

// gpu returns the CUDA device, or ends the test with t.Skip saying it was not run and
// why. The reason is also printed, so a CI log shows that the GPU tests did not run (the
// CI machine has no GPU: this is not a failure there).
func gpu(t testing.TB) *Device {
	t.Helper()
	gpuOnce.Do(func() {
		gpuDev, gpuErr = New(Options{})
		if gpuErr == nil {
			fmt.Fprintf(os.Stdout, "kernels/cuda: GPU tests on %s\n", gpuDev.ctx.Name)
		} else {
			fmt.Fprintf(os.Stdout, "kernels/cuda: GPU tests not run: %v\n", gpuErr)
		}
	})
	if gpuErr != nil {
		t.Skipf("not run: %v", gpuErr)
	}
	return gpuDev
}

// testDev is the device under test: the GPU, or with IMMKIT_CUDA_STANDIN=cpu a
// one-worker CPU device, which runs the parity tests' own logic on a machine without a
// GPU (the tests are then checking themselves, not the GPU).
func testDev(t testing.TB) kernels.Device[float32] {
	t.Helper()
	if os.Getenv("IMMKIT_CUDA_STANDIN") == "cpu" {
		return cpu.New[float32](1)
	}
	return gpu(t)
}

// withTF32 returns a view of the GPU device whose GEMMs use TF32 tensor cores (the CPU
// stand-in itself). Only its GEMMs may be used: it shares the scratch buffers.
func withTF32(d kernels.Device[float32]) kernels.Device[float32] {
	if g, ok := d.(*Device); ok {
		c := *g
		c.math, c.opt.TF32 = cudadrv.MathTF32, true
		return &c
	}
	return d
}

// withBF16 is withTF32 for bf16 GEMMs (Options.BF16).
func withBF16(d kernels.Device[float32]) kernels.Device[float32] {
	if g, ok := d.(*Device); ok {
		c := *g
		c.opt.BF16 = true
		return &c
	}
	return d
}

// rig holds both devices and the inputs of one parity check.
type rig struct {
	t   *testing.T
	g   kernels.Device[float32]
	c   *cpu.Device[float32]
	rng *rand.Rand
}

func newRig(t *testing.T) *rig {
	return &rig{t: t, g: testDev(t), c: cpu.New[float32](4), rng: rand.New(rand.NewPCG(uint64(len(t.Name())), 7))}
}

// pair is the same tensor on both devices; host is the values written.
type pair struct {
	g, c kernels.Buffer
	host []float32
}

// in returns fresh N(0,1)*scale+shift inputs (never zeros) on both devices.
func (r *rig) in(n int, scale, shift float64) pair {
	h := make([]float32, n)
	for i := range h {
		h[i] = float32(r.rng.NormFloat64()*scale + shift)
	}
	return r.put(h)
}

func (r *rig) put(h []float32) pair {
	p := pair{g: r.g.Alloc(len(h)), c: r.c.Alloc(len(h)), host: h}
	r.g.Write(p.g, h)
	r.c.Write(p.c, h)
	return p
}

// out returns an output poisoned with NaN on both devices.
func (r *rig) out(n int) pair {
	h := make([]float32, n)
	for i := range h {
		h[i] = float32(math.NaN())
	}
	return r.put(h)
}

// check compares every element of the GPU result with the CPU one: both NaN is equal
// (an untouched guard element), one NaN is a failure; otherwise the error is
// max|gpu-cpu| / max|cpu|. It logs a PARITY line for scripts/gpu-check.sh.
func (r *rig) check(op, shape string, p pair, tol float64) {
	r.t.Helper()
	gh := make([]float32, p.g.Len())
	r.g.Read(gh, p.g)
	ch := cpu.Data[float32](p.c)
	var maxDiff, maxRef float64
	bad := 0
	for i := range ch {
		a, b := float64(gh[i]), float64(ch[i])
		if math.IsNaN(a) || math.IsNaN(b) {
			if math.IsNaN(a) != math.IsNaN(b) {
				if bad < 5 {
					r.t.Errorf("%s %s: element %d gpu %v cpu %v", op, shape, i, a, b)
				}
				bad++
			}
			continue
		}
		maxDiff = math.Max(maxDiff, math.Abs(a-b))
		maxRef = math.Max(maxRef, math.Abs(b))
	}
	rel := maxDiff / math.Max(maxRef, 1e-30)
	r.t.Logf("PARITY\t%s\t%s\t%.3g", op, shape, rel)
	if rel > tol || bad > 0 {
		r.t.Errorf("%s %s: relative error %.3g (tolerance %g), %d NaN mismatches", op, shape, rel, tol, bad)
	}
}

// same checks that an input was not modified on the GPU.
func (r *rig) same(op string, p pair) {
	r.t.Helper()
	gh := make([]float32, p.g.Len())
	r.g.Read(gh, p.g)
	for i := range gh {
		if gh[i] != p.host[i] && !(math.IsNaN(float64(gh[i])) && math.IsNaN(float64(p.host[i]))) {
			r.t.Fatalf("%s modified its input at %d: %v -> %v", op, i, p.host[i], gh[i])
		}
	}
}

const fp32Tol = 1e-5

func TestGemm(t *testing.T) {
	r := newRig(t)
	for _, mode := range []string{"fp32", "tf32", "bf16"} {
		for _, c := range []struct {
			ta, tb  bool
			m, n, k int
			beta    float32
		}{{false, false, 130, 70, 257, 0}, {true, false, 64, 129, 33, 0.5}, {false, true, 1, 300, 64, 0}, {true, true, 200, 3, 100, -1}} {
			lda, ldb, ldc := c.k+3, c.n+1, c.n+2
			ar, br := c.m, c.k
			if c.ta {
				lda, ar = c.m+3, c.k
			}
			if c.tb {
				ldb, br = c.k+1, c.n
			}
			a, b := r.in(ar*lda, 1, 0.1), r.in(br*ldb, 1, -0.1)
			var cc pair
			if c.beta == 0 {
				cc = r.out(c.m * ldc)
			} else {
				cc = r.in(c.m*ldc, 1, 0)
			}
			dev, tol, name := r.g, fp32Tol, "Gemm"
			switch mode {
			case "tf32":
				dev, tol, name = withTF32(r.g), 1e-2, "Gemm/tf32"
			case "bf16":
				dev, tol, name = withBF16(r.g), 1e-2, "Gemm/bf16"
			}
			dev.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1.25, a.g, lda, b.g, ldb, c.beta, cc.g, ldc)
			r.c.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1.25, a.c, lda, b.c, ldb, c.beta, cc.c, ldc)
			r.check(name, fmt.Sprintf("%dx%dx%d ta=%v tb=%v beta=%g", c.m, c.n, c.k, c.ta, c.tb, c.beta), cc, tol)
			r.same(name, a)
			r.same(name, b)
		}
	}
}

func TestGemmBatched(t *testing.T) {
	r := newRig(t)
	m, n, k, batch := 33, 17, 64, 12
	sa, sb, sc := m*k+5, k*n+7, m*n+3
	a, b, c := r.in(batch*sa, 1, 0), r.in(batch*sb, 1, 0), r.out(batch*sc)
	r.g.GemmBatched(false, true, m, n, k, 0.5, a.g, k, sa, b.g, k, sb, 0, c.g, n, sc, batch)
	r.c.GemmBatched(false, true, m, n, k, 0.5, a.c, k, sa, b.c, k, sb, 0, c.c, n, sc, batch)
	r.check("GemmBatched", fmt.Sprintf("%dx(%dx%dx%d)", batch, m, n, k), c, fp32Tol)
	// bf16 operands, and an A shared by every product (stride 0, as the DiT's token sums)
	for _, strideA := range []int{sa, 0} {
		c := r.in(batch*sc, 1, 0)
		withBF16(r.g).GemmBatched(true, false, m, n, k, 0.5, a.g, m, strideA, b.g, n, sb, 1, c.g, n, sc, batch)
		r.c.GemmBatched(true, false, m, n, k, 0.5, a.c, m, strideA, b.c, n, sb, 1, c.c, n, sc, batch)
		r.check("GemmBatched/bf16", fmt.Sprintf("%dx(%dx%dx%d) strideA=%d", batch, m, n, k, strideA), c, 1e-2)
	}
}

// elementwise tests run one op on both devices; f gets the device and the buffers.
// runOp runs f on both devices as subtest name and checks every output (fp32 tolerance)
// and that no input changed.
func (r *rig) runOp(name, op, shape string, outs []pair, ins []pair, f func(d kernels.Device[float32], b []kernels.Buffer)) {
	r.t.Run(name, func(t *testing.T) {
		bg, bc := []kernels.Buffer{}, []kernels.Buffer{}
		for _, p := range append(append([]pair{}, outs...), ins...) {
			bg, bc = append(bg, p.g), append(bc, p.c)
		}
		f(r.g, bg)
		f(r.c, bc)
		sub := *r
		sub.t = t
		for i, o := range outs {
			sub.check(op, fmt.Sprintf("%s out%d", shape, i), o, fp32Tol)
		}
		for _, in := range ins {
			sub.same(op, in)
		}
	})
}

func TestElementwise(t *testing.T) {
	r := newRig(t)
	rows, cols := 97, 301
	n := rows * cols
	shape := fmt.Sprintf("%dx%d", rows, cols)
	run := func(op string, outs []pair, ins []pair, f func(d kernels.Device[float32], b []kernels.Buffer)) {
		r.runOp(op, op, shape, outs, ins, f)
	}
	run("AddRowVector", []pair{r.in(n, 1, 0)}, []pair{r.in(cols, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.AddRowVector(b[0], b[1], rows, cols)
	})
	run("RowComb", []pair{r.out(n)}, []pair{r.in(rows, 1, 0), r.in(n, 1, 0), r.in(rows, 1, 0), r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.RowComb(b[0], b[1], b[2], b[3], b[4], rows, cols)
	})
	run("RowComb/noY", []pair{r.out(n)}, []pair{r.in(rows, 1, 0), r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.RowComb(b[0], b[1], b[2], nil, nil, rows, cols)
	})
	run("Axpby", []pair{r.in(n, 1, 0)}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Axpby(0.3, b[1], -1.7, b[0])
	})
	run("Mul/beta=0", []pair{r.out(n)}, []pair{r.in(n, 1, 0), r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Mul(b[0], b[1], b[2], 0)
	})
	run("Mul/beta=1.5", []pair{r.in(n, 1, 0)}, []pair{r.in(n, 1, 0), r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Mul(b[0], b[1], b[2], 1.5)
	})
	run("Modulate", []pair{r.out(n)}, []pair{r.in(n, 1, 0), r.in(n, 1, 0), r.in(n, 0.3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Modulate(b[0], b[1], b[2], b[3])
	})
	// row-broadcast ops: sequences of l rows, their vectors a column block (at column off)
	// of a [seqs, ld] matrix; 70000 rows take the grid-stride path over rows
	for _, c := range []struct{ seqs, l, cols, ld, off int }{{6, 50, 301, 911, 301}, {10000, 7, 33, 99, 66}} {
		rows, n := c.seqs*c.l, c.seqs*c.l*c.cols
		shape := fmt.Sprintf("%dx%d/l=%d", rows, c.cols, c.l)
		vec := func(d kernels.Device[float32], b kernels.Buffer) kernels.Buffer {
			return d.Slice(b, c.off, c.seqs*c.ld-c.off)
		}
		for _, beta := range []float32{0, 0.5} {
			dst := r.out(n)
			if beta != 0 {
				dst = r.in(n, 1, 0)
			}
			r.runOp(fmt.Sprintf("MulRows/beta=%g/%s", beta, shape), "MulRows", shape, []pair{dst}, []pair{r.in(n, 1, 0), r.in(c.seqs*c.ld, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
				d.MulRows(b[0], b[1], vec(d, b[2]), rows, c.l, c.cols, c.ld, beta)
			})
		}
		r.runOp("MulRowsAdd/"+shape, "MulRowsAdd", shape, []pair{r.out(n)}, []pair{r.in(n, 1, 0), r.in(n, 1, 0), r.in(c.seqs*c.ld, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.MulRowsAdd(b[0], b[1], b[2], vec(d, b[3]), rows, c.l, c.cols, c.ld)
		})
		r.runOp("ModulateRows/"+shape, "ModulateRows", shape, []pair{r.out(n)}, []pair{r.in(n, 1, 0), r.in(c.seqs*c.ld, 1, 0), r.in(c.seqs*c.ld, 0.3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.ModulateRows(b[0], b[1], vec(d, b[2]), vec(d, b[3]), rows, c.l, c.cols, c.ld)
		})
	}
	for _, a := range []kernels.Act{kernels.Identity, kernels.SiLU, kernels.GELUTanh} {
		run("Activate/"+a.String(), []pair{r.out(n)}, []pair{r.in(n, 3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.Activate(a, b[0], b[1])
		})
		run("ActivateGrad/"+a.String(), []pair{r.out(n)}, []pair{r.in(n, 1, 0), r.in(n, 3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.ActivateGrad(a, b[0], b[1], b[2], 0)
		})
		run("ActivateGrad/beta/"+a.String(), []pair{r.in(n, 1, 0)}, []pair{r.in(n, 1, 0), r.in(n, 3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.ActivateGrad(a, b[0], b[1], b[2], 0.5)
		})
	}
	ids := make([]int32, 500)
	for i := range ids {
		ids[i] = int32(r.rng.IntN(rows))
	}
	run("Embed", []pair{r.out(len(ids) * cols)}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Embed(b[0], b[1], ids, cols)
	})
	run("EmbedGrad", []pair{r.in(n, 1, 0)}, []pair{r.in(len(ids)*cols, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.EmbedGrad(b[0], b[1], ids, cols)
	})
	run("TimeEmbed", []pair{r.out(rows * 128)}, []pair{r.in(rows, 0.3, 0.5)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.TimeEmbed(b[0], b[1], rows, 128)
	})
	o := kernels.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	vIn := r.in(n, 0.01, 0)
	for i := range vIn.host {
		vIn.host[i] = float32(math.Abs(float64(vIn.host[i])))
	}
	vIn = r.put(vIn.host)
	run("AdamW", []pair{r.in(n, 1, 0), r.in(n, 0.1, 0), vIn}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.AdamW(b[0], b[3], b[1], b[2], o, 7, 0.5)
	})
	run("EMA", []pair{r.in(n, 1, 0)}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.EMA(b[0], b[1], 0.999)
	})
	run("AdamWEMA", []pair{r.in(n, 1, 0), r.in(n, 0.1, 0), r.put(vIn.host), r.in(n, 1, 0)}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.AdamWEMA(b[0], b[4], b[1], b[2], b[3], o, 7, 0.5, 0.99)
	})
	run("Fill+Copy+Slice", []pair{r.out(n), r.out(n)}, []pair{r.in(n, 1, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
		d.Fill(b[0], 2.5)
		d.Copy(d.Slice(b[1], 10, 100), d.Slice(b[2], 20, 100))
		d.Copy(d.Slice(b[0], 5, 7), d.Slice(b[2], 0, 7))
	})
}

func TestReductions(t *testing.T) {
	r := newRig(t)
	for _, n := range []int{1, 1000, 1 << 20} {
		x := r.in(n, 1, 0.5)
		for _, c := range []struct {
			name string
			g, c float64
		}{{"Sum", r.g.Sum(x.g), r.c.Sum(x.c)}, {"SumSquares", r.g.SumSquares(x.g), r.c.SumSquares(x.c)}} {
			var ref float64
			for _, v := range x.host {
				if c.name == "Sum" {
					ref += math.Abs(float64(v))
				} else {
					ref += float64(v) * float64(v)
				}
			}
			rel := math.Abs(c.g-c.c) / ref
			t.Logf("PARITY\t%s\t%d\t%.3g", c.name, n, rel)
			if rel > 1e-12 {
				t.Errorf("%s of %d: gpu %v cpu %v (relative to sum|x| %.3g)", c.name, n, c.g, c.c, rel)
			}
		}
	}
}

func TestLaplaceMMD(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		groups, m, d int
		segs         []int
	}{{64, 4, 2, nil}, {16, 8, 64, nil}, {4, 128, 3, nil}, {16, 4, 11328, []int{0, 3072, 11072, 11328}}, {8, 8, 64, []int{0, 1, 40, 64}}} {
		n := c.groups * c.m * c.d
		yt, yr := r.in(n, 1, 0), r.in(n, 1, 0.2)
		// two equal particles exercise the clamped distance
		copy(yt.host[c.d:2*c.d], yt.host[:c.d])
		yt = r.put(yt.host)
		kw, gw := r.in(c.groups, 0.5, 2), r.in(c.groups, 1, 0)
		mmd, grad := r.out(c.groups), r.out(n)
		shape := fmt.Sprintf("groups=%d m=%d d=%d segs=%v", c.groups, c.m, c.d, c.segs)
		r.g.LaplaceMMD(mmd.g, grad.g, yt.g, yr.g, kw.g, gw.g, c.groups, c.m, c.d, c.segs)
		r.c.LaplaceMMD(mmd.c, grad.c, yt.c, yr.c, kw.c, gw.c, c.groups, c.m, c.d, c.segs)
		r.check("LaplaceMMD/value", shape, mmd, fp32Tol)
		r.check("LaplaceMMD/grad", shape, grad, fp32Tol)
		for _, p := range []pair{yt, yr, kw, gw} {
			r.same("LaplaceMMD", p)
		}
		mmd2 := r.out(c.groups)
		r.g.LaplaceMMD(mmd2.g, nil, yt.g, yr.g, kw.g, nil, c.groups, c.m, c.d, c.segs)
		r.c.LaplaceMMD(mmd2.c, nil, yt.c, yr.c, kw.c, nil, c.groups, c.m, c.d, c.segs)
		r.check("LaplaceMMD/nograd", shape, mmd2, fp32Tol)
	}
}

func TestRand(t *testing.T) {
	r := newRig(t)
	for _, n := range []int{1, 7, 100003} {
		u, z := r.out(n), r.out(n)
		r.g.RandUniform(u.g, 0xdeadbeef12345678, 1<<33+5)
		r.c.RandUniform(u.c, 0xdeadbeef12345678, 1<<33+5)
		r.g.RandNormal(z.g, 42, 3, 0.5)
		r.c.RandNormal(z.c, 42, 3, 0.5)
		r.check("RandUniform", fmt.Sprint(n), u, 1e-7)
		r.check("RandNormal", fmt.Sprint(n), z, fp32Tol)
	}
}

// TestSumRowGroups checks the per-sequence sums of the modulation gradients: into a
// column block of a wider matrix (the DiT's [batch, 6 Dim] at offset 2 Dim, whose other
// columns must stay as they were), one row per group, long groups, and more groups than
// one launch's grid takes (65535).
func TestSumRowGroups(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct{ groups, l, cols, ld, off int }{{16, 64, 384, 6 * 384, 2 * 384}, {3, 300, 40, 41, 0}, {9, 1, 17, 20, 3}, {2, 1024, 70, 70, 0}, {70000, 1, 33, 33, 0}} {
		shape := fmt.Sprintf("%dx%dx%d ld=%d off=%d", c.groups, c.l, c.cols, c.ld, c.off)
		r.runOp("SumRowGroups/"+shape, "SumRowGroups", shape, []pair{r.in(c.groups*c.ld, 1, 0)}, []pair{r.in(c.groups*c.l*c.cols, 1, 0.3)},
			func(d kernels.Device[float32], b []kernels.Buffer) {
				d.SumRowGroups(kernels.Tail(d, b[0], c.off), b[1], c.groups, c.l, c.cols, c.ld)
			})
	}
}

// TestRowOps checks the row ops (SumRows, LayerNorm, softmax, and their gradients) on
// TestElementwise's 97x301 and on the shapes that pick each of their GPU paths: the
// warp-per-row kernels (cols <= 1024, including exactly 1024 and a single column), the
// block-per-row kernels (cols > 1024), and the chunked two-pass SumRows of tall
// matrices (bias gradients over many tokens).
func TestRowOps(t *testing.T) {
	r := newRig(t)
	// every row kernel variant: warp K = 4 (70, 33, 1), 8 (256), 12 (301, 384), 16 (500),
	// 24 (700), 32 (1024); block of 16 per thread (1500, 4096); three passes (5000)
	for _, s := range []struct{ rows, cols int }{{97, 301}, {1000, 1024}, {33, 1500}, {5000, 70}, {70001, 33}, {50, 1}, {9, 384}, {300, 256}, {30, 500}, {20, 700}, {20, 4096}, {5, 5000}} {
		rows, cols := s.rows, s.cols
		n := rows * cols
		shape := fmt.Sprintf("%dx%d", rows, cols)
		run := func(op string, outs []pair, ins []pair, f func(d kernels.Device[float32], b []kernels.Buffer)) {
			r.runOp(op+"/"+shape, op, shape, outs, ins, f)
		}
		for _, beta := range []float32{0, 0.7} {
			dst := r.out(cols)
			if beta != 0 {
				dst = r.in(cols, 1, 0)
			}
			run(fmt.Sprintf("SumRows/beta=%g", beta), []pair{dst}, []pair{r.in(n, 1, 0.3)}, func(d kernels.Device[float32], b []kernels.Buffer) {
				d.SumRows(b[0], b[1], rows, cols, beta)
			})
		}
		if rows > 10000 {
			continue // SumRows only: the row ops are covered by the other shapes
		}
		run("LayerNorm", []pair{r.out(n), r.out(rows), r.out(rows)}, []pair{r.in(n, 2, 1)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.LayerNorm(b[0], b[1], b[2], b[3], rows, cols, 1e-5)
		})
		mean, rstd := r.in(rows, 0.2, 1), r.in(rows, 0.1, 0.8)
		for _, beta := range []float32{0, 1} {
			dx := r.out(n)
			if beta != 0 {
				dx = r.in(n, 1, 0)
			}
			run(fmt.Sprintf("LayerNormGrad/beta=%g", beta), []pair{dx}, []pair{r.in(n, 1, 0), r.in(n, 2, 1), mean, rstd}, func(d kernels.Device[float32], b []kernels.Buffer) {
				d.LayerNormGrad(b[0], b[1], b[2], b[3], b[4], rows, cols, beta)
			})
		}
		// the fused adaLN ops: sequences of l rows, shift and scale column blocks of one
		// [rows/l, 2*cols+1] matrix (as the DiT's [batch, 6 Dim] modulations)
		l := 1
		for _, c := range []int{7, 5, 3, 2} {
			if rows%c == 0 {
				l = c
				break
			}
		}
		ld := 2*cols + 1
		mod := r.in(rows/l*ld, 0.5, 0)
		shiftOf := func(d kernels.Device[float32], b kernels.Buffer) kernels.Buffer { return d.Slice(b, 0, b.Len()) }
		scaleOf := func(d kernels.Device[float32], b kernels.Buffer) kernels.Buffer {
			return d.Slice(b, cols, b.Len()-cols)
		}
		run("AdaLayerNorm", []pair{r.out(n), r.out(rows), r.out(rows)}, []pair{r.in(n, 2, 1), mod}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.AdaLayerNorm(b[0], b[1], b[2], b[3], shiftOf(d, b[4]), scaleOf(d, b[4]), rows, l, cols, ld, 1e-5)
		})
		// mean and rstd from the CPU's LayerNorm of the same x, so both sides normalise alike
		xa := r.in(n, 2, 1)
		ma, ra := r.out(rows), r.out(rows)
		r.c.LayerNorm(r.c.Alloc(n), ma.c, ra.c, xa.c, rows, cols, 1e-5)
		ma, ra = r.put(cpu.Data[float32](ma.c)), r.put(cpu.Data[float32](ra.c))
		run("AdaLayerNormGrad", []pair{r.out(n), r.out(n)}, []pair{r.in(n, 1, 0), xa, ma, ra, mod}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.AdaLayerNormGrad(b[0], b[1], b[2], b[3], b[4], b[5], scaleOf(d, b[6]), rows, l, cols, ld, 1e-5)
		})
		run("Softmax", []pair{r.out(n)}, []pair{r.in(n, 3, 0)}, func(d kernels.Device[float32], b []kernels.Buffer) {
			d.Softmax(b[0], b[1], rows, cols)
		})
		y := r.out(n)
		r.g.Softmax(y.g, r.in(n, 2, 0).g, rows, cols)
		yh := make([]float32, n)
		r.g.Read(yh, y.g)
		ys := r.put(yh)
		for _, beta := range []float32{0, -0.5} {
			dx := r.out(n)
			if beta != 0 {
				dx = r.in(n, 1, 0)
			}
			run(fmt.Sprintf("SoftmaxGrad/beta=%g", beta), []pair{dx}, []pair{r.in(n, 1, 0), ys}, func(d kernels.Device[float32], b []kernels.Buffer) {
				d.SoftmaxGrad(b[0], b[1], b[2], rows, cols, beta)
			})
		}
	}
}

// TestWriteAsync checks Write's asynchronous staged upload. The host slice is changed
// right after every Write. First 40 writes of up to 3 MiB (about 50 MiB) go through the
// 16 MiB staging buffer with nothing else on the stream, so it fills and is reused; then
// small, staged and large (synchronous) writes alternate with a kernel that reads the
// buffer (Axpby). Each buffer must hold what was written. On the emulator a queued copy
// reads its staging memory only when the stream runs it, so staging reused too early
// shows as wrong values.
func TestWriteAsync(t *testing.T) {
	g := testDev(t)
	var bufs []kernels.Buffer
	var want [][]float32
	host := make([]float32, 5<<20/4)
	sizes := make([]int, 52)
	for i := range sizes {
		if i < 40 {
			sizes[i] = []int{1, 1000, 1 << 18, 3 << 18}[i%4]
		} else {
			sizes[i] = []int{1, 1 << 18, 5 << 20 / 4}[i%3] // 5 MiB: above the 4 MiB staged maximum
		}
	}
	all := make([]kernels.Buffer, len(sizes)) // allocated first: Alloc's memset is a stream operation
	for i, n := range sizes {
		all[i] = g.Alloc(n)
	}
	write := func(i int) kernels.Buffer {
		h := host[:sizes[i]]
		for j := range h {
			h[j] = float32(i*7 + j%13)
		}
		b := all[i]
		g.Write(b, h)
		bufs, want = append(bufs, b), append(want, slices.Clone(h))
		for j := range h {
			h[j] = -1 // reused at once, as a caller may
		}
		return b
	}
	for i := 0; i < 40; i++ {
		write(i)
	}
	for i := 40; i < len(sizes); i++ {
		b := write(i)
		g.Axpby(1, b, 0, b)
	}
	for i, b := range bufs {
		got := make([]float32, len(want[i]))
		g.Read(got, b)
		for j := range got {
			if got[j] != want[i][j] {
				t.Fatalf("buffer %d (%d values): element %d is %v, want %v", i, len(got), j, got[j], want[i][j])
			}
		}
	}
}
