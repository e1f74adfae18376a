package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

type target struct {
	name string
	vals []float64 // live values, perturbed in place
	grad []float64 // analytic gradient of sum(dy * y)
}

func data(b kernels.Buffer) []float64 { return cpu.Data[float64](b) }

func randBuf(d kernels.Device[float64], r *rand.Rand, n int, scale float64) kernels.Buffer {
	b := d.Alloc(n)
	s := data(b)
	for i := range s {
		s[i] = scale * r.NormFloat64()
	}
	return b
}

// gradCheck compares each analytic gradient with central finite differences of
// L = sum(dy * forward()) in float64 and fails when the relative error of a tensor,
// ||analytic - fd|| / ||fd||, is 1e-4 or more, or any element is off by more than
// 1e-4 relative to the tensor's largest entry.
func gradCheck(t *testing.T, what string, forward func() []float64, dy []float64, targets []target) {
	t.Helper()
	const h = 1e-5
	loss := func() float64 {
		y := forward()
		var s float64
		for i := range y {
			s += dy[i] * y[i]
		}
		return s
	}
	for _, tg := range targets {
		fd := make([]float64, len(tg.vals))
		for i := range tg.vals {
			old := tg.vals[i]
			tg.vals[i] = old + h
			lp := loss()
			tg.vals[i] = old - h
			lm := loss()
			tg.vals[i] = old
			fd[i] = (lp - lm) / (2 * h)
		}
		var num, den, mx float64
		for i := range fd {
			num += (fd[i] - tg.grad[i]) * (fd[i] - tg.grad[i])
			den += fd[i] * fd[i]
			mx = math.Max(mx, math.Abs(fd[i]))
		}
		if den == 0 {
			t.Fatalf("%s %s: finite-difference gradient is all zero (test cannot fail)", what, tg.name)
		}
		rel := math.Sqrt(num / den)
		if rel >= 1e-4 {
			t.Errorf("%s %s: relative error %.3g", what, tg.name, rel)
		}
		for i := range fd {
			if math.Abs(fd[i]-tg.grad[i]) > 1e-4*mx {
				t.Errorf("%s %s[%d]: analytic %v, finite difference %v", what, tg.name, i, tg.grad[i], fd[i])
				break
			}
		}
		t.Logf("%s %s: relative error %.2g", what, tg.name, rel)
	}
}

func paramTargets(r *Registry[float64]) []target {
	var ts []target
	for _, p := range r.Params {
		ts = append(ts, target{p.Name, data(p.W), data(p.G)})
	}
	return ts
}

func copyOut(b kernels.Buffer) []float64 { return append([]float64(nil), data(b)...) }

func TestLinearGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(1, 1))
	reg := NewRegistry[float64](d)
	l := NewLinear(reg, "lin", 5, 3, true, rng)
	rows := 4
	x := randBuf(d, rng, rows*5, 1)
	dy := randBuf(d, rng, rows*3, 1)
	fwd := func() []float64 { return copyOut(l.Forward(x, rows)) }
	fwd()
	reg.ZeroGrad()
	dx := copyOut(l.Backward(dy, true))
	gradCheck(t, "Linear", fwd, data(dy), append(paramTargets(reg), target{"x", data(x), dx}))
}

func TestActivationGrad(t *testing.T) {
	d := cpu.New[float64](1)
	rng := rand.New(rand.NewPCG(2, 1))
	for _, a := range []kernels.Act{kernels.SiLU, kernels.GELUTanh} {
		l := NewActivation(d, a)
		x, dy := randBuf(d, rng, 20, 2), randBuf(d, rng, 20, 1)
		fwd := func() []float64 { return copyOut(l.Forward(x)) }
		fwd()
		dx := copyOut(l.Backward(dy))
		gradCheck(t, a.String(), fwd, data(dy), []target{{"x", data(x), dx}})
	}
}

func TestAdaLNGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(3, 1))
	rows, dim := 3, 6
	l := NewAdaLN(d, dim)
	x, sh, sc, dy := randBuf(d, rng, rows*dim, 1), randBuf(d, rng, rows*dim, 1), randBuf(d, rng, rows*dim, 0.5), randBuf(d, rng, rows*dim, 1)
	fwd := func() []float64 { return copyOut(l.Forward(x, sh, sc, rows, 1, dim)) }
	fwd()
	dx, dsh, dsc := l.Backward(dy)
	gradCheck(t, "AdaLN", fwd, data(dy), []target{{"x", data(x), copyOut(dx)}, {"shift", data(sh), copyOut(dsh)}, {"scale", data(sc), copyOut(dsc)}})

	// per-sequence modulations: 2 sequences of 3 rows, shift and scale the column blocks
	// at 0 and dim of one [2, ld] matrix; their gradients are the per-row ones summed
	// over each sequence's rows
	const seqs, tokens, ld = 2, 3, 2*6 + 1
	rows = seqs * tokens
	l = NewAdaLN(d, dim)
	x, dy = randBuf(d, rng, rows*dim, 1), randBuf(d, rng, rows*dim, 1)
	m := randBuf(d, rng, seqs*ld, 0.5)
	fwd = func() []float64 { return copyOut(l.Forward(x, m, d.Slice(m, dim, seqs*ld-dim), rows, tokens, ld)) }
	fwd()
	dx, dsh, dsc = l.Backward(dy)
	dm := make([]float64, seqs*ld)
	for r, v := range copyOut(dsh) {
		dm[(r/dim/tokens)*ld+r%dim] += v
	}
	for r, v := range copyOut(dsc) {
		dm[(r/dim/tokens)*ld+dim+r%dim] += v
	}
	gradCheck(t, "AdaLN per sequence", fwd, data(dy), []target{{"x", data(x), copyOut(dx)}, {"modulation", data(m), dm}})
}

func TestTimeAndLabelEmbeddingGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(4, 1))
	reg := NewRegistry[float64](d)
	rows := 5
	te := NewTimeEmbedding(reg, "temb", 8, 6, rng)
	ns, nt := d.Alloc(rows), d.Alloc(rows)
	d.Write(ns, []float64{0, 100, 250.5, 700, 990})
	d.Write(nt, []float64{3, 400, 500, 800, 994})
	dy := randBuf(d, rng, rows*6, 1)
	fwd := func() []float64 { return copyOut(te.Forward(ns, nt, rows)) }
	fwd()
	reg.ZeroGrad()
	te.Backward(dy)
	gradCheck(t, "TimeEmbedding", fwd, data(dy), paramTargets(reg))

	reg2 := NewRegistry[float64](d)
	le := NewLabelEmbedding(reg2, "label", 3, 4, rng)
	ids := []int32{2, 3, 0, 2}
	dy2 := randBuf(d, rng, 16, 1)
	fwd2 := func() []float64 { y, _ := le.Forward(ids); return copyOut(y) }
	fwd2()
	le.Backward(dy2)
	gradCheck(t, "LabelEmbedding", fwd2, data(dy2), paramTargets(reg2))
	if _, err := le.Forward([]int32{4}); err == nil {
		t.Fatal("label 4 of a 3-class embedding (null = 3) was accepted")
	}
}

func TestResBlockGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(5, 1))
	reg := NewRegistry[float64](d)
	rows, dim, cdim := 3, 4, 5
	b := NewResBlock(reg, "block", dim, cdim, 7, rng)
	h, c, dy := randBuf(d, rng, rows*dim, 1), randBuf(d, rng, rows*cdim, 1), randBuf(d, rng, rows*dim, 1)
	fwd := func() []float64 { return copyOut(b.Forward(h, c, rows)) }
	fwd()
	reg.ZeroGrad()
	dh, dc := b.Backward(dy)
	gradCheck(t, "ResBlock", fwd, data(dy), append(paramTargets(reg),
		target{"h", data(h), copyOut(dh)}, target{"c", data(c), copyOut(dc)}))
}

