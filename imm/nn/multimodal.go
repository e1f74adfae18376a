package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// Segment is one modality of a multimodal particle: Tokens vectors of Features values
// (image latent patches: C*P*P; a group of mel frames: frames*mels; a text token: the
// width of the frozen embedding table).
type Segment struct {
	Name     string `json:"name"`
	Tokens   int    `json:"tokens"`
	Features int    `json:"features"`
}

// MultimodalConfig describes the transformer over multimodal particles.
type MultimodalConfig struct {
	Segments []Segment `json:"segments"`
	Width    int       `json:"width"`
	Depth    int       `json:"depth"`
	Heads    int       `json:"heads"`
	MLPRatio int       `json:"mlp_ratio"` // 0 means 4
	Freq     int       `json:"freq"`      // 0 means 256
	Classes  int       `json:"classes"`
	// RandomInit skips the adaLN-Zero initialisation (for gradient checks).
	RandomInit bool `json:"random_init,omitempty"`
}

// Dim is the particle dimension, sum over segments of Tokens*Features.
func (c MultimodalConfig) Dim() int {
	n := 0
	for _, s := range c.Segments {
		n += s.Tokens * s.Features
	}
	return n
}

// Offset is the position of segment k in a particle.
func (c MultimodalConfig) Offset(k int) int {
	n := 0
	for _, s := range c.Segments[:k] {
		n += s.Tokens * s.Features
	}
	return n
}

// Validate reports a clear error for an unusable configuration.
func (c MultimodalConfig) Validate() error {
	if len(c.Segments) == 0 {
		return fmt.Errorf("nn: a multimodal model needs at least one segment")
	}
	for i, s := range c.Segments {
		if s.Tokens < 1 || s.Features < 1 {
			return fmt.Errorf("nn: segment %d (%s) has %d tokens of %d features, both must be positive", i, s.Name, s.Tokens, s.Features)
		}
	}
	switch {
	case c.Width < 1 || c.Depth < 0 || c.Heads < 1 || c.Width%c.Heads != 0:
		return fmt.Errorf("nn: multimodal width %d must be a positive multiple of heads %d, depth %d >= 0", c.Width, c.Heads, c.Depth)
	case c.MLPRatio < 0 || c.Freq < 0 || c.Freq%2 != 0 || c.Classes < 0:
		return fmt.Errorf("nn: multimodal mlp ratio %d, freq %d (even), classes %d must be >= 0", c.MLPRatio, c.Freq, c.Classes)
	}
	return nil
}

// Multimodal is G for multimodal particles. A particle x [Dim] is the concatenation of its
// segments, segment k at Offset(k) as Tokens_k x Features_k row-major. Every token is
// projected to Width by its modality's Linear (no bias), gets the modality embedding
// mod[k] and the position embedding pos[l] (l over the whole sequence, L = sum Tokens_k),
// and the sequence goes through the adaLN-Zero DiT blocks conditioned on the two times
// and the label, then a final adaLN and a per-modality Linear back to Features_k.
type Multimodal[T kernels.Float] struct {
	Cfg    MultimodalConfig
	Reg    *Registry[T]
	d      kernels.Device[T]
	inW    []*Param // [Width, Features_k]
	outW   []*Param // [Features_k, Width]
	outB   []*Param // [Features_k]
	modEmb *Param   // [segments, Width]
	pos    *Param   // [L, Width]
	trunk  *trunk[T]
	rows   int
	x, hf  kernels.Buffer
	start  []int // first sequence position of each segment
	h, y   scratch[T]
	dx     scratch[T]
	dhf    scratch[T]
	psum   scratch[T]
	ones   scratch[T]
	part   scratch[T] // per-token weight-gradient partials, summed by SumRows
	rowAdd scratch[T] // a row vector added to every sequence (Forward)
}

