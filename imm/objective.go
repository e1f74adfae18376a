package imm

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// Network is the backbone G(c_in x_t, c_noise(s), c_noise(t), label). Forward returns a
// [rows, D] buffer owned by the network (valid until the next Forward); Backward
// accumulates parameter gradients for the output gradient of the last Forward.
type Network interface {
	Forward(x, ns, nt kernels.Buffer, labels []int32, rows int) (kernels.Buffer, error)
	Backward(dy kernels.Buffer)
}

// Draws are the random times of one IMM step: one (s, r, t) per group of M particles.
type Draws struct {
	S, R, T []float64 // per group
}

// DrawTimes draws t ~ U(eps, T), s ~ U(eps, t) and sets r = r(s,t) for each group.
func (c Config) DrawTimes(rng *rand.Rand, groups int) Draws {
	d := Draws{S: make([]float64, groups), R: make([]float64, groups), T: make([]float64, groups)}
	for g := range groups {
		t := c.Eps + (c.T-c.Eps)*rng.Float64()
		s := c.Eps + (t-c.Eps)*rng.Float64()
		d.S[g], d.T[g], d.R[g] = s, t, c.R(s, t)
	}
	return d
}

// Objective computes the IMM and flow-matching losses and runs the samplers for one
// network on one device. Dim is the particle dimension D. It keeps scratch buffers, so
// one Objective serves one goroutine.
type Objective[T kernels.Float] struct {
	Cfg Config
	Dev kernels.Device[T]
	Net Network
	Dim int

	coef                    [6]kernels.Buffer // per-row coefficient uploads
	host                    [6][]T
	xt, xr, yt, yr, xin, dg kernels.Buffer
	g2, mmd, grad, kw, gw   kernels.Buffer
}

