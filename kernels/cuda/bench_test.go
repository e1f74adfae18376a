package cuda

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
)

// The benchmarks time ops on the GPU (each iteration queues the op; the clock stops after
// a cuCtxSynchronize). b.SetBytes is the bytes the op must move (reads + writes), so the
// MB/s column is the achieved memory bandwidth; GEMMs report TFLOP/s.

func benchGPU(b *testing.B) *Device {
	return gpu(b)
}

func runSync(b *testing.B, d *Device, f func()) {
	f()
	check(d.Sync())
	b.ResetTimer()
	for range b.N {
		f()
	}
	check(d.Sync())
}

// BenchmarkCopy is the device-to-device copy bandwidth, the yardstick of the
// memory-bound kernels (bytes = read + write).
func BenchmarkCopy(b *testing.B) {
	d := benchGPU(b)
	n := 1 << 26
	x, y := d.Alloc(n), d.Alloc(n)
	b.SetBytes(int64(8 * n))
	runSync(b, d, func() { d.Copy(y, x) })
}

func BenchmarkElementwise(b *testing.B) {
	d := benchGPU(b)
	n := 1 << 26
	x, y, z, w, u := d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(n)
	d.RandNormal(x, 1, 0, 1)
	d.RandNormal(y, 2, 0, 1)
	for _, c := range []struct {
		name  string
		bytes int
		f     func()
	}{
		{"Axpby", 12, func() { d.Axpby(0.5, x, 0.9, y) }},
		{"Mul", 12, func() { d.Mul(z, x, y, 0) }},
		{"Modulate", 16, func() { d.Modulate(w, x, y, z) }},
		{"Activate/silu", 8, func() { d.Activate(kernels.SiLU, z, x) }},
		{"ActivateGrad/silu", 12, func() { d.ActivateGrad(kernels.SiLU, z, y, x, 0) }},
		{"EMA", 12, func() { d.EMA(z, x, 0.999) }},
		{"AdamW", 28, func() {
			d.AdamW(w, x, y, z, kernels.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 3, 1)
		}},
		// AdamW + EMA fused: 32 bytes per parameter against 28 + 12 as two kernels
		{"AdamWEMA", 32, func() {
			d.AdamWEMA(w, x, y, z, u, kernels.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 3, 1, 0.999)
		}},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
			b.SetBytes(int64(c.bytes * n))
			if strings.HasPrefix(c.name, "AdamW") {
				d.Fill(z, 0.01)
			}
			runSync(b, d, c.f)
		})
	}
}

