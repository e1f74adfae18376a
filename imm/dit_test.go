package imm

import (
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// barImages draws rows 8x8x1 images: class k (of 4) is a bright horizontal bar on rows
// 2k and 2k+1 over a dark background, plus N(0, 0.05^2) pixel noise; values lie around
// +-0.5 so the data scale matches sigma_d.
func barImages(rng *rand.Rand, rows int) ([]float32, []int32) {
	x := make([]float32, rows*64)
	labels := make([]int32, rows)
	for i := range rows {
		k := rng.IntN(4)
		labels[i] = int32(k)
		for y := range 8 {
			v := -0.3
			if y/2 == k {
				v = 0.9
			}
			for c := range 8 {
				x[i*64+y*8+c] = float32(v + 0.05*rng.NormFloat64())
			}
		}
	}
	return x, labels
}

// TestDiTTrainsWithIMM runs IMM on a tiny DiT over 8x8x1 bar images and checks that the
// loss on fixed evaluation batches (same x, noise, times and labels before and after)
// and the training loss averaged over a window both fall.
func TestDiTTrainsWithIMM(t *testing.T) {
	steps := 150
	if testing.Short() {
		steps = 60
	}
	d := cpu.New[float32](2)
	cfg := DefaultConfig()
	mc, err := nn.NewDiTConfig("tiny/2", 1, 8, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	net, err := nn.NewDiT(d, mc, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	D, B := mc.Dim(), 32
	obj, err := NewObjective(cfg, d, net, D)
	if err != nil {
		t.Fatal(err)
	}
	opt := nn.NewAdamW(net.Reg, kernels.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1)
	rng := rand.New(rand.NewPCG(2, 2))

	type batch struct {
		x, e   kernels.Buffer
		dr     Draws
		labels []int32
	}
	draw := func() batch {
		data, labels := barImages(rng, B)
		b := batch{x: d.Alloc(B * D), e: d.Alloc(B * D), labels: labels}
		d.Write(b.x, data)
		d.RandNormal(b.e, rng.Uint64(), 0, float32(cfg.SigmaD))
		b.dr = cfg.DrawTimes(rng, B/cfg.M)
		return b
	}
	evals := make([]batch, 8)
	for i := range evals {
		evals[i] = draw()
	}
	evalLoss := func() float64 {
		var s float64
		for _, b := range evals {
			yr, err := obj.Target(b.x, b.e, b.dr, b.labels, net.Null())
			if err != nil {
				t.Fatal(err)
			}
			l, err := obj.Loss(b.x, b.e, b.dr, b.labels, yr, false)
			if err != nil {
				t.Fatal(err)
			}
			s += l
		}
		return s / float64(len(evals))
	}
	before := evalLoss()
	losses := make([]float64, steps)
	for step := range steps {
		b := draw()
		labels := DropLabels(b.labels, net.Null(), cfg.LabelDrop, rng)
		yr, err := obj.Target(b.x, b.e, b.dr, labels, net.Null())
		if err != nil {
			t.Fatal(err)
		}
		net.Reg.ZeroGrad()
		if losses[step], err = obj.Loss(b.x, b.e, b.dr, labels, yr, true); err != nil {
			t.Fatal(err)
		}
		opt.Update()
	}
	after := evalLoss()
	const win = 20
	var first, last float64
	for i := range win {
		first += losses[i] / win
		last += losses[steps-win+i] / win
	}
	t.Logf("fixed-batch loss %.4g -> %.4g; training loss over %d steps: first %d %.4g, last %d %.4g", before, after, steps, win, first, win, last)
	if !(after < 0.8*before) {
		t.Errorf("fixed-batch IMM loss went from %.4g to %.4g after %d steps, want a drop of at least 20%%", before, after, steps)
	}
	if !(last < first) {
		t.Errorf("training loss averaged over the last %d steps (%.4g) is not below the first %d (%.4g)", win, last, win, first)
	}
}
