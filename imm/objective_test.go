package imm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

func setup(t *testing.T, cfg Config, classes int) (*cpu.Device[float64], *nn.MLP[float64], *Objective[float64]) {
	t.Helper()
	d := cpu.New[float64](2)
	net, err := nn.NewMLP(d, nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 8, Depth: 1, Freq: 4, Classes: classes}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := NewObjective(cfg, d, net, 2)
	if err != nil {
		t.Fatal(err)
	}
	return d, net, obj
}

func host(d *cpu.Device[float64], s []float64) kernels.Buffer {
	b := d.Alloc(len(s))
	d.Write(b, s)
	return b
}

func randn(rng *rand.Rand, n int, std float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = std * rng.NormFloat64()
	}
	return s
}

// TestLossAgainstReference recomputes the OT-FM Euler-FM loss with plain loops written
// after shared/bench/imm_torch_ref.py (direct interpolant for x_r, clamped stride in the
// kernel weight, the weight formula spelled out) and compares it with Objective.Loss.
func TestLossAgainstReference(t *testing.T) {
	cfg := DefaultConfig()
	d, net, obj := setup(t, cfg, 0)
	rng := rand.New(rand.NewPCG(2, 2))
	groups, m, dim := 5, cfg.M, 2
	rows := groups * m
	x, e := randn(rng, rows*dim, 0.5), randn(rng, rows*dim, 0.5)
	dr := cfg.DrawTimes(rng, groups)
	dr.S[0], dr.T[0] = 0.2, 0.2+1e-6 // kernel-weight clamp
	dr.R[0] = cfg.R(dr.S[0], dr.T[0])
	xb, eb := host(d, x), host(d, e)
	yr, err := obj.Target(xb, eb, dr, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := obj.Loss(xb, eb, dr, nil, yr, false)
	if err != nil {
		t.Fatal(err)
	}

	const sd = 0.5
	f := func(xv []float64, s, tt float64) []float64 { // Euler-FM f_{s,t} on all rows
		cin := 1 / (sd * math.Sqrt((1-tt)*(1-tt)+tt*tt))
		in := make([]float64, len(xv))
		for i := range xv {
			in[i] = cin * xv[i]
		}
		ns, nt := make([]float64, rows), make([]float64, rows)
		for i := range ns {
			ns[i], nt[i] = 1000*s, 1000*tt
		}
		g, err := net.Forward(host(d, in), host(d, ns), host(d, nt), nil, rows)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(xv))
		for i := range xv {
			out[i] = xv[i] - (tt-s)*sd*cpu.Data[float64](g)[i]
		}
		return out
	}
	var want float64
	for g := 0; g < groups; g++ {
		s, tt := dr.S[g], dr.T[g]
		eta := tt / (1 - tt)
		r := math.Max(s, math.Max(eta-160.0/4096, 0)/(1+math.Max(eta-160.0/4096, 0)))
		xt, xr := make([]float64, rows*dim), make([]float64, rows*dim)
		for i := range xt {
			xt[i] = (1-tt)*x[i] + tt*e[i]
			xr[i] = (1-r)*x[i] + r*e[i]
		}
		yt, yrr := f(xt, s, tt), f(xr, s, r)
		wk := 1 / (math.Max(tt-s, 1e-4) * sd)
		k := func(a, b []float64, j, l int) float64 {
			var s2 float64
			for q := 0; q < dim; q++ {
				v := a[(g*m+j)*dim+q] - b[(g*m+l)*dim+q]
				s2 += v * v
			}
			return math.Exp(-wk * math.Max(math.Sqrt(s2), 1e-8) / float64(dim))
		}
		var mmd float64
		for j := 0; j < m; j++ {
			for l := 0; l < m; l++ {
				mmd += (k(yt, yt, j, l) + k(yrr, yrr, j, l) - 2*k(yt, yrr, j, l)) / float64(m*m)
			}
		}
		tc := math.Min(math.Max(tt, 1e-4), 1-1e-4)
		lam := 2 * math.Log((1-tc)/tc)
		w := 0.5 / (1 + math.Exp(-(4 - lam))) * (2 / (tc * (1 - tc))) * (1 - tc) * (1 - tc) / ((1-tc)*(1-tc) + tc*tc)
		want += w * mmd / float64(groups)
	}
	if want <= 0 {
		t.Fatalf("reference loss %v is not positive; the test would be vacuous", want)
	}
	approx(t, "IMM loss", got, want, 1e-6)
}

