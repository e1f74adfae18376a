package imm

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// BenchmarkMultimodalStep times one Trainer.Update (target branch, masked loss with
// backward, AdamW, EMA) of the multimodal model at the size of `immtrain multimodal
// --demo` with its recipe (tiny: width 64, depth 2; particles of a 32x32x3 image in 8x8
// patches, 5 groups of 20 Whisper mel frames, 12 text tokens of 16 values), batch 32, on
// the CPU device with GOMAXPROCS workers. Random particles with the last 8 text tokens
// masked out.
func BenchmarkMultimodalStep(b *testing.B) {
	segs := []nn.Segment{{Name: "image", Tokens: 16, Features: 192}, {Name: "audio", Tokens: 5, Features: 1600}, {Name: "text", Tokens: 12, Features: 16}}
	mc := nn.MultimodalConfig{Segments: segs, Width: 64, Depth: 2, Heads: 4, MLPRatio: 4, Freq: 64, Classes: 40}
	const B = 32
	tr, err := NewModelTrainer(cpu.New[float32](runtime.GOMAXPROCS(0)), DefaultConfig(),
		TrainConfig{Objective: "imm", Batch: B, LR: 1e-3, Clip: 1, EMADecay: 0.99, Seed: 1}, ModelConfig{Multimodal: &mc})
	if err != nil {
		b.Fatal(err)
	}
	D := mc.Dim()
	rng := rand.New(rand.NewPCG(1, 2))
	x, mask := make([]float32, B*D), make([]float32, B*D)
	labels := make([]int32, B)
	for i := range x {
		x[i] = float32(0.5 * rng.NormFloat64())
		mask[i] = 1
		if i%D >= D-128 { // the last 8 text tokens are padding
			x[i], mask[i] = 0, 0
		}
	}
	for i := range labels {
		labels[i] = int32(rng.IntN(40))
	}
	b.ResetTimer()
	for range b.N {
		if _, err := tr.Update(Batch[float32]{X: x, Mask: mask, Labels: labels}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(B*b.N)/b.Elapsed().Seconds(), "samples/s")
}
