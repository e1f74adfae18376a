package imm

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// BenchmarkDiTStep times one IMM training step of a DiT in float32 on the CPU device: the
// target branch forward, the loss branch forward and backward, and the AdamW update.
// Sub-benchmarks: tiny/2 on 8x8x1 at batch 32, and S/2 on 32x32x4 latents at batch 8.
func BenchmarkDiTStep(b *testing.B) {
	for _, c := range []struct {
		name, size string
		ch, px     int
		batch      int
	}{{"tiny2-8x8x1-b32", "tiny/2", 1, 8, 32}, {"S2-32x32x4-b8", "S/2", 4, 32, 8}} {
		b.Run(c.name, func(b *testing.B) {
			d := cpu.New[float32](runtime.GOMAXPROCS(0))
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
			b.ResetTimer()
			for range b.N {
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
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