// TestLossGradient checks the gradient of the full IMM loss (target branch held fixed)
// against central finite differences in float64, for each parameterisation and both
// time conditionings.
func TestLossGradient(t *testing.T) {
	for _, cfg := range configs() {
		for _, second := range []string{"s", "stride"} {
			cfg.SecondTime = second
			d, net, obj := setup(t, cfg, 3)
			rng := rand.New(rand.NewPCG(3, 3))
			groups := 3
			rows := groups * cfg.M
			xb, eb := host(d, randn(rng, rows*2, 0.5)), host(d, randn(rng, rows*2, 0.5))
			dr := cfg.DrawTimes(rng, groups)
			labels := DropLabels([]int32{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, 3, 0.3, rng)
			yr, err := obj.Target(xb, eb, dr, labels, 3)
			if err != nil {
				t.Fatal(err)
			}
			yr = host(d, append([]float64(nil), cpu.Data[float64](yr)...))
			net.Reg.ZeroGrad()
			if _, err := obj.Loss(xb, eb, dr, labels, yr, true); err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				l, err := obj.Loss(xb, eb, dr, labels, yr, false)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			checkParams(t, cfg.Schedule+"/"+cfg.Param+"/"+second, net.Reg, loss)
		}
	}
}

func checkParams(t *testing.T, what string, reg *nn.Registry[float64], loss func() float64) {
	t.Helper()
	const h = 1e-6
	worst := 0.0
	for _, p := range reg.Params {
		w, g := cpu.Data[float64](p.W), cpu.Data[float64](p.G)
		var num, den float64
		for i := range w {
			old := w[i]
			w[i] = old + h
			lp := loss()
			w[i] = old - h
			lm := loss()
			w[i] = old
			fd := (lp - lm) / (2 * h)
			num += (fd - g[i]) * (fd - g[i])
			den += fd * fd
		}
		if den == 0 {
			if num != 0 {
				t.Errorf("%s %s: gradient %v where finite differences are 0", what, p.Name, math.Sqrt(num))
			}
			continue
		}
		rel := math.Sqrt(num / den)
		worst = math.Max(worst, rel)
		if rel >= 1e-4 {
			t.Errorf("%s %s: relative error %.3g", what, p.Name, rel)
		}
	}
	t.Logf("%s: worst relative error %.2g", what, worst)
}

func TestFMLossGradient(t *testing.T) {
	cfg := DefaultConfig()
	d, net, obj := setup(t, cfg, 0)
	rng := rand.New(rand.NewPCG(4, 4))
	rows := 6
	xb, eb := host(d, randn(rng, rows*2, 0.5)), host(d, randn(rng, rows*2, 0.5))
	ts := []float64{0.01, 0.2, 0.4, 0.5, 0.8, 0.99}
	net.Reg.ZeroGrad()
	got, err := obj.FMLoss(xb, eb, ts, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	// Reference: mean (G - (e-x)/sigma_d)^2 from a direct forward.
	x, e := cpu.Data[float64](xb), cpu.Data[float64](eb)
	in, nt := make([]float64, rows*2), make([]float64, rows)
	for i := 0; i < rows; i++ {
		tt := ts[i]
		nt[i] = 1000 * tt
		for j := 0; j < 2; j++ {
			in[i*2+j] = ((1-tt)*x[i*2+j] + tt*e[i*2+j]) / (0.5 * math.Sqrt((1-tt)*(1-tt)+tt*tt))
		}
	}
	g, _ := net.Forward(host(d, in), host(d, nt), host(d, nt), nil, rows)
	var want float64
	for i, gv := range cpu.Data[float64](g) {
		v := gv - (e[i]-x[i])/0.5
		want += v * v / float64(rows*2)
	}
	approx(t, "FM loss", got, want, 1e-12)
	checkParams(t, "fm", net.Reg, func() float64 {
		l, _ := obj.FMLoss(xb, eb, ts, nil, false)
		return l
	})
}

func TestFIdentityAtEqualTimes(t *testing.T) {
	for _, cfg := range configs() {
		d, _, obj := setup(t, cfg, 0)
		rng := rand.New(rand.NewPCG(5, 5))
		x := randn(rng, 10*2, 1)
		out := d.Alloc(20)
		for _, tt := range []float64{0.05, 0.5, cfg.T} {
			c := func(int) float64 { return tt }
			if err := obj.F(out, host(d, x), c, c, nil, 0, 1, 10); err != nil {
				t.Fatal(err)
			}
			for i, v := range cpu.Data[float64](out) {
				if math.Abs(v-x[i]) > 1e-12 {
					t.Fatalf("%s/%s: f_{t,t}(x)[%d] = %v, want %v", cfg.Schedule, cfg.Param, i, v, x[i])
				}
			}
		}
	}
}

func TestGuidanceAndSamplers(t *testing.T) {
	cfg := DefaultConfig()
	d, net, obj := setup(t, cfg, 2)
	rng := rand.New(rand.NewPCG(6, 6))
	rows := 4
	x := randn(rng, rows*2, 0.5)
	labels := []int32{0, 1, 1, 0}
	s, tt := func(int) float64 { return 0.2 }, func(int) float64 { return 0.7 }
	g, err := obj.G(host(d, x), s, tt, labels, 2, 3, rows)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]float64(nil), cpu.Data[float64](g)...)
	// Independent: two plain forwards combined by hand.
	in := make([]float64, len(x))
	for i := range x {
		in[i] = cfg.CIn(0.7) * x[i]
	}
	ns, nt := host(d, []float64{200, 200, 200, 200}), host(d, []float64{700, 700, 700, 700})
	gc, _ := net.Forward(host(d, in), ns, nt, labels, rows)
	cond := append([]float64(nil), cpu.Data[float64](gc)...)
	gn, _ := net.Forward(host(d, in), ns, nt, []int32{2, 2, 2, 2}, rows)
	for i := range got {
		approx(t, "CFG", got[i], 3*cond[i]-2*cpu.Data[float64](gn)[i], 1e-12)
	}

	// One pushforward step is f_{eps,T}; two Euler steps of the baseline are two explicit
	// velocity steps; restart with one step equals pushforward with one step.
	one := host(d, x)
	if err := obj.Sample(one, rows, Sampler{Steps: 1}); err != nil {
		t.Fatal(err)
	}
	want := d.Alloc(len(x))
	if err := obj.F(want, host(d, x), func(int) float64 { return cfg.Eps }, func(int) float64 { return cfg.T }, nil, 0, 1, rows); err != nil {
		t.Fatal(err)
	}
	for i, v := range cpu.Data[float64](one) {
		approx(t, "pushforward 1 step", v, cpu.Data[float64](want)[i], 1e-14)
	}
	rs := host(d, x)
	if err := obj.Sample(rs, rows, Sampler{Kind: "restart", Steps: 1}); err != nil {
		t.Fatal(err)
	}
	for i, v := range cpu.Data[float64](rs) {
		approx(t, "restart 1 step", v, cpu.Data[float64](one)[i], 1e-14)
	}
	eu := host(d, x)
	if err := obj.Sample(eu, rows, Sampler{Kind: "euler", Grid: []float64{0, 0.5, 0.9}}); err != nil {
		t.Fatal(err)
	}
	cur := append([]float64(nil), x...)
	for _, st := range [][2]float64{{0.9, 0.5}, {0.5, 0}} {
		in := make([]float64, len(cur))
		for i := range cur {
			in[i] = cfg.CIn(st[0]) * cur[i]
		}
		n := host(d, []float64{1000 * st[0], 1000 * st[0], 1000 * st[0], 1000 * st[0]})
		g, _ := net.Forward(host(d, in), n, n, nil, rows)
		for i := range cur {
			cur[i] -= (st[0] - st[1]) * 0.5 * cpu.Data[float64](g)[i]
		}
	}
	for i, v := range cpu.Data[float64](eu) {
		approx(t, "euler 2 steps", v, cur[i], 1e-12)
	}
	for _, bad := range []Sampler{{Steps: 0}, {Grid: []float64{0.5, 0.2}}, {Kind: "ddpm", Steps: 2}} {
		if err := obj.Sample(host(d, x), rows, bad); err == nil {
			t.Errorf("sampler %+v accepted", bad)
		}
	}
}
