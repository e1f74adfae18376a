package imm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/kernels/cpu"
)

func configs() []Config {
	var cs []Config
	for _, sched := range []string{"ot-fm", "cosine"} {
		for _, p := range []string{"euler-fm", "simple-edm", "identity"} {
			c := DefaultConfig()
			c.Schedule, c.Param = sched, p
			if sched == "cosine" {
				if p == "euler-fm" {
					continue
				}
				c.T = 0.996
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func approx(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol*(1+math.Abs(want))) {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestDDIMHandValues(t *testing.T) {
	c := DefaultConfig()
	// OT-FM, s = 0.1, t = 0.3: q = 0.1/0.3, p = 0.9 - 0.7/3.
	p, q := c.DDIM(0.1, 0.3)
	approx(t, "ot-fm p", p, 0.9-0.7/3, 1e-15)
	approx(t, "ot-fm q", q, 1.0/3, 1e-15)
	c.Schedule = "cosine"
	// cosine, s = 1/3, t = 2/3: a_s = cos(pi/6) = sqrt(3)/2, s_s = 1/2, a_t = 1/2, s_t = sqrt(3)/2.
	p, q = c.DDIM(1.0/3, 2.0/3)
	approx(t, "cosine q", q, 1/math.Sqrt(3), 1e-14)
	approx(t, "cosine p", p, math.Sqrt(3)/2-0.5/math.Sqrt(3), 1e-14)

	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range configs() {
		for range 100 {
			tt := c.Eps + (c.T-c.Eps)*rng.Float64() + 1e-3
			x, e := rng.NormFloat64(), 0.5*rng.NormFloat64()
			xt := c.Alpha(tt)*x + c.Sigma(tt)*e
			p, q := c.DDIM(tt, tt)
			approx(t, "DDIM(x_t,x,t,t)", p*x+q*xt, xt, 1e-12)
			p, q = c.DDIM(0, tt)
			approx(t, "DDIM(x_t,x,0,t)", p*x+q*xt, x, 1e-12)
			// With the same x and e, DDIM lands on the interpolant at s.
			s := tt * rng.Float64()
			p, q = c.DDIM(s, tt)
			approx(t, "DDIM = interpolant", p*x+q*xt, c.Alpha(s)*x+c.Sigma(s)*e, 1e-12)
		}
	}
}

func TestSkipHandValues(t *testing.T) {
	c := DefaultConfig()
	k, o := c.Skip(0.2, 0.7)
	approx(t, "euler-fm c_skip", k, 1, 0)
	approx(t, "euler-fm c_out", o, -0.5*0.5, 1e-15)
	c.Param = "simple-edm"
	// t = 0.5, s = 0: a_t = s_t = 1/2, c_skip = (1*0.5)/0.5 = 1, c_out = -(0.5)*0.5/sqrt(0.5).
	k, o = c.Skip(0, 0.5)
	approx(t, "simple-edm c_skip", k, 1, 1e-15)
	approx(t, "simple-edm c_out", o, -0.25/math.Sqrt(0.5), 1e-15)
	c.Param = "identity"
	k, o = c.Skip(0.1, 0.3)
	approx(t, "identity c_skip", k, 1.0/3, 1e-15)
	approx(t, "identity c_out", o, 0.9-0.7/3, 1e-15)
	approx(t, "c_in(0.5)", c.CIn(0.5), 1/(0.5*math.Sqrt(0.5)), 1e-15)
	for _, c := range configs() {
		for _, tt := range []float64{0.01, 0.3, 0.5, 0.9, c.T} {
			k, o := c.Skip(tt, tt)
			if k != 1 && math.Abs(k-1) > 1e-15 || math.Abs(o) > 1e-15 {
				t.Errorf("%s/%s f_{t,t}: c_skip %v c_out %v, want 1, 0", c.Schedule, c.Param, k, o)
			}
		}
	}
}

func TestMappingR(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range configs() {
		for range 2000 {
			tt := c.Eps + (c.T-c.Eps)*rng.Float64()
			s := c.Eps + (tt-c.Eps)*rng.Float64()
			r := c.R(s, tt)
			if !(s <= r && r <= tt) {
				t.Fatalf("%s: r(%v,%v) = %v outside [s,t]", c.Schedule, s, tt, r)
			}
		}
		// r -> t as k grows, monotonically.
		s, tt := 0.1, 0.8
		prev := s
		for k := 4; k <= 40; k += 4 {
			c.K = k
			r := c.R(s, tt)
			if r < prev {
				t.Fatalf("%s: r not increasing in k: %v after %v", c.Schedule, r, prev)
			}
			prev = r
		}
		if tt-prev > 1e-9 {
			t.Errorf("%s: r(k=40) = %v, want -> t = %v", c.Schedule, prev, tt)
		}
	}
	// Hand value: OT-FM, t = 0.5 (eta 1), k = 12: eta - 160/4096 = 0.9609375, r = 0.9609375/1.9609375.
	c := DefaultConfig()
	approx(t, "r(0,0.5)", c.R(0, 0.5), 0.9609375/1.9609375, 1e-15)
	// Near t = 0 the step overshoots eta_min and r falls back to s.
	approx(t, "r(0.001,0.01)", c.R(0.001, 0.01), 0.001, 0)
}

func TestWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range configs() {
		for _, a := range []float64{1, 2} {
			c.WeightA = a
			for range 2000 {
				tt := c.Eps + (c.T-c.Eps)*rng.Float64()
				w := c.Weight(0, tt)
				if !(w > 0) || math.IsInf(w, 0) {
					t.Fatalf("%s a=%v: w(t=%v) = %v", c.Schedule, a, tt, w)
				}
			}
			for _, tt := range []float64{0.05, 0.3, 0.7, 0.95} {
				h := 1e-6
				fd := -(c.Lambda(tt+h) - c.Lambda(tt-h)) / (2 * h)
				approx(t, c.Schedule+" -dlambda/dt", c.NegDLambda(tt), fd, 1e-7)
			}
		}
	}
	// OT-FM, a = 2, b = 4, t = 0.5: lambda = 0, w = 0.5 sigmoid(4) * 8 * 0.25 / 0.5.
	c := DefaultConfig()
	approx(t, "w(0.5)", c.Weight(0, 0.5), 0.5/(1+math.Exp(-4))*8*0.25/0.5, 1e-14)
}

func TestMMDNonNegative(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(7, 8))
	groups, m, dim := 200, 4, 3
	yt, yr := d.Alloc(groups*m*dim), d.Alloc(groups*m*dim)
	for i := range cpu.Data[float64](yt) {
		cpu.Data[float64](yt)[i] = rng.NormFloat64()
		cpu.Data[float64](yr)[i] = rng.NormFloat64() + 0.3*float64(i%2)
	}
	kw := d.Alloc(groups)
	for i := range cpu.Data[float64](kw) {
		cpu.Data[float64](kw)[i] = math.Exp(4 * rng.Float64())
	}
	mmd := d.Alloc(groups)
	d.LaplaceMMD(mmd, nil, yt, yr, kw, nil, groups, m, dim, nil)
	pos := 0
	for g, v := range cpu.Data[float64](mmd) {
		if v < -1e-15 {
			t.Fatalf("group %d: MMD %v < 0", g, v)
		}
		if v > 1e-6 {
			pos++
		}
	}
	if pos < groups/2 {
		t.Fatalf("only %d of %d groups of different sets have a positive MMD", pos, groups)
	}
	d.LaplaceMMD(mmd, nil, yt, yt, kw, nil, groups, m, dim, nil)
	for g, v := range cpu.Data[float64](mmd) {
		if math.Abs(v) > 1e-15 {
			t.Fatalf("group %d: MMD of a set with itself %v", g, v)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Schedule = "linear" },
		func(c *Config) { c.Param = "edm" },
		func(c *Config) { c.Schedule = "cosine" }, // euler-fm needs ot-fm
		func(c *Config) { c.SecondTime = "r" },
		func(c *Config) { c.M = 0 },
		func(c *Config) { c.T = 1 },
		func(c *Config) { c.SigmaD = 0 },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: invalid config accepted: %+v", i, c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