func BenchmarkRows(b *testing.B) {
	d := benchGPU(b)
	for _, s := range []struct{ rows, cols int }{{65536, 1024}, {16384, 4096}, {65536, 384}, {262144, 256}} {
		n := s.rows * s.cols
		x, y, dy, dx := d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(n)
		mean, rstd := d.Alloc(s.rows), d.Alloc(s.rows)
		d.RandNormal(x, 1, 0, 1)
		d.RandNormal(dy, 2, 0, 1)
		shape := fmt.Sprintf("%dx%d", s.rows, s.cols)
		b.Run("LayerNorm/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.LayerNorm(y, mean, rstd, x, s.rows, s.cols, 1e-5) })
		})
		b.Run("LayerNormGrad/"+shape, func(b *testing.B) {
			b.SetBytes(int64(12 * n))
			runSync(b, d, func() { d.LayerNormGrad(dx, dy, x, mean, rstd, s.rows, s.cols, 0) })
		})
		b.Run("Softmax/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.Softmax(y, x, s.rows, s.cols) })
		})
		b.Run("SoftmaxGrad/"+shape, func(b *testing.B) {
			b.SetBytes(int64(12 * n))
			runSync(b, d, func() { d.SoftmaxGrad(dx, dy, y, s.rows, s.cols, 0) })
		})
		b.Run("AddRowVector/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.AddRowVector(y, x, s.rows, s.cols) })
		})
		// per-sequence gate and modulation of sequences of 256 rows, vectors read from a
		// [rows/256, 6 cols] block as in a DiT block (bytes: x read, dst written)
		b.Run("MulRows/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.MulRows(dx, x, dy, s.rows, 256, s.cols, 6*s.cols, 0) })
		})
		b.Run("ModulateRows/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.ModulateRows(dx, x, dy, y, s.rows, 256, s.cols, 6*s.cols) })
		})
		// the fused adaLN ops (bytes: x read, y written; dy and x read, dx and dscale written)
		b.Run("AdaLayerNorm/"+shape, func(b *testing.B) {
			b.SetBytes(int64(8 * n))
			runSync(b, d, func() { d.AdaLayerNorm(y, mean, rstd, x, dy, dx, s.rows, 256, s.cols, 6*s.cols, 1e-5) })
		})
		b.Run("AdaLayerNormGrad/"+shape, func(b *testing.B) {
			b.SetBytes(int64(16 * n))
			runSync(b, d, func() { d.AdaLayerNormGrad(dx, y, dy, x, mean, rstd, dy, s.rows, 256, s.cols, 6*s.cols, 1e-5) })
		})
		b.Run("SumRows/"+shape, func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			runSync(b, d, func() { d.SumRows(mean, x, s.rows, s.cols, 0) })
		})
		// the modulation gradients' per-sequence sums (sequences of 256 rows into a
		// [rows/256, 6 cols] block), and the GemmBatched with a row of ones they were
		// before, in FP32 and bf16 (bytes: x read)
		ones := d.Alloc(256)
		d.Fill(ones, 1)
		b.Run("SumRowGroups/"+shape, func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			runSync(b, d, func() { d.SumRowGroups(dx, x, s.rows/256, 256, s.cols, 6*s.cols) })
		})
		for _, bf := range []bool{false, true} {
			g, name := d, "SumRowGroupsGemm/"
			if bf {
				g, name = withBF16(d).(*Device), "SumRowGroupsGemm/bf16/"
			}
			b.Run(name+shape, func(b *testing.B) {
				b.SetBytes(int64(4 * n))
				runSync(b, d, func() {
					g.GemmBatched(true, false, 1, s.cols, 256, 1, ones, 1, 0, x, s.cols, 256*s.cols, 0, dx, 6*s.cols, 6*s.cols, s.rows/256)
				})
			})
		}
		// a rounded bf16 copy (bytes: 4 read, 2 written)
		xr := d.AllocRounded(n)
		b.Run("Round/"+shape, func(b *testing.B) {
			b.SetBytes(int64(6 * n))
			runSync(b, d, func() { d.Round(xr, x) })
		})
		check(d.Free(ones))
		for _, buf := range []kernels.Buffer{x, y, dy, dx, mean, rstd} {
			check(d.Free(buf))
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	d := benchGPU(b)
	for _, name := range []string{"fp32", "tf32", "bf16"} {
		for _, s := range []struct{ m, n, k int }{{4096, 1024, 1024}, {8192, 8192, 8192}, {65536, 1152, 384}} {
			a, bb, c := d.Alloc(s.m*s.k), d.Alloc(s.k*s.n), d.Alloc(s.m*s.n)
			d.RandNormal(a, 1, 0, 1)
			d.RandNormal(bb, 2, 0, 1)
			gd := d
			switch name {
			case "tf32":
				gd = withTF32(d).(*Device)
			case "bf16": // the operands' conversion to bf16 included
				gd = withBF16(d).(*Device)
			}
			b.Run(fmt.Sprintf("%s/%dx%dx%d", name, s.m, s.n, s.k), func(b *testing.B) {
				runSync(b, d, func() { gd.Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n) })
				b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			})
			for _, buf := range []kernels.Buffer{a, bb, c} {
				check(d.Free(buf))
			}
		}
	}
}

// BenchmarkEpilogue times the DiT-S/2 MLP's products at batch 256 (65,536 tokens) in
// TF32 with the bias and GELU in cuBLASLt's epilogue ("fused") and as separate ops
// (IMMKIT_CUDA_LT=0): fc1 forward (bias + GELU, pre-activation saved), fc2 forward
// (bias), and fc2's input gradient through the GELU.
func BenchmarkEpilogue(b *testing.B) {
	d := withTF32(benchGPU(b)).(*Device)
	rows, dim, hid := 65536, 384, 1536
	x, w1, b1, w2, b2 := d.Alloc(rows*dim), d.Alloc(hid*dim), d.Alloc(hid), d.Alloc(dim*hid), d.Alloc(dim)
	h, pre, y, dy, dh := d.Alloc(rows*hid), d.Alloc(rows*hid), d.Alloc(rows*dim), d.Alloc(rows*dim), d.Alloc(rows*hid)
	for i, buf := range []kernels.Buffer{x, w1, b1, w2, b2, dy} {
		d.RandNormal(buf, uint64(i+1), 0, 0.05)
	}
	for _, c := range []struct {
		name    string
		m, n, k int
		f       func()
	}{
		{"fc1-bias-gelu", rows, hid, dim, func() {
			d.GemmBiasAct(false, true, rows, hid, dim, x, dim, w1, dim, b1, kernels.GELUTanh, h, pre)
		}},
		{"fc2-bias", rows, dim, hid, func() { d.GemmBiasAct(false, true, rows, dim, hid, h, hid, w2, hid, b2, kernels.Identity, y, nil) }},
		{"fc2-dx-dgelu", rows, hid, dim, func() {
			d.GemmActGrad(false, false, rows, hid, dim, dy, dim, w2, hid, kernels.GELUTanh, pre, dh)
		}},
	} {
		for _, mode := range []string{"fused", "ops"} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", c.name, c.m, c.n, c.k, mode), func(b *testing.B) {
				if mode == "ops" {
					b.Setenv("IMMKIT_CUDA_LT", "0")
				}
				runSync(b, d, c.f)
				b.ReportMetric(2*float64(c.m)*float64(c.n)*float64(c.k)*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			})
		}
	}
	b.Logf("cuBLASLt: %s", d.ltSummary())
	for _, buf := range []kernels.Buffer{x, w1, b1, w2, b2, h, pre, y, dy, dh} {
		check(d.Free(buf))
	}
}

