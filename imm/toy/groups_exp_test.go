//go:build experiment

package toy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// condSample draws n points of gmm16 with label = row of the 4x4 grid (4 classes, each a
// mixture of 4 Gaussians), scaled as the dataset; if grouped, every run of m shares a label.
func condSample(d *Dataset, rng *rand.Rand, n, m int, grouped bool) ([]float64, []int32) {
	x := make([]float64, 2*n)
	lab := make([]int32, n)
	var c int
	for i := range n {
		if !grouped || i%m == 0 {
			c = rng.IntN(4)
		}
		k := c*4 + rng.IntN(4)
		x[2*i] = (float64(k%4) - 1.5 + 0.1*rng.NormFloat64() - d.mean[0]) * d.scale[0]
		x[2*i+1] = (float64(k/4) - 1.5 + 0.1*rng.NormFloat64() - d.mean[1]) * d.scale[1]
		lab[i] = int32(c)
	}
	return x, lab
}

// TestExpGroupLabels is the controlled experiment behind imm.TrainConfig.GroupLabels
// (docs/multimodal.md): a class-conditional MLP on gmm16 with label = grid row, trained
// with groups of mixed labels and with groups sharing a label, per seed; it logs the
// per-class energy distance and the share of samples in their label's row at 1, 2, 4 and
// 16 steps. An experiment, not a check (it asserts nothing), so it is built only with
// the experiment tag:
//
//	[EXP_STEPS=6000] [EXP_ONE=1] [EXP_FM=1] go test -tags experiment ./imm/toy -run TestExpGroupLabels -v
func TestExpGroupLabels(t *testing.T) {
	d, _ := NewDataset("gmm16", 0.5)
	steps := 1500
	seeds := []uint64{1, 2, 3}
	if os.Getenv("EXP_ONE") != "" {
		seeds = seeds[:1]
	}
	fmt.Sscan(os.Getenv("EXP_STEPS"), &steps)
	for _, seed := range seeds {
		for _, grouped := range []bool{false, true} {
			obj := "imm"
			if os.Getenv("EXP_FM") != "" {
				obj = "fm"
				if grouped {
					continue
				}
			}
			c := imm.DefaultConfig()
			tc := imm.TrainConfig{Objective: obj, Batch: 256, Steps: steps, LR: 1e-3, Clip: 1, EMADecay: 0.999, Seed: seed, GroupLabels: grouped}
			mc := imm.ModelConfig{MLP: &nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 128, Depth: 3, Freq: 64, Classes: 4}}
			tr, err := imm.NewModelTrainer(cpu.New[float32](1), c, tc, mc)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(seed, 99))
			for range steps {
				x, lab := condSample(d, rng, 256, c.M, grouped)
				xf := make([]float32, len(x))
				for i := range x {
					xf[i] = float32(x[i])
				}
				if _, err := tr.Update(imm.Batch[float32]{X: xf, Labels: lab}); err != nil {
					t.Fatal(err)
				}
			}
			line := fmt.Sprintf("seed %d grouped %v:", seed, grouped)
			for _, ns := range []int{1, 2, 4, 16} {
				const n = 1000
				var ed, acc float64
				for cl := range 4 {
					labels := make([]int32, n)
					for i := range labels {
						labels[i] = int32(cl)
					}
					out, err := tr.Sample(n, imm.Sampler{Steps: ns, Labels: labels, Guide: 1, Kind: map[string]string{"imm": "pushforward", "fm": "euler"}[obj]}, 777+uint64(cl), true)
					if err != nil {
						t.Fatal(err)
					}
					g := make([]float64, len(out))
					right := 0
					for i := range out {
						g[i] = float64(out[i])
					}
					for i := range n {
						row := math.Round(g[2*i+1]/d.scale[1] + d.mean[1] + 1.5)
						if int(row) == cl {
							right++
						}
					}
					ref := make([]float64, 0, 2*n)
					for len(ref) < 2*n {
						x, lab := condSample(d, rng, 64, 1, false)
						for i, l := range lab {
							if int(l) == cl && len(ref) < 2*n {
								ref = append(ref, x[2*i], x[2*i+1])
							}
						}
					}
					ed += EnergyDistance(g, ref, 2, 2) / 4
					acc += float64(right) / n / 4
				}
				line += fmt.Sprintf("  %d steps: ED %.4f acc %.3f", ns, ed, acc)
			}
			t.Log(line)
		}
	}
}
