package imm

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// BenchmarkTrainStep times one IMM or flow-matching step of the toy MLP (2-D data,
// 64 sinusoidal features per time) at the batch and width of the sub-benchmark name.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct {
		obj          string
		batch, width int
		depth        int
	}{{"imm", 1024, 256, 3}, {"imm", 512, 128, 3}, {"fm", 1024, 256, 3}, {"fm", 512, 128, 3}} {
		b.Run(fmt.Sprintf("%s/batch=%d/width=%d/depth=%d", c.obj, c.batch, c.width, c.depth), func(b *testing.B) {
			tc := TrainConfig{Objective: c.obj, Batch: c.batch, Steps: b.N, LR: 1e-3, EMADecay: 0.999, Seed: 1}
			tr, err := NewTrainer(cpu.New[float32](runtime.GOMAXPROCS(0)), DefaultConfig(), tc,
				nn.MLPConfig{Arch: "mlp", Dim: 2, Width: c.width, Depth: c.depth, Freq: 64})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := tr.TrainStep(ringSource); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "particles/s")
		})
	}
}