func TestMLPGrad(t *testing.T) {
	d := cpu.New[float64](2)
	for _, arch := range []string{"mlp", "resmlp"} {
		rng := rand.New(rand.NewPCG(6, 1))
		m, err := NewMLP(d, MLPConfig{Arch: arch, Dim: 3, Width: 8, Depth: 2, Freq: 4, Classes: 2}, rng)
		if err != nil {
			t.Fatal(err)
		}
		rows := 4
		x, dy := randBuf(d, rng, rows*3, 1), randBuf(d, rng, rows*3, 1)
		ns, nt := d.Alloc(rows), d.Alloc(rows)
		d.Write(ns, []float64{1, 50, 300, 0})
		d.Write(nt, []float64{5, 600, 900, 994})
		labels := []int32{0, 2, 1, 2}
		fwd := func() []float64 {
			y, err := m.Forward(x, ns, nt, labels, rows)
			if err != nil {
				t.Fatal(err)
			}
			return copyOut(y)
		}
		fwd()
		m.Reg.ZeroGrad()
		m.Backward(dy)
		gradCheck(t, arch, fwd, data(dy), paramTargets(m.Reg))
	}
	if _, err := NewMLP(d, MLPConfig{Arch: "cnn", Dim: 2, Width: 4, Freq: 4}, nil); err == nil {
		t.Fatal("unknown arch accepted")
	}
}

