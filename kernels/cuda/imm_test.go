package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// gaussSource draws rows x dim particles from a fixed mixture, from the trainer's rng,
// so both trainers see the same batch.
func gaussSource(dim int) imm.Source[float32] {
	return func(rng *rand.Rand, rows int) ([]float32, []int32) {
		x := make([]float32, rows*dim)
		for i := 0; i < rows; i++ {
			c := float64(rng.IntN(4))
			for j := 0; j < dim; j++ {
				x[i*dim+j] = float32(0.5*c - 0.75 + 0.1*rng.NormFloat64())
			}
		}
		return x, nil
	}
}

func trainer(t testing.TB, d kernels.Device[float32], batch int, mc nn.MLPConfig) *imm.Trainer[float32] {
	tc := imm.TrainConfig{Objective: "imm", Batch: batch, Steps: 10, LR: 1e-3, EMADecay: 0.999, Seed: 3}
	tr, err := imm.NewTrainer(d, imm.DefaultConfig(), tc, mc)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestIMMStep runs the same IMM training steps of the toy MLP on the CPU and the GPU and
// compares the loss and every parameter gradient (1e-3 relative) and the weights after
// the AdamW updates.
func TestIMMStep(t *testing.T) {
	g := testDev(t)
	for _, mc := range []nn.MLPConfig{
		{Arch: "mlp", Dim: 2, Width: 128, Depth: 3, Freq: 64},
		{Arch: "mlp", Dim: 64, Width: 256, Depth: 2, Freq: 64},
	} {
		name := fmt.Sprintf("dim=%d/width=%d/depth=%d", mc.Dim, mc.Width, mc.Depth)
		tg, tc := trainer(t, g, 512, mc), trainer(t, cpu.New[float32](runtime.GOMAXPROCS(0)), 512, mc)
		src := gaussSource(mc.Dim)
		for step := 1; step <= 3; step++ {
			mg, err := tg.TrainStep(src)
			if err != nil {
				t.Fatal(err)
			}
			mcpu, err := tc.TrainStep(src)
			if err != nil {
				t.Fatal(err)
			}
			rel := math.Abs(mg.Loss-mcpu.Loss) / math.Abs(mcpu.Loss)
			t.Logf("PARITY\tIMM loss step %d\t%s\t%.3g", step, name, rel)
			if rel > 1e-3 {
				t.Errorf("%s step %d: loss gpu %v cpu %v", name, step, mg.Loss, mcpu.Loss)
			}
			var worstG, worstW float64
			for i, p := range tc.Net.Reg.Params {
				q := tg.Net.Reg.Params[i]
				worstG = math.Max(worstG, relDiff(g, q.G, cpu.Data[float32](p.G)))
				worstW = math.Max(worstW, relDiff(g, q.W, cpu.Data[float32](p.W)))
			}
			t.Logf("PARITY\tIMM gradients step %d\t%s\t%.3g", step, name, worstG)
			t.Logf("PARITY\tIMM weights step %d\t%s\t%.3g", step, name, worstW)
			if worstG > 1e-3 || worstW > 1e-3 {
				t.Errorf("%s step %d: worst parameter gradient error %.3g, weight error %.3g", name, step, worstG, worstW)
			}
		}
	}
}

// relDiff is max|gpu-cpu|/max|cpu| over a buffer (a NaN anywhere counts as infinite).
func relDiff(g kernels.Device[float32], b kernels.Buffer, ref []float32) float64 {
	h := make([]float32, b.Len())
	g.Read(h, b)
	var md, mr float64
	for i := range h {
		d := math.Abs(float64(h[i]) - float64(ref[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		md, mr = math.Max(md, d), math.Max(mr, math.Abs(float64(ref[i])))
	}
	return md / math.Max(mr, 1e-30)
}
