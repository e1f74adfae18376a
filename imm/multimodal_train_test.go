package imm

import (
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// TestMultimodalTrainsWithIMM trains the multimodal model on particles of a 4x4x1 image
// (4 patch tokens of 2x2) and a padded caption of up to 3 tokens from a frozen text table,
// both determined by the class, with the masked loss, and checks that the loss on fixed
// evaluation batches falls.
func TestMultimodalTrainsWithIMM(t *testing.T) {
	steps := 120
	if testing.Short() {
		steps = 50
	}
	d := cpu.New[float32](2)
	cfg := DefaultConfig()
	pt, err := nn.NewPatchify(d, 1, 4, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 1))
	raw := make([]float32, 8*4)
	for i := range raw {
		raw[i] = float32(rng.NormFloat64())
	}
	text, err := NewTextTable(raw, 8, 4, cfg.SigmaD)
	if err != nil {
		t.Fatal(err)
	}
	mc := nn.MultimodalConfig{Segments: []nn.Segment{{Name: "image", Tokens: pt.Tokens(), Features: pt.Features()}, {Name: "text", Tokens: 3, Features: 4}},
		Width: 32, Depth: 2, Heads: 2, Freq: 32, Classes: 4}
	net, err := nn.NewMultimodal(d, mc, rand.New(rand.NewPCG(42, 1)))
	if err != nil {
		t.Fatal(err)
	}
	D, B := mc.Dim(), 32
	obj, err := NewObjective(cfg, d, net, D)
	if err != nil {
		t.Fatal(err)
	}
	mm := NewMultimodal(obj)
	opt := nn.NewAdamW(net.Reg, kernels.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 1)

	type batch struct {
		x, e   kernels.Buffer
		mask   []float32
		dr     Draws
		labels []int32
	}
	imgOff, txtOff := mc.Offset(0), mc.Offset(1)
	draw := func() batch {
		img := make([]float32, B*16)
		host := make([]float32, B*D)
		mask := make([]float32, B*D)
		labels := make([]int32, B)
		for i := range B {
			k := rng.IntN(4)
			labels[i] = int32(k)
			for y := range 4 {
				for c := range 4 {
					v := -0.3
					if y == k {
						v = 0.9
					}
					img[i*16+y*4+c] = float32(v + 0.05*rng.NormFloat64())
				}
			}
			n := 1 + k%3
			ids := make([]int32, n)
			for j := range ids {
				ids[j] = int32((k + 4*j) % 8)
			}
			if err := text.Encode(host[i*D+txtOff:i*D+txtOff+n*4], ids); err != nil {
				t.Fatal(err)
			}
			for j := range D {
				if j < txtOff+n*4 { // the whole image, then n real text tokens
					mask[i*D+j] = 1
				}
			}
		}
		ib := d.Alloc(len(img))
		d.Write(ib, img)
		tok := make([]float32, B*16)
		d.Read(tok, pt.Patch(ib, B))
		for i := range B {
			copy(host[i*D+imgOff:i*D+imgOff+16], tok[i*16:(i+1)*16])
		}
		b := batch{x: d.Alloc(B * D), e: d.Alloc(B * D), mask: mask, labels: labels, dr: cfg.DrawTimes(rng, B/cfg.M)}
		d.Write(b.x, host)
		d.RandNormal(b.e, rng.Uint64(), 0, float32(cfg.SigmaD))
		if err := mm.MaskNoise(b.e, mask, B); err != nil {
			t.Fatal(err)
		}
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
			l, err := mm.Loss(b.x, b.e, b.mask, b.dr, b.labels, yr, false)
			if err != nil {
				t.Fatal(err)
			}
			s += l
		}
		return s / float64(len(evals))
	}
	before := evalLoss()
	for range steps {
		b := draw()
		labels := DropLabels(b.labels, net.Null(), cfg.LabelDrop, rng)
		yr, err := obj.Target(b.x, b.e, b.dr, labels, net.Null())
		if err != nil {
			t.Fatal(err)
		}
		net.Reg.ZeroGrad()
		if _, err := mm.Loss(b.x, b.e, b.mask, b.dr, labels, yr, true); err != nil {
			t.Fatal(err)
		}
		opt.Update()
	}
	after := evalLoss()
	t.Logf("fixed-batch masked loss %.4g -> %.4g after %d steps", before, after, steps)
	if !(after < 0.8*before) {
		t.Errorf("fixed-batch masked IMM loss went from %.4g to %.4g after %d steps, want a drop of at least 20%%", before, after, steps)
	}
}
