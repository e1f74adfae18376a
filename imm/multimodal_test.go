package imm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// mmSetup builds a float64 multimodal network (image 4 tokens x 3, text 3 tokens x 2) and
// a batch of 2 groups of 4 particles whose text segments are padded at the end by
// 0..2 tokens (group 0) or 1..2 tokens (group 1). x and e are zero at padded coordinates.
func mmSetup(t *testing.T, kernel string) (*cpu.Device[float64], *nn.Multimodal[float64], *Multimodal[float64], []float64, []float64, []float64, Draws, []int32) {
	t.Helper()
	d := cpu.New[float64](2)
	mc := nn.MultimodalConfig{Segments: []nn.Segment{{Name: "image", Tokens: 4, Features: 3}, {Name: "text", Tokens: 3, Features: 2}},
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 2, RandomInit: true}
	net, err := nn.NewMultimodal(d, mc, rand.New(rand.NewPCG(31, 1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Kernel = kernel
	obj, err := NewObjective(cfg, d, net, mc.Dim())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(32, 1))
	rows, D := 8, mc.Dim()
	mask := make([]float64, rows*D)
	for i := range rows {
		real := 3 - i%3 // text tokens present: group 0 has all three in some particle,
		if i >= 4 {     // group 1 at most two, so its D_g is 16 of 18
			real = 1 + i%2
		}
		for j := range D {
			if j < 12 || (j-12)/2 < real {
				mask[i*D+j] = 1
			}
		}
	}
	x, e := randn(rng, rows*D, 0.5), randn(rng, rows*D, 0.5)
	for i := range mask {
		x[i] *= mask[i]
		e[i] *= mask[i]
	}
	dr := Draws{S: []float64{0.1, 0.3}, R: []float64{0.2, 0.5}, T: []float64{0.4, 0.9}}
	mm := NewMultimodal(obj)
	mm.Segments = SegmentBounds(cfg, ModelConfig{Multimodal: &mc})
	if want := kernel == "modality"; (mm.Segments != nil) != want {
		t.Fatalf("kernel %s: segment bounds %v", kernel, mm.Segments)
	}
	return d, net, mm, mask, x, e, dr, []int32{0, 1, 2, 1, 0, 0, 1, 2}
}

// maskedMMDRef is an independent float64 loop of the masked loss: distances run over the
// coordinates unmasked in at least one of the two particles (a masked coordinate counts
// as 0), D_g counts the coordinates unmasked in some particle of the group. With kernel
// "modality" the distance is the sum of the norms over the coordinate ranges of segs
// (mmSetup's image [0, 12) and text [12, 18)).
func maskedMMDRef(cfg Config, yt, yr, mask []float64, dr Draws, dim int) float64 {
	segs := []int{0, dim}
	if cfg.Kernel == "modality" {
		segs = []int{0, 12, dim}
	}
	m, groups := cfg.M, len(dr.T)
	var loss float64
	for g := range groups {
		deff := 0
		for i := range dim {
			any := false
			for j := range m {
				any = any || mask[(g*m+j)*dim+i] == 1
			}
			if any {
				deff++
			}
		}
		w := cfg.KernelWeight(dr.S[g], dr.T[g]) / float64(deff)
		k := func(a, b []float64, ja, jb int) float64 {
			var dist float64
			for q := 1; q < len(segs); q++ {
				var s float64
				for i := segs[q-1]; i < segs[q]; i++ {
					ma, mb := mask[(g*m+ja)*dim+i] == 1, mask[(g*m+jb)*dim+i] == 1
					if !ma && !mb {
						continue
					}
					va, vb := 0.0, 0.0
					if ma {
						va = a[(g*m+ja)*dim+i]
					}
					if mb {
						vb = b[(g*m+jb)*dim+i]
					}
					s += (va - vb) * (va - vb)
				}
				dist += math.Sqrt(s)
			}
			return math.Exp(-w * math.Max(dist, 1e-8))
		}
		var mmd float64
		for j := range m {
			for l := range m {
				mmd += k(yt, yt, j, l) + k(yr, yr, j, l) - 2*k(yt, yr, j, l)
			}
		}
		loss += cfg.Weight(dr.S[g], dr.T[g]) * mmd / float64(m*m) / float64(groups)
	}
	return loss
}

func TestMultimodalMaskedLoss(t *testing.T) {
	for _, kernel := range []string{"particle", "modality"} {
		t.Run(kernel, func(t *testing.T) { testMultimodalMaskedLoss(t, kernel) })
	}
}

func testMultimodalMaskedLoss(t *testing.T, kernel string) {
	d, net, mm, mask, xs, es, dr, labels := mmSetup(t, kernel)
	cfg, D := mm.Obj.Cfg, mm.Obj.Dim
	x, e := host(d, xs), host(d, es)
	yrb, err := mm.Obj.Target(x, e, dr, labels, net.Null())
	if err != nil {
		t.Fatal(err)
	}
	yr := append([]float64(nil), cpu.Data[float64](yrb)...)
	got, err := mm.Loss(x, e, mask, dr, labels, host(d, yr), false)
	if err != nil {
		t.Fatal(err)
	}
	// y_t through the public F path at x_t = a_t x + s_t e.
	rows := len(labels)
	xt := make([]float64, rows*D)
	for i := range xt {
		g := i / D / cfg.M
		xt[i] = cfg.Alpha(dr.T[g])*xs[i] + cfg.Sigma(dr.T[g])*es[i]
	}
	ytb := d.Alloc(rows * D)
	if err := mm.Obj.F(ytb, host(d, xt), func(i int) float64 { return dr.S[i/cfg.M] }, func(i int) float64 { return dr.T[i/cfg.M] }, labels, 0, 1, rows); err != nil {
		t.Fatal(err)
	}
	yt := cpu.Data[float64](ytb)
	want := maskedMMDRef(cfg, yt, yr, mask, dr, D)
	if math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Fatalf("masked loss %v, float64 loop gives %v", got, want)
	}
	// The network's outputs at padded coordinates are not zero, so the mask matters.
	unmasked, err := mm.Obj.Loss(x, e, dr, labels, host(d, yr), false)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(unmasked-want) < 1e-6*want {
		t.Fatalf("unmasked loss %v equals the masked one %v: the test cannot see the mask", unmasked, want)
	}
	t.Logf("masked loss %.6g (loop %.6g), unmasked %.6g", got, want, unmasked)
	if _, err := mm.Loss(x, e, mask[1:], dr, labels, host(d, yr), false); err == nil {
		t.Fatal("short mask accepted")
	}
	bad := append([]float64(nil), mask...)
	bad[3] = 0.5
	if _, err := mm.Loss(x, e, bad, dr, labels, host(d, yr), false); err == nil {
		t.Fatal("mask value 0.5 accepted")
	}
	if got := EffectiveDims(mask, 2, 4, D); got[0] != D || got[1] != D-2 {
		t.Fatalf("effective dims %v, want [%d %d]", got, D, D-2)
	}
}

// TestMultimodalLossGradient checks the gradient of the masked loss with respect to every
// parameter against central finite differences (y_r held fixed, as the stop-gradient).
func TestMultimodalLossGradient(t *testing.T) {
	for _, kernel := range []string{"particle", "modality"} {
		t.Run(kernel, func(t *testing.T) { testMultimodalLossGradient(t, kernel) })
	}
}

func testMultimodalLossGradient(t *testing.T, kernel string) {
	d, net, mm, mask, xs, es, dr, labels := mmSetup(t, kernel)
	x, e := host(d, xs), host(d, es)
	yrb, err := mm.Obj.Target(x, e, dr, labels, net.Null())
	if err != nil {
		t.Fatal(err)
	}
	yr := host(d, append([]float64(nil), cpu.Data[float64](yrb)...))
	net.Reg.ZeroGrad()
	if _, err := mm.Loss(x, e, mask, dr, labels, yr, true); err != nil {
		t.Fatal(err)
	}
	checkParams(t, "multimodal masked loss", net.Reg, func() float64 {
		l, err := mm.Loss(x, e, mask, dr, labels, yr, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// TestMultimodalHold checks that held coordinates are clean in both branches on OT-FM
// and that SampleHeld keeps present segments at their clean values while it generates
// the others.
func TestMultimodalHold(t *testing.T) {
	d, net, mm, _, xs, es, dr, labels := mmSetup(t, "particle")
	D, rows := mm.Obj.Dim, len(labels)
	present := make([]float64, rows*D)
	for i := range rows {
		for j := range 12 { // the image segment is given
			present[i*D+j] = 1
		}
	}
	x, e := host(d, xs), host(d, es)
	if err := mm.Hold(e, x, present, rows); err != nil {
		t.Fatal(err)
	}
	xt := cpu.Data[float64](mm.Obj.interpolate(x, e, dr, rows))
	for i, p := range present {
		if p == 1 && math.Abs(xt[i]-xs[i]) > 1e-12 {
			t.Fatalf("held x_t[%d] = %v, clean value %v", i, xt[i], xs[i])
		}
		if p == 0 && es[i] != 0 && xt[i] == xs[i] {
			t.Fatalf("free x_t[%d] equals the clean value", i)
		}
	}
	for i := range rows {
		p, q := mm.Obj.Cfg.DDIM(dr.R[i/4], dr.T[i/4])
		for j := range 12 {
			if xr := p*xs[i*D+j] + q*xt[i*D+j]; math.Abs(xr-xs[i*D+j]) > 1e-12 {
				t.Fatalf("held x_r[%d,%d] = %v, clean %v", i, j, xr, xs[i*D+j])
			}
		}
	}

	clean := host(d, xs)
	start := randn(rand.New(rand.NewPCG(33, 1)), rows*D, 0.5)
	xb := host(d, start)
	if err := mm.SampleHeld(xb, clean, present, rows, Sampler{Steps: 2, Guide: 1.5, Null: net.Null(), Labels: labels}); err != nil {
		t.Fatal(err)
	}
	out := cpu.Data[float64](xb)
	for i, p := range present {
		if p == 1 && math.Abs(out[i]-xs[i]) > 1e-12 {
			t.Fatalf("present coordinate %d is %v after sampling, clean %v", i, out[i], xs[i])
		}
		if p == 0 && out[i] == start[i] {
			t.Fatalf("absent coordinate %d was not generated", i)
		}
	}
	// The held run equals running the plain sampler step by step with resets.
	ref := host(d, start)
	r := cpu.Data[float64](ref)
	for i := range r {
		if present[i] == 1 {
			r[i] = xs[i]
		}
	}
	grid := mm.Obj.Cfg.Grid(2)
	for k := len(grid) - 1; k >= 1; k-- {
		if err := mm.Obj.Sample(ref, rows, Sampler{Grid: []float64{grid[k-1], grid[k]}, Guide: 1.5, Null: net.Null(), Labels: labels}); err != nil {
			t.Fatal(err)
		}
		for i := range r {
			if present[i] == 1 {
				r[i] = xs[i]
			}
		}
	}
	for i := range r {
		if math.Abs(r[i]-out[i]) > 1e-12 {
			t.Fatalf("held sample %d = %v, step-by-step reference %v", i, out[i], r[i])
		}
	}
	if err := mm.SampleHeld(xb, clean, present, rows, Sampler{Kind: "restart", Steps: 2}); err == nil {
		t.Fatal("restart sampler accepted for held sampling")
	}
}

func TestTextTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(34, 1))
	vocab, dim := 50, 6
	raw := randn(rng, vocab*dim, 3)
	tab, err := NewTextTable(raw, vocab, dim, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	for _, v := range tab.Vec {
		ss += v * v
	}
	if rms := math.Sqrt(ss / float64(len(tab.Vec))); math.Abs(rms-0.5) > 1e-12 {
		t.Fatalf("table RMS %v, want sigma_d 0.5", rms)
	}
	ids := []int32{0, 49, 7, 7, 23}
	vec := make([]float64, len(ids)*dim)
	if err := tab.Encode(vec, ids); err != nil {
		t.Fatal(err)
	}
	for i := range vec {
		vec[i] += 0.01 * rng.NormFloat64()
	}
	got, err := tab.Decode(vec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("decoded %v, want %v", got, ids)
		}
	}
	if err := tab.Encode(vec, []int32{0, 1, 2, 3, 50}); err == nil {
		t.Fatal("token 50 of a 50-token vocabulary accepted")
	}
	if _, err := NewTextTable(make([]float64, 12), 2, 6, 0.5); err == nil {
		t.Fatal("all-zero table accepted")
	}
}