// NewObjective checks cfg and returns the objective.
func NewObjective[T kernels.Float](cfg Config, d kernels.Device[T], net Network, dim int) (*Objective[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dim < 1 {
		return nil, fmt.Errorf("imm: particle dimension must be positive, got %d", dim)
	}
	return &Objective[T]{Cfg: cfg, Dev: d, Net: net, Dim: dim}, nil
}

func (o *Objective[T]) grow(b *kernels.Buffer, n int) kernels.Buffer {
	if *b == nil || (*b).Len() < n {
		*b = o.Dev.Alloc(n)
	}
	return o.Dev.Slice(*b, 0, n)
}

// upload writes per-row values f(i) for i < rows into coefficient slot k.
func (o *Objective[T]) upload(k, rows int, f func(i int) float64) kernels.Buffer {
	if cap(o.host[k]) < rows {
		o.host[k] = make([]T, rows)
	}
	h := o.host[k][:rows]
	for i := range h {
		h[i] = T(f(i))
	}
	b := o.grow(&o.coef[k], rows)
	o.Dev.Write(b, h)
	return b
}

// G evaluates the network at x_t for per-row times (s(i), t(i)), with classifier-free
// guidance G = w G(label) + (1-w) G(null) when guide != 1 and labels are given (null is
// the null-class id). The result is owned by the objective or the network.
func (o *Objective[T]) G(xt kernels.Buffer, s, t func(i int) float64, labels []int32, null int32, guide float64, rows int) (kernels.Buffer, error) {
	cin := o.upload(0, rows, func(i int) float64 { return o.Cfg.CIn(t(i)) })
	xin := o.grow(&o.xin, rows*o.Dim)
	o.Dev.RowComb(xin, cin, xt, nil, nil, rows, o.Dim)
	ns := o.upload(1, rows, func(i int) float64 { n, _ := o.Cfg.NoiseInputs(s(i), t(i)); return n })
	nt := o.upload(2, rows, func(i int) float64 { _, n := o.Cfg.NoiseInputs(s(i), t(i)); return n })
	g, err := o.Net.Forward(xin, ns, nt, labels, rows)
	if err != nil || guide == 1 || labels == nil {
		return g, err
	}
	g2 := o.grow(&o.g2, rows*o.Dim)
	o.Dev.Copy(g2, g)
	nulls := make([]int32, rows)
	for i := range nulls {
		nulls[i] = null
	}
	gu, err := o.Net.Forward(xin, ns, nt, nulls, rows)
	if err != nil {
		return nil, err
	}
	o.Dev.Axpby(T(1-guide), gu, T(guide), g2)
	return g2, nil
}

// F writes f_{s,t}(x_t) = c_skip x_t + c_out G to out (which may alias xt).
func (o *Objective[T]) F(out, xt kernels.Buffer, s, t func(i int) float64, labels []int32, null int32, guide float64, rows int) error {
	g, err := o.G(xt, s, t, labels, null, guide, rows)
	if err != nil {
		return err
	}
	skip := o.upload(3, rows, func(i int) float64 { k, _ := o.Cfg.Skip(s(i), t(i)); return k })
	cout := o.upload(4, rows, func(i int) float64 { _, c := o.Cfg.Skip(s(i), t(i)); return c })
	o.Dev.RowComb(out, skip, xt, cout, g, rows, o.Dim)
	return nil
}

func (o *Objective[T]) check(x, e kernels.Buffer, dr Draws, labels []int32) (rows int, err error) {
	groups := len(dr.T)
	if groups == 0 || len(dr.S) != groups || len(dr.R) != groups {
		return 0, errors.New("imm: draws need one s, r, t per group")
	}
	rows = groups * o.Cfg.M
	if x.Len() < rows*o.Dim || e.Len() < rows*o.Dim {
		return 0, fmt.Errorf("imm: %d groups of %d particles of dim %d need %d values, x has %d, noise %d",
			groups, o.Cfg.M, o.Dim, rows*o.Dim, x.Len(), e.Len())
	}
	if labels != nil && len(labels) != rows {
		return 0, fmt.Errorf("imm: %d labels for %d particles", len(labels), rows)
	}
	return rows, nil
}

// interpolate sets xt = a_t x + s_t e for the group times t.
func (o *Objective[T]) interpolate(x, e kernels.Buffer, dr Draws, rows int) kernels.Buffer {
	m := o.Cfg.M
	at := o.upload(0, rows, func(i int) float64 { return o.Cfg.Alpha(dr.T[i/m]) })
	st := o.upload(1, rows, func(i int) float64 { return o.Cfg.Sigma(dr.T[i/m]) })
	xt := o.grow(&o.xt, rows*o.Dim)
	o.Dev.RowComb(xt, at, x, st, e, rows, o.Dim)
	return xt
}

// Target computes the stop-gradient branch y_r = f_{s,r}(x_r) with x_r = DDIM(x_t, x, r, t),
// x_t = a_t x + s_t e (e ~ N(0, sigma_d^2)), row g*M+j being particle j of group g. The
// result stays in the objective until the next Target.
func (o *Objective[T]) Target(x, e kernels.Buffer, dr Draws, labels []int32, null int32) (kernels.Buffer, error) {
	rows, err := o.check(x, e, dr, labels)
	if err != nil {
		return nil, err
	}
	m := o.Cfg.M
	xt := o.interpolate(x, e, dr, rows)
	p := o.upload(0, rows, func(i int) float64 { p, _ := o.Cfg.DDIM(dr.R[i/m], dr.T[i/m]); return p })
	q := o.upload(1, rows, func(i int) float64 { _, q := o.Cfg.DDIM(dr.R[i/m], dr.T[i/m]); return q })
	xr := o.grow(&o.xr, rows*o.Dim)
	o.Dev.RowComb(xr, p, x, q, xt, rows, o.Dim)
	yr := o.grow(&o.yr, rows*o.Dim)
	err = o.F(yr, xr, func(i int) float64 { return dr.S[i/m] }, func(i int) float64 { return dr.R[i/m] }, labels, null, 1, rows)
	return yr, err
}

// Loss computes the IMM loss mean_g w(s_g,t_g) MMD_g(y_t, y_r) for the target yr from
// Target with the same x, e, draws and labels. With backward it accumulates the gradient
// of the loss into the network's parameter gradients (y_r held fixed).
func (o *Objective[T]) Loss(x, e kernels.Buffer, dr Draws, labels []int32, yr kernels.Buffer, backward bool) (float64, error) {
	rows, err := o.check(x, e, dr, labels)
	if err != nil {
		return 0, err
	}
	m, groups := o.Cfg.M, len(dr.T)
	xt := o.interpolate(x, e, dr, rows)
	yt := o.grow(&o.yt, rows*o.Dim)
	sf, tf := func(i int) float64 { return dr.S[i/m] }, func(i int) float64 { return dr.T[i/m] }
	g, err := o.G(xt, sf, tf, labels, 0, 1, rows)
	if err != nil {
		return 0, err
	}
	skip := o.upload(3, rows, func(i int) float64 { k, _ := o.Cfg.Skip(sf(i), tf(i)); return k })
	cout := o.upload(4, rows, func(i int) float64 { _, c := o.Cfg.Skip(sf(i), tf(i)); return c })
	o.Dev.RowComb(yt, skip, xt, cout, g, rows, o.Dim)

	kw := o.upload(5, groups, func(i int) float64 { return o.Cfg.KernelWeight(dr.S[i], dr.T[i]) })
	w := make([]float64, groups)
	for i := range w {
		w[i] = o.Cfg.Weight(dr.S[i], dr.T[i])
	}
	gw := o.grow(&o.gw, groups)
	hw := make([]T, groups)
	for i := range hw {
		hw[i] = T(w[i] / float64(groups))
	}
	o.Dev.Write(gw, hw)
	mmd := o.grow(&o.mmd, groups)
	var grad kernels.Buffer
	if backward {
		grad = o.grow(&o.grad, rows*o.Dim)
	}
	o.Dev.LaplaceMMD(mmd, grad, yt, yr, kw, gw, groups, m, o.Dim, nil)
	hm := make([]T, groups)
	o.Dev.Read(hm, mmd)
	var loss float64
	for i := range hm {
		loss += w[i] * float64(hm[i]) / float64(groups)
	}
	if backward {
		dg := o.grow(&o.dg, rows*o.Dim)
		o.Dev.RowComb(dg, cout, grad, nil, nil, rows, o.Dim)
		o.Net.Backward(dg)
	}
	return loss, nil
}

// FMLoss is the flow-matching baseline on the OT-FM path: x_t = (1-t) x + t e,
// loss = mean over rows and dims of (G(c_in x_t, t, t) - (e - x)/sigma_d)^2, so that
// sigma_d G is the velocity and the Euler-FM step x_s = x_t - (t-s) sigma_d G is the Euler
// step of the flow ODE. t holds one time per row.
func (o *Objective[T]) FMLoss(x, e kernels.Buffer, t []float64, labels []int32, backward bool) (float64, error) {
	rows := len(t)
	if rows == 0 || x.Len() < rows*o.Dim || e.Len() < rows*o.Dim {
		return 0, fmt.Errorf("imm: flow matching on %d rows of dim %d, x has %d values", rows, o.Dim, x.Len())
	}
	if o.Cfg.Schedule != "ot-fm" {
		return 0, errors.New("imm: the flow-matching baseline uses the ot-fm schedule")
	}
	at := o.upload(0, rows, func(i int) float64 { return 1 - t[i] })
	st := o.upload(1, rows, func(i int) float64 { return t[i] })
	xt := o.grow(&o.xt, rows*o.Dim)
	o.Dev.RowComb(xt, at, x, st, e, rows, o.Dim)
	tf := func(i int) float64 { return t[i] }
	g, err := o.G(xt, tf, tf, labels, 0, 1, rows)
	if err != nil {
		return 0, err
	}
	// diff = G - e/sigma_d + x/sigma_d
	inv := o.upload(3, rows, func(int) float64 { return 1 / o.Cfg.SigmaD })
	neg := o.upload(4, rows, func(int) float64 { return -1 / o.Cfg.SigmaD })
	diff := o.grow(&o.dg, rows*o.Dim)
	o.Dev.RowComb(diff, inv, x, neg, e, rows, o.Dim)
	o.Dev.Axpby(1, g, 1, diff)
	n := float64(rows * o.Dim)
	loss := o.Dev.SumSquares(diff) / n
	if backward {
		o.Dev.Axpby(0, diff, T(2/n), diff)
		o.Net.Backward(diff)
	}
	return loss, nil
}

// Sampler says how to generate.
type Sampler struct {
	Kind   string    // "pushforward" (default), "restart" or "euler" (flow-matching baseline)
	Grid   []float64 // increasing times t_0 < ... < t_N; empty means Config.Grid(Steps)
	Steps  int       // N for the uniform grid
	Guide  float64   // classifier-free guidance weight w (1 = none)
	Null   int32     // null-class id for guidance
	Key    uint64    // Philox key for restart noise
	Labels []int32   // per-sample labels or nil
}

// Sample turns x (rows x D, x_T ~ N(0, sigma_d^2 I) drawn by the caller) into samples in
// place.
//
//	pushforward: for i = N..1: x <- f_{t_{i-1}, t_i}(x)
//	restart:     for i = N..1: x0 = f_{t_0, t_i}(x); x <- a_{t_{i-1}} x0 + s_{t_{i-1}} e_i
//	             (fresh noise e_i, except the last step, which keeps x0)
//	euler:       for i = N..1: x <- x - (t_i - t_{i-1}) sigma_d G(c_in x, t_i, t_i)
func (o *Objective[T]) Sample(x kernels.Buffer, rows int, sp Sampler) error {
	grid := sp.Grid
	if len(grid) == 0 {
		if sp.Steps < 1 {
			return fmt.Errorf("imm: need at least one sampling step, got %d", sp.Steps)
		}
		grid = o.Cfg.Grid(sp.Steps)
	}
	for i := 1; i < len(grid); i++ {
		if !(grid[i] > grid[i-1]) || grid[i-1] < 0 || grid[i] >= 1 {
			return fmt.Errorf("imm: sampling grid must increase within [0,1), got %v", grid)
		}
	}
	if len(grid) < 2 {
		return errors.New("imm: sampling grid needs at least two times")
	}
	if sp.Labels != nil && len(sp.Labels) != rows {
		return fmt.Errorf("imm: %d labels for %d samples", len(sp.Labels), rows)
	}
	guide := sp.Guide
	if guide == 0 {
		guide = 1
	}
	var noise kernels.Buffer
	for i := len(grid) - 1; i >= 1; i-- {
		s, t := grid[i-1], grid[i]
		cs, ct := func(int) float64 { return s }, func(int) float64 { return t }
		switch sp.Kind {
		case "", "pushforward":
			if err := o.F(x, x, cs, ct, sp.Labels, sp.Null, guide, rows); err != nil {
				return err
			}
		case "restart":
			s0 := func(int) float64 { return grid[0] }
			if err := o.F(x, x, s0, ct, sp.Labels, sp.Null, guide, rows); err != nil {
				return err
			}
			if i > 1 {
				if noise == nil {
					noise = o.Dev.Alloc(rows * o.Dim)
				}
				o.Dev.RandNormal(noise, sp.Key, uint64(i)<<40, T(o.Cfg.SigmaD))
				a := o.upload(5, rows, func(int) float64 { return o.Cfg.Alpha(s) })
				b := o.upload(3, rows, func(int) float64 { return o.Cfg.Sigma(s) })
				o.Dev.RowComb(x, a, x, b, noise, rows, o.Dim)
			}
		case "euler":
			g, err := o.G(x, ct, ct, sp.Labels, sp.Null, guide, rows)
			if err != nil {
				return err
			}
			o.Dev.Axpby(T(-(t-s)*o.Cfg.SigmaD), g, 1, x)
		default:
			return fmt.Errorf("imm: unknown sampler %q (want pushforward, restart or euler)", sp.Kind)
		}
	}
	return nil
}

// DropLabels replaces each label by null with probability p, drawing from rng.
func DropLabels(labels []int32, null int32, p float64, rng *rand.Rand) []int32 {
	return DropGroupLabels(labels, 1, null, p, rng)
}

// DropGroupLabels is DropLabels with one draw per run of g consecutive labels: a group
// keeps or loses its labels together.
func DropGroupLabels(labels []int32, g int, null int32, p float64, rng *rand.Rand) []int32 {
	out := make([]int32, len(labels))
	drop := false
	for i, l := range labels {
		if i%g == 0 {
			drop = rng.Float64() < p
		}
		if drop {
			l = null
		}
		out[i] = l
	}
	return out
}
