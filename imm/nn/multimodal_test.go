package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/kernels/cpu"
)

func TestMultimodalGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(21, 1))
	cfg := MultimodalConfig{
		Segments: []Segment{{"image", 4, 3}, {"audio", 2, 5}, {"text", 3, 2}},
		Width:    8, Depth: 2, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 2, RandomInit: true,
	}
	m, err := NewMultimodal(d, cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	D := cfg.Dim()
	if D != 12+10+6 {
		t.Fatalf("Dim = %d, want 28", D)
	}
	checkNetworkGrad(t, "Multimodal", d, rng, m, m.Reg, D, []int32{0, 2, 1})
}

// TestMultimodalMatchesDiT checks the sequence model against the DiT: one segment of
// patch tokens with the DiT's weights copied in gives the DiT's output on the patchified
// images (the modality embedding set to the DiT's patch bias).
func TestMultimodalMatchesDiT(t *testing.T) {
	d := cpu.New[float64](2)
	dcfg := DiTConfig{Channels: 2, Height: 4, WidthPx: 6, Patch: 2, Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 2, RandomInit: true}
	dit, err := NewDiT(d, dcfg, rand.New(rand.NewPCG(22, 1)))
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := NewPatchify(d, 2, 4, 6, 2)
	mcfg := MultimodalConfig{Segments: []Segment{{"image", pt.Tokens(), pt.Features()}},
		Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 2, RandomInit: true}
	mm, err := NewMultimodal(d, mcfg, rand.New(rand.NewPCG(23, 1)))
	if err != nil {
		t.Fatal(err)
	}
	same := map[string]string{"seg.0.in.weight": "patch.weight", "modality": "patch.bias",
		"seg.0.out.weight": "out.weight", "seg.0.out.bias": "out.bias"}
	for _, p := range mm.Reg.Params {
		name := p.Name
		if s, ok := same[name]; ok {
			name = s
		}
		q := dit.Reg.Get(name)
		if q == nil || q.Size() != p.Size() {
			t.Fatalf("no DiT parameter %s for %s", name, p.Name)
		}
		d.Copy(p.W, q.W)
	}
	rng := rand.New(rand.NewPCG(24, 1))
	rows := 2
	x := randBuf(d, rng, rows*dcfg.Dim(), 1)
	ns, nt := d.Alloc(rows), d.Alloc(rows)
	d.Write(ns, []float64{10, 0})
	d.Write(nt, []float64{500, 990})
	want, err := dit.Forward(x, ns, nt, []int32{1, 2}, rows)
	if err != nil {
		t.Fatal(err)
	}
	tok := pt.Patch(x, rows)
	got, err := mm.Forward(tok, ns, nt, []int32{1, 2}, rows)
	if err != nil {
		t.Fatal(err)
	}
	g := copyOut(pt.Unpatch(got, rows))
	w := data(want)
	for i := range w {
		if d := g[i] - w[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("multimodal output %d = %v, DiT gives %v", i, g[i], w[i])
		}
	}
	if err := (MultimodalConfig{Width: 8, Heads: 2}).Validate(); err == nil {
		t.Fatal("config without segments accepted")
	}
}
