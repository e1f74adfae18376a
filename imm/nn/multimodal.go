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
	part   scratch[T] // per-particle weight-gradient partials, summed by SumRows
	ones   scratch[T]
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
	for k, s := range m.Cfg.Segments {
		// tokens of segment k of every particle, projected into their sequence rows
		hk := kernels.Tail(d, h, m.start[k]*W)
		d.GemmBatched(false, true, s.Tokens, W, s.Features, 1, kernels.Tail(d, x, m.Cfg.Offset(k)), s.Features, D,
			m.inW[k].W, s.Features, 0, 0, hk, W, L*W, rows)
		// + modality embedding, broadcast over the segment's tokens
		d.GemmBatched(false, false, s.Tokens, W, 1, 1, ones, 1, 0, kernels.Tail(d, m.modEmb.W, k*W), W, 0, 1, hk, W, L*W, rows)
	}
	d.AddRowVector(h, m.pos.W, rows, L*W)
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
		d.GemmBatched(false, false, s.Tokens, s.Features, 1, 1, ones, 1, 0, m.outB[k].W, s.Features, 0, 1, yk, s.Features, D, rows)
	}
	return y, nil
}

// Backward accumulates parameter gradients for the output gradient dy [rows, Dim].
func (m *Multimodal[T]) Backward(dy kernels.Buffer) { m.BackwardInput(dy) }

// BackwardInput is Backward that also returns the gradient with respect to x [rows, Dim].
func (m *Multimodal[T]) BackwardInput(dy kernels.Buffer) kernels.Buffer {
	d, W, L, rows, D := m.d, m.Cfg.Width, m.Tokens(), m.rows, m.Cfg.Dim()
	ones := onesOf(d, &m.ones, max(L, rows))
	dhf := m.dhf.get(d, rows*L*W)
	for k, s := range m.Cfg.Segments {
		off := m.Cfg.Offset(k)
		dyk := kernels.Tail(d, dy, off)
		// dW_out += sum_b dy_kb^T hf_kb, db_out += sum_b of the dy_kb rows: one batched
		// product per particle into a partial buffer, then one sum over the particles
		// (a constant number of launches, not one per particle).
		part := m.part.get(d, rows*s.Features*W)
		d.GemmBatched(true, false, s.Features, W, s.Tokens, 1, dyk, s.Features, D,
			kernels.Tail(d, m.hf, m.start[k]*W), W, L*W, 0, part, W, s.Features*W, rows)
		d.SumRows(m.outW[k].G, part, rows, s.Features*W, 1)
		d.GemmBatched(true, false, 1, s.Features, s.Tokens, 1, ones, 1, 0, dyk, s.Features, D, 0, part, s.Features, s.Features, rows)
		d.SumRows(m.outB[k].G, part, rows, s.Features, 1)
		d.GemmBatched(false, false, s.Tokens, W, s.Features, 1, dyk, s.Features, D, m.outW[k].W, W, 0, 0,
			kernels.Tail(d, dhf, m.start[k]*W), W, L*W, rows)
	}
	dh := m.trunk.backward(dhf)
	psum := m.psum.get(d, L*W)
	d.SumRows(psum, dh, rows, L*W, 0)
	d.Axpby(1, psum, 1, m.pos.G)
	dx := m.dx.get(d, rows*D)
	for k, s := range m.Cfg.Segments {
		off := m.Cfg.Offset(k)
		d.SumRows(kernels.Tail(d, m.modEmb.G, k*W), kernels.Tail(d, psum, m.start[k]*W), s.Tokens, W, 1)
		part := m.part.get(d, rows*W*s.Features)
		d.GemmBatched(true, false, W, s.Features, s.Tokens, 1, kernels.Tail(d, dh, m.start[k]*W), W, L*W,
			kernels.Tail(d, m.x, off), s.Features, D, 0, part, s.Features, W*s.Features, rows)
		d.SumRows(m.inW[k].G, part, rows, W*s.Features, 1)
		d.GemmBatched(false, false, s.Tokens, s.Features, W, 1, kernels.Tail(d, dh, m.start[k]*W), W, L*W,
			m.inW[k].W, s.Features, 0, 0, kernels.Tail(d, dx, off), s.Features, D, rows)
	}
	return dx
}
