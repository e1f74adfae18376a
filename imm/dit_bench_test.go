package imm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/internal/cudadrv"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/device"
)

// BenchmarkDiTStep times one IMM training step of a DiT in float32: the target branch
// forward, the loss branch forward and backward, and the AdamW update. The device is
// IMMKIT_BENCH_DEVICE (cpu by default; cuda or cuda-tf32 on a GPU, see
// scripts/gpu-check.sh). Sub-benchmarks: tiny/2 on 8x8x1 at batch 32, S/2 on 32x32x4
// latents at batch 8, and, on a GPU only, S/2 on 32x32x3 at batch 256 (the
// `dit-s2-32px` line of shared/bench/imm_torch_ref.py).
func BenchmarkDiTStep(b *testing.B) {
	name := os.Getenv("IMMKIT_BENCH_DEVICE")
	if name == "" {
		name = "cpu"
	}
	for _, c := range []struct {
		name, size string
		ch, px     int
		batch      int
	}{{"tiny2-8x8x1-b32", "tiny/2", 1, 8, 32}, {"S2-32x32x4-b8", "S/2", 4, 32, 8}, {"S2-32x32x3-b256", "S/2", 3, 32, 256}} {
		b.Run(c.name, func(b *testing.B) {
			if c.batch > 32 && name == "cpu" {
				b.Skip("batch 256 runs on a GPU only (IMMKIT_BENCH_DEVICE=cuda)")
			}
			d, desc, err := device.Open(name, runtime.GOMAXPROCS(0))
			if err != nil {
				b.Fatal(err)
			}
			b.Log(desc)
			mem, onGPU := d.(memStats)
			var base int64
			if onGPU {
				base, _ = mem.Context().MemStats()
				mem.Context().ResetPeak()
			}
			cfg := DefaultConfig()
			mc, err := nn.NewDiTConfig(c.size, c.ch, c.px, c.px, 10)
			if err != nil {
				b.Fatal(err)
			}
			net, err := nn.NewDiT(d, mc, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				b.Fatal(err)
			}
			D := mc.Dim()
			obj, err := NewObjective(cfg, d, net, D)
			if err != nil {
				b.Fatal(err)
			}
			opt := nn.NewAdamW(net.Reg, kernels.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1)
			rng := rand.New(rand.NewPCG(2, 2))
			x, e := d.Alloc(c.batch*D), d.Alloc(c.batch*D)
			d.RandNormal(x, 1, 0, 0.5)
			d.RandNormal(e, 2, 0, 0.5)
			labels := make([]int32, c.batch)
			for i := range labels {
				labels[i] = int32(i % 10)
			}
			step := func() {
				dr := cfg.DrawTimes(rng, c.batch/cfg.M)
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
			step() // warm-up: first-use allocations and, on a GPU, module loading (each step reads the loss back, so steps are synchronous)
			r, profiling := d.(device.Reporter)
			if profiling {
				r.Reset()
			}
			b.ResetTimer()
			for range b.N {
				step()
			}
			if profiling {
				b.StopTimer()
				fmt.Fprintf(os.Stderr, "prof: BenchmarkDiTStep/%s, %d steps\n", c.name, b.N)
				r.Report(os.Stderr, 40)
				b.StartTimer()
			}
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
			b.ReportMetric(ditStepFLOPs(mc, c.batch)*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			if onGPU {
				_, peak := mem.Context().MemStats()
				b.ReportMetric(float64(peak-base)/(1<<30), "GiB-peak")
			}
		})
	}
}

// memStats is a GPU device: the peak of its allocations during a step benchmark is its
// memory footprint (model, optimiser state, activations, scratch).
type memStats interface{ Context() *cudadrv.Context }

// ditStepFLOPs is the matmul work of one IMM step of a DiT (the basis of model FLOP
// utilisation): 2 FLOPs per multiply-add over the patch embedding, every block's qkv,
// attention scores, attention-weighted values, output projection and MLP, the per-sample
// adaLN modulation (6 vectors per block, 2 in the final layer) and the output projection,
// times 4 forward-equivalents per step (the stop-gradient target branch, the loss branch,
// and its backward at twice a forward). Elementwise work is left out, as in the usual
// MFU accounting. For S/2 on 32x32x3 the forward is 6.05 G multiply-adds per sample, the
// 6.06 "Gflops" of the DiT paper (Peebles and Xie, table 1, which counts multiply-adds).
func ditStepFLOPs(c nn.DiTConfig, batch int) float64 {
	w, l := float64(c.Width), float64((c.Height/c.Patch)*(c.WidthPx/c.Patch))
	pin := float64(c.Patch * c.Patch * c.Channels)
	ratio := float64(c.MLPRatio)
	if ratio == 0 {
		ratio = 4
	}
	perBlock := l*(3*w*w+w*w+2*ratio*w*w) + 2*l*l*w + 6*w*w
	fwd := l*pin*w + float64(c.Depth)*perBlock + 2*w*w + l*w*pin
	return 4 * 2 * fwd * float64(batch)
}