// BenchmarkAttention times the DiT-S/2 attention at batch 256 (256 tokens, 6 heads of
// 64): the forward pass and the backward pass, through cuBLAS batched GEMMs (TF32) and
// the softmax kernel ("gemm"), and through the fused bf16 kernels ("flash"). TFLOP/s
// counts the products' 4 B H L^2 hd FLOPs forward and 8 B H L^2 hd backward (the fused
// backward's recomputation of the scores not counted).
func BenchmarkAttention(b *testing.B) {
	d := withTF32(benchGPU(b)).(*Device)
	batch, l, heads, hd := 256, 256, 6, 64
	D := heads * hd
	qkv, o, do, dqkv := d.Alloc(batch*l*3*D), d.Alloc(batch*l*D), d.Alloc(batch*l*D), d.Alloc(batch*l*3*D)
	d.RandNormal(qkv, 1, 0, 1)
	d.RandNormal(do, 2, 0, 1)
	flops := 4 * float64(batch*heads) * float64(l*l) * float64(hd)
	for _, mode := range []string{"gemm", "flash"} {
		if mode == "flash" {
			b.Setenv("IMMKIT_CUDA_ATTN", "flash")
		}
		ws := d.Alloc(d.AttentionWorkspace(batch, l, heads, hd))
		shape := fmt.Sprintf("%dx%dx%d-h%d", batch, l, hd, heads)
		b.Run("fwd/"+shape+"/"+mode, func(b *testing.B) {
			runSync(b, d, func() { d.Attention(o, ws, qkv, batch, l, heads, hd) })
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
		d.Attention(o, ws, qkv, batch, l, heads, hd)
		b.Run("bwd/"+shape+"/"+mode, func(b *testing.B) {
			runSync(b, d, func() { d.AttentionGrad(dqkv, do, o, ws, qkv, batch, l, heads, hd) })
			b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
		check(d.Free(ws))
	}
	for _, buf := range []kernels.Buffer{qkv, o, do, dqkv} {
		check(d.Free(buf))
	}
}

func BenchmarkLaplaceMMD(b *testing.B) {
	d := benchGPU(b)
	groups, m, dim := 1024, 4, 64
	n := groups * m * dim
	yt, yr, grad := d.Alloc(n), d.Alloc(n), d.Alloc(n)
	kw, gw, mmd := d.Alloc(groups), d.Alloc(groups), d.Alloc(groups)
	d.RandNormal(yt, 1, 0, 1)
	d.RandNormal(yr, 2, 0, 1)
	d.Fill(kw, 2)
	d.Fill(gw, 1)
	b.SetBytes(int64(12 * n))
	runSync(b, d, func() { d.LaplaceMMD(mmd, grad, yt, yr, kw, gw, groups, m, dim, nil) })
}

// BenchmarkIMMStep is one IMM training step of the mlp64 configuration of
// shared/bench/imm_torch_ref.py: 64-dim data, hidden 1024 x 4, batch 4096, M = 4, FP32
// storage; the GEMMs in FP32, TF32, or bf16 with the layers' rounded operands kept and
// the first layer of each block writing bf16 (bf16), kept with float32 outputs
// (bf16-noout) or rounded in each product (bf16-nokeep). Compare with the reference's
// mlp64 line.
func BenchmarkIMMStep(b *testing.B) {
	benchGPU(b)
	mc := nn.MLPConfig{Arch: "mlp", Dim: 64, Width: 1024, Depth: 4, Freq: 64}
	for _, c := range []struct {
		name string
		opt  Options
		keep bool
		out  bool
	}{{"fp32", Options{}, false, false}, {"tf32", Options{TF32: true}, false, false}, {"bf16", Options{BF16: true}, true, true},
		{"bf16-noout", Options{BF16: true}, true, false}, {"bf16-nokeep", Options{BF16: true}, false, false}} {
		// a Device of its own: the trainer uses its scratch buffers
		d, err := New(c.opt)
		if err != nil {
			b.Fatal(err)
		}
		d.keep, d.out16 = c.keep, c.out
		b.Run(fmt.Sprintf("mlp64-h1024x4/batch=4096/%s", c.name), func(b *testing.B) {
			tr := trainer(b, d, 4096, mc)
			// a fixed batch: the reference draws its data on the GPU, so host-side
			// generation is kept out of the step time
			batch, _ := gaussSource(64)(rand.New(rand.NewPCG(1, 2)), 4096)
			src := func(*rand.Rand, int) ([]float32, []int32) { return batch, nil }
			step := func() {
				if _, err := tr.TrainStep(src); err != nil {
					b.Fatal(err)
				}
			}
			runSync(b, d, step)
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
		})
	}
}

// BenchmarkDiTFootprint measures what one IMM training step of DiT-S/2 on 32x32x3
// (target branch, loss branch forward and backward, AdamW) allocates and rounds to bf16,
// exactly: at batches 4 and 8, each on a fresh Device, so the difference is the
// per-sample part and the rest the fixed part (weights, optimiser state, their rounded
// copies). It reports both, projected to batch 256 (the gpu-check step). Its time is not
// a figure. On the emulator (minutes per device):
// IMMKIT_CUDA_LIB_DIR=/tmp/emu go test ./kernels/cuda -run XXX -bench DiTFootprint -benchtime 1x
func BenchmarkDiTFootprint(b *testing.B) {
	benchGPU(b) // or skip, saying why
	for _, c := range []struct {
		name  string
		opt   Options
		keep  bool
		out   bool // bf16 outputs (RoundsOutputs)
		flash bool
	}{{"tf32", Options{TF32: true}, false, false, false}, {"tf32-flash", Options{TF32: true}, false, false, true},
		{"bf16-nokeep", Options{BF16: true}, false, false, false}, {"bf16-noout", Options{BF16: true}, true, false, false},
		{"bf16", Options{BF16: true}, true, true, false}, {"bf16-flash-nokeep", Options{BF16: true}, false, false, true},
		{"bf16-flash-noout", Options{BF16: true}, true, false, true}, {"bf16-flash", Options{BF16: true}, true, true, true}} {
		b.Run(c.name, func(b *testing.B) {
			b.Setenv("IMMKIT_CUDA_ATTN", map[bool]string{false: "gemm", true: "flash"}[c.flash])
			var mem, rounded [2]float64
			for i, batch := range []int{4, 8} {
				d, err := New(c.opt)
				if err != nil {
					b.Fatal(err)
				}
				d.keep, d.out16 = c.keep, c.out
				runtime.GC() // free the previous model's buffers (finalizers) before the baseline
				runtime.GC()
				time.Sleep(100 * time.Millisecond)
				base, _ := d.ctx.MemStats() // one context per process: every Device's allocations
				d.ctx.ResetPeak()
				p0, k0 := d.BF16Rounded()
				ditStep(b, d, batch)
				check(d.Sync())
				p1, k1 := d.BF16Rounded()
				_, peak := d.ctx.MemStats()
				mem[i], rounded[i] = float64(peak-base), float64(p1-p0+k1-k0)
			}
			perMem, perRounded := (mem[1]-mem[0])/4, (rounded[1]-rounded[0])/4
			b.ReportMetric(perMem/(1<<20), "MiB/sample")
			b.ReportMetric((mem[0]-4*perMem)/(1<<20), "MiB-fixed")
			b.ReportMetric((mem[0]+252*perMem)/(1<<30), "GiB@256")
			b.ReportMetric(perRounded/1e6, "M-rounded/sample")
			b.ReportMetric((rounded[0]+252*perRounded)/1e9, "G-rounded@256")
		})
	}
}

// ditStep builds DiT-S/2 for 32x32x3 on d and runs one IMM training step at batch.
func ditStep(b *testing.B, d *Device, batch int) {
	mc, err := nn.NewDiTConfig("S/2", 3, 32, 32, 10)
	if err != nil {
		b.Fatal(err)
	}
	net, err := nn.NewDiT(d, mc, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	cfg := imm.DefaultConfig()
	D := mc.Dim()
	obj, err := imm.NewObjective(cfg, d, net, D)
	if err != nil {
		b.Fatal(err)
	}
	opt := nn.NewAdamW(net.Reg, kernels.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1)
	x, e := d.Alloc(batch*D), d.Alloc(batch*D)
	d.RandNormal(x, 1, 0, 0.5)
	d.RandNormal(e, 2, 0, 1)
	labels := make([]int32, batch)
	dr := cfg.DrawTimes(rand.New(rand.NewPCG(9, 9)), batch/cfg.M)
	yr, err := obj.Target(x, e, dr, labels, net.Null())
	if err != nil {
		b.Fatal(err)
	}
	net.Reg.ZeroGrad()
	if _, err := obj.Loss(x, e, dr, labels, yr, true); err != nil {
		b.Fatal(err)
	}
	opt.Update()
}