// NewMultimodal builds the network with weights drawn from rng.
func NewMultimodal[T kernels.Float](d kernels.Device[T], cfg MultimodalConfig, rng *rand.Rand) (*Multimodal[T], error) {
	if cfg.MLPRatio == 0 {
		cfg.MLPRatio = 4
	}
	if cfg.Freq == 0 {
		cfg.Freq = 256
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := NewRegistry(d)
	m := &Multimodal[T]{Cfg: cfg, Reg: r, d: d}
	W, L := cfg.Width, 0
	for k, s := range cfg.Segments {
		m.start = append(m.start, L)
		L += s.Tokens
		m.inW = append(m.inW, r.Add(fmt.Sprintf("seg.%d.in.weight", k), []int{W, s.Features}, 1/math.Sqrt(float64(s.Features)), rng))
	}
	m.modEmb = r.Add("modality", []int{len(cfg.Segments), W}, 0.02*math.Sqrt(3), rng)
	m.pos = r.Add("pos", []int{L, W}, 0.02*math.Sqrt(3), rng)
	m.trunk = newTrunk(r, W, cfg.Depth, cfg.Heads, cfg.MLPRatio*W, cfg.Freq, cfg.Classes, rng)
	s := 1 / math.Sqrt(float64(W))
	for k, sg := range cfg.Segments {
		m.outW = append(m.outW, r.Add(fmt.Sprintf("seg.%d.out.weight", k), []int{sg.Features, W}, s, rng))
		m.outB = append(m.outB, r.Add(fmt.Sprintf("seg.%d.out.bias", k), []int{sg.Features}, s, rng))
	}
	if !cfg.RandomInit {
		m.trunk.zeroModulation()
		for _, p := range append(append([]*Param(nil), m.outW...), m.outB...) {
			d.Fill(p.W, 0)
		}
	}
	return m, nil
}

// Tokens is the sequence length L.
func (m *Multimodal[T]) Tokens() int { return m.pos.Shape[0] }

// Null is the id of the null class.
func (m *Multimodal[T]) Null() int32 { return int32(m.Cfg.Classes) }

// Forward computes G [rows, Dim] from particles x [rows, Dim] (scaled by c_in), the noise
// levels ns, nt and labels (nil, or length rows in [0, Classes]).
func (m *Multimodal[T]) Forward(x, ns, nt kernels.Buffer, labels []int32, rows int) (kernels.Buffer, error) {
	D := m.Cfg.Dim()
	if labels != nil && (m.trunk.label == nil || len(labels) != rows) {
		return nil, fmt.Errorf("nn: %d labels for %d rows of a multimodal model with %d classes", len(labels), rows, m.Cfg.Classes)
	}
	if rows < 1 || x.Len() < rows*D {
		return nil, fmt.Errorf("nn: multimodal input of %d values for %d rows of dim %d", x.Len(), rows, D)
	}
	m.rows, m.x = rows, x
	d, W, L := m.d, m.Cfg.Width, m.Tokens()
	h := m.h.get(d, rows*L*W)
	ones := onesOf(d, &m.ones, L)
	// what every sequence adds to its rows: the position embedding plus each segment's
	// modality embedding on its tokens (ones x modEmb_k); one row vector of L*W
	add := m.rowAdd.get(d, max(L*W, D))
	d.Copy(d.Slice(add, 0, L*W), m.pos.W)
	for k, s := range m.Cfg.Segments {
		d.Gemm(false, false, s.Tokens, W, 1, 1, ones, 1, kernels.Tail(d, m.modEmb.W, k*W), W, 1, kernels.Tail(d, add, m.start[k]*W), W)
		// tokens of segment k of every particle, projected into their sequence rows
		d.GemmBatched(false, true, s.Tokens, W, s.Features, 1, kernels.Tail(d, x, m.Cfg.Offset(k)), s.Features, D,
			m.inW[k].W, s.Features, 0, 0, kernels.Tail(d, h, m.start[k]*W), W, L*W, rows)
	}
	d.AddRowVector(h, add, rows, L*W)
	hf, err := m.trunk.forward(h, ns, nt, labels, rows, L)
	if err != nil {
		return nil, err
	}
	m.hf = hf
	y := m.y.get(d, rows*D)
	for k, s := range m.Cfg.Segments {
		yk := kernels.Tail(d, y, m.Cfg.Offset(k))
		d.GemmBatched(false, true, s.Tokens, s.Features, W, 1, kernels.Tail(d, m.hf, m.start[k]*W), W, L*W,
			m.outW[k].W, W, 0, 0, yk, s.Features, D, rows)
		// the output bias of every token of the segment (ones x b_k), added below
		d.Gemm(false, false, s.Tokens, s.Features, 1, 1, ones, 1, m.outB[k].W, s.Features, 0, kernels.Tail(d, add, m.Cfg.Offset(k)), s.Features)
	}
	d.AddRowVector(y, add, rows, D)
	return y, nil
}

// Backward accumulates parameter gradients for the output gradient dy [rows, Dim].
func (m *Multimodal[T]) Backward(dy kernels.Buffer) { m.BackwardInput(dy) }

// BackwardInput is Backward that also returns the gradient with respect to x [rows, Dim].
func (m *Multimodal[T]) BackwardInput(dy kernels.Buffer) kernels.Buffer {
	d, W, L, rows, D := m.d, m.Cfg.Width, m.Tokens(), m.rows, m.Cfg.Dim()
	dhf := m.dhf.get(d, rows*L*W)
	// The segment weights' gradients sum over particles b and tokens t, dW += sum_bt
	// u_bt^T v_bt: token t's rows of all particles are at a fixed stride (D in the
	// particles, L*W in the sequences), so each token is one product over the particles
	// (one batched call over the tokens), and the tokens' partials are summed.
	tokenGrads := func(g kernels.Buffer, u kernels.Buffer, uoff, ldu, nu int, v kernels.Buffer, voff, ldv, nv, tokens int) {
		part := m.part.get(d, tokens*nu*nv)
		d.GemmBatched(true, false, nu, nv, rows, 1, kernels.Tail(d, u, uoff), ldu, nu, kernels.Tail(d, v, voff), ldv, nv, 0, part, nv, nu*nv, tokens)
		d.SumRows(g, part, tokens, nu*nv, 1)
	}
	// the output biases' gradients: dy summed over the particles, then over each
	// segment's tokens
	psum := m.psum.get(d, max(L*W, D))
	d.SumRows(psum, dy, rows, D, 0)
	for k, s := range m.Cfg.Segments {
		off := m.Cfg.Offset(k)
		d.SumRows(m.outB[k].G, kernels.Tail(d, psum, off), s.Tokens, s.Features, 1)
		tokenGrads(m.outW[k].G, dy, off, D, s.Features, m.hf, m.start[k]*W, L*W, W, s.Tokens)
		d.GemmBatched(false, false, s.Tokens, W, s.Features, 1, kernels.Tail(d, dy, off), s.Features, D, m.outW[k].W, W, 0, 0,
			kernels.Tail(d, dhf, m.start[k]*W), W, L*W, rows)
	}
	dh := m.trunk.backward(dhf)
	d.SumRows(psum, dh, rows, L*W, 0)
	d.Axpby(1, d.Slice(psum, 0, L*W), 1, m.pos.G)
	dx := m.dx.get(d, rows*D)
	for k, s := range m.Cfg.Segments {
		off := m.Cfg.Offset(k)
		d.SumRows(kernels.Tail(d, m.modEmb.G, k*W), kernels.Tail(d, psum, m.start[k]*W), s.Tokens, W, 1)
		tokenGrads(m.inW[k].G, dh, m.start[k]*W, L*W, W, m.x, off, D, s.Features, s.Tokens)
		d.GemmBatched(false, false, s.Tokens, s.Features, W, 1, kernels.Tail(d, dh, m.start[k]*W), W, L*W,
			m.inW[k].W, s.Features, 0, 0, kernels.Tail(d, dx, off), s.Features, D, rows)
	}
	return dx
}