func TestAdamWClipAndEMA(t *testing.T) {
	d := cpu.New[float64](1)
	reg := NewRegistry[float64](d)
	p := reg.Add("p", []int{2}, 0, nil)
	d.Write(p.W, []float64{1, 1})
	d.Write(p.G, []float64{30, 40}) // norm 50
	opt := NewAdamW(reg, kernels.AdamW{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 5)
	ema := NewEMA(reg, 0.5)
	if n := opt.Update(); n != 50 {
		t.Fatalf("grad norm %v, want 50", n)
	}
	// After clipping g = (3, 4); Adam's first step moves each weight by lr*sign(g).
	w := data(p.W)
	if math.Abs(w[0]-0.9) > 1e-6 || math.Abs(w[1]-0.9) > 1e-6 {
		t.Fatalf("weights after one step %v, want [0.9 0.9]", w)
	}
	if m := data(opt.M[0]); math.Abs(m[0]-0.3) > 1e-12 || math.Abs(m[1]-0.4) > 1e-12 {
		t.Fatalf("first moment %v, want clipped gradient times 0.1", m)
	}
	ema.Update()
	if a := data(ema.Avg[0]); math.Abs(a[0]-0.95) > 1e-8 {
		t.Fatalf("ema %v, want 0.95", a)
	}
	ema.Swap()
	if math.Abs(data(p.W)[0]-0.95) > 1e-8 {
		t.Fatal("Swap did not install the average")
	}
}

// A flattened registry gives the same AdamW and EMA updates, bit for bit, as one with a
// buffer per parameter, and the same gradient norm up to the order of the float64 sum;
// UpdateEMA (the fused AdamWEMA op) gives the same bits as Update then EMA.Update, flat
// and per parameter; the parameters are views of the flat buffers, and Swap exchanges
// them with the EMA's.
func TestFlattenMatchesPerParameter(t *testing.T) {
	d := cpu.New[float32](2)
	build := func() *Registry[float32] {
		r := NewRegistry[float32](d)
		rng := rand.New(rand.NewPCG(9, 9))
		r.Add("a", []int{3, 5}, 0.5, rng)
		r.Add("b", []int{7}, 0.5, rng)
		r.Add("c", []int{2, 2, 2}, 0.5, rng)
		return r
	}
	per, flat, perF, flatF, late := build(), build(), build(), build(), build()
	flat.Flatten()
	flatF.Flatten()
	el := NewEMA(late, 0.9) // an EMA made before Flatten: per-parameter averages
	late.Flatten()
	w, g, ok := flat.Flat()
	// a, b, c at 0, 64, 128: each parameter at a multiple of flatAlign (64 elements)
	if !ok || w.Len() != 128+8 || g.Len() != 128+8 {
		t.Fatalf("Flat: ok %v, lengths %d %d, want %d", ok, w.Len(), g.Len(), 128+8)
	}
	for i, p := range per.Params {
		if !slices.Equal(cpu.Data[float32](p.W), cpu.Data[float32](flat.Params[i].W)) {
			t.Fatalf("%s: Flatten changed the weights", p.Name)
		}
	}
	opt := kernels.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	ap, af := NewAdamW(per, opt, 0), NewAdamW(flat, opt, 0)
	ep, ef := NewEMA(per, 0.9), NewEMA(flat, 0.9)
	apF, afF := NewAdamW(perF, opt, 0), NewAdamW(flatF, opt, 0)
	epF, efF := NewEMA(perF, 0.9), NewEMA(flatF, 0.9)
	al := NewAdamW(late, opt, 0)
	rng := rand.New(rand.NewPCG(1, 1))
	for step := range 3 {
		for i, p := range per.Params {
			h := make([]float32, p.Size())
			for j := range h {
				h[j] = float32(rng.NormFloat64())
			}
			for _, r := range []*Registry[float32]{per, flat, perF, flatF, late} {
				d.Write(r.Params[i].G, h)
			}
		}
		np, nf := ap.Update(), af.Update()
		if math.Abs(np-nf) > 1e-12*np {
			t.Fatalf("step %d: gradient norm %v per parameter, %v flat", step, np, nf)
		}
		ep.Update()
		ef.Update()
		if npF, nfF := apF.UpdateEMA(epF), afF.UpdateEMA(efF); npF != np || nfF != nf {
			t.Fatalf("step %d: UpdateEMA gradient norms %v %v, Update %v %v", step, npF, nfF, np, nf)
		}
		if nl := al.UpdateEMA(el); nl != nf {
			t.Fatalf("step %d: UpdateEMA gradient norm %v with an EMA made before Flatten, %v flat", step, nl, nf)
		}
	}
	for i, p := range per.Params {
		for _, o := range []struct {
			name  string
			a     *AdamW[float32]
			e     *EMA[float32]
			param *Param
		}{{"flat", af, ef, flat.Params[i]}, {"fused per-parameter", apF, epF, perF.Params[i]}, {"fused flat", afF, efF, flatF.Params[i]}, {"fused, EMA made before Flatten", al, el, late.Params[i]}} {
			for _, c := range [][2]kernels.Buffer{{p.W, o.param.W}, {ap.M[i], o.a.M[i]}, {ap.V[i], o.a.V[i]}, {ep.Avg[i], o.e.Avg[i]}} {
				if !slices.Equal(cpu.Data[float32](c[0]), cpu.Data[float32](c[1])) {
					t.Fatalf("%s: %s and per-parameter updates differ", p.Name, o.name)
				}
			}
		}
	}
	// each parameter sits at its aligned offset, and the gaps between them stayed zero
	// through the weight-decayed AdamW and the EMA
	for _, buf := range []kernels.Buffer{w, af.flatM, af.flatV, ef.flat} {
		all := cpu.Data[float32](buf)
		for i, off := range []int{0, 64, 128} {
			var param kernels.Buffer
			switch buf {
			case w:
				param = flat.Params[i].W
			case af.flatM:
				param = af.M[i]
			case af.flatV:
				param = af.V[i]
			default:
				param = ef.Avg[i]
			}
			want := cpu.Data[float32](param)
			if !slices.Equal(all[off:off+len(want)], want) {
				t.Fatalf("parameter %d is not at offset %d of the flat buffer", i, off)
			}
			for j := off + len(want); j < min(off+64, len(all)); j++ {
				if all[j] != 0 {
					t.Fatalf("gap element %d of a flat buffer is %v, want 0", j, all[j])
				}
			}
		}
	}
	// the parameters are views: a write through the flat buffer is seen by the parameter
	d.Fill(w, 2)
	if cpu.Data[float32](flat.Params[2].W)[0] != 2 {
		t.Fatal("parameter c is not a view of the flat weights")
	}
	flat.ZeroGrad()
	if flat.GradNorm() != 0 {
		t.Fatal("ZeroGrad left a gradient")
	}
	ef.Swap()
	if cpu.Data[float32](flat.Params[0].W)[0] == 2 {
		t.Fatal("Swap did not bring in the average")
	}
	if w2, _, _ := flat.Flat(); cpu.Data[float32](w2)[0] == 2 {
		t.Fatal("Swap did not exchange the flat buffers")
	}
	ef.Swap()
	if cpu.Data[float32](flat.Params[0].W)[0] != 2 {
		t.Fatal("a second Swap did not restore the weights")
	}
}
