package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// MLPConfig describes the network G(x, c_noise(s), c_noise(t), label) used on vector data.
type MLPConfig struct {
	Arch    string `json:"arch"`    // "mlp" (concat-and-SiLU) or "resmlp" (adaLN residual blocks)
	Dim     int    `json:"dim"`     // data dimension D
	Width   int    `json:"width"`   // hidden width
	Depth   int    `json:"depth"`   // hidden layers (mlp) or residual blocks (resmlp)
	Freq    int    `json:"freq"`    // sinusoidal features per time (even)
	Classes int    `json:"classes"` // number of labels; 0 for unconditional
}

// Validate reports a clear error for an unusable configuration.
func (c MLPConfig) Validate() error {
	switch {
	case c.Arch != "mlp" && c.Arch != "resmlp":
		return fmt.Errorf("nn: arch must be mlp or resmlp, got %q", c.Arch)
	case c.Dim < 1 || c.Width < 1 || c.Depth < 0:
		return fmt.Errorf("nn: dim %d, width %d, depth %d must be positive", c.Dim, c.Width, c.Depth)
	case c.Freq < 2 || c.Freq%2 != 0:
		return fmt.Errorf("nn: freq must be even and >= 2, got %d", c.Freq)
	case c.Classes < 0:
		return fmt.Errorf("nn: classes must be >= 0, got %d", c.Classes)
	}
	return nil
}

// MLP is G for vector data.
//
// Arch "mlp": h0 = SiLU(W_x x + W_s sin(c_s) + W_t sin(c_t) [+ E[label]]) (one Linear on
// the concatenation, as in the PyTorch reference), Depth hidden SiLU layers, then a Linear
// to Dim.
// Arch "resmlp": c = TimeEmbedding(c_s, c_t) [+ E[label]], h = W_in x, Depth ResBlocks
// conditioned on c, a final adaLN (shift, scale from SiLU(c)) and a Linear to Dim.
type MLP[T kernels.Float] struct {
	Cfg  MLPConfig
	Reg  *Registry[T]
	d    kernels.Device[T]
	rows int

	// mlp
	inX, inS, inT *Linear[T]
	hidden        []*Linear[T]
	acts          []*Activation[T]
	es, et, h0    scratch[T]
	// resmlp
	temb           *TimeEmbedding[T]
	in             *Linear[T]
	blocks         []*ResBlock[T]
	condAct        *Activation[T]
	fshift, fscale *Linear[T]
	fnorm          *AdaLN[T]
	c, dc, dcs     scratch[T]
	// both
	label *LabelEmbedding[T]
	out   *Linear[T]
}

// NewMLP builds the network with weights drawn from rng.
func NewMLP[T kernels.Float](d kernels.Device[T], cfg MLPConfig, rng *rand.Rand) (*MLP[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := NewRegistry(d)
	m := &MLP[T]{Cfg: cfg, Reg: r, d: d}
	W := cfg.Width
	if cfg.Arch == "mlp" {
		m.inX = NewLinear(r, "in.x", cfg.Dim, W, true, rng)
		m.inS = NewLinear(r, "in.s", cfg.Freq, W, false, rng)
		m.inT = NewLinear(r, "in.t", cfg.Freq, W, false, rng)
		if cfg.Classes > 0 {
			m.label = NewLabelEmbedding(r, "label", cfg.Classes, W, rng)
		}
		m.acts = append(m.acts, NewActivation(d, kernels.SiLU))
		for i := 0; i < cfg.Depth; i++ {
			m.hidden = append(m.hidden, NewLinear(r, fmt.Sprintf("hidden.%d", i), W, W, true, rng))
			m.acts = append(m.acts, NewActivation(d, kernels.SiLU))
		}
	} else {
		m.temb = NewTimeEmbedding(r, "temb", cfg.Freq, W, rng)
		if cfg.Classes > 0 {
			m.label = NewLabelEmbedding(r, "label", cfg.Classes, W, rng)
		}
		m.in = NewLinear(r, "in", cfg.Dim, W, true, rng)
		for i := 0; i < cfg.Depth; i++ {
			m.blocks = append(m.blocks, NewResBlock(r, fmt.Sprintf("block.%d", i), W, W, 2*W, rng))
		}
		m.condAct = NewActivation(d, kernels.SiLU)
		m.fshift = NewLinear(r, "final.shift", W, W, true, rng)
		m.fscale = NewLinear(r, "final.scale", W, W, true, rng)
		m.fnorm = NewAdaLN(d, W)
	}
	m.out = NewLinear(r, "out", W, cfg.Dim, true, rng)
	return m, nil
}

// Forward computes G [rows, Dim] from x [rows, Dim] (already scaled by c_in), the noise
// levels ns, nt (length rows) and labels (nil, or length rows with values in [0, Classes]).
func (m *MLP[T]) Forward(x, ns, nt kernels.Buffer, labels []int32, rows int) (kernels.Buffer, error) {
	m.rows = rows
	if labels != nil && (m.label == nil || len(labels) != rows) {
		return nil, fmt.Errorf("nn: %d labels for %d rows of a model with %d classes", len(labels), rows, m.Cfg.Classes)
	}
	W := m.Cfg.Width
	var lab kernels.Buffer
	if m.label != nil {
		m.label.ids = nil
	}
	if labels != nil {
		var err error
		if lab, err = m.label.Forward(labels); err != nil {
			return nil, err
		}
	}
	if m.Cfg.Arch == "mlp" {
		es, et := m.es.get(m.d, rows*m.Cfg.Freq), m.et.get(m.d, rows*m.Cfg.Freq)
		m.d.TimeEmbed(es, ns, rows, m.Cfg.Freq)
		m.d.TimeEmbed(et, nt, rows, m.Cfg.Freq)
		h := m.h0.get(m.d, rows*W)
		m.d.Copy(h, m.inX.Forward(x, rows))
		m.d.Axpby(1, m.inS.Forward(es, rows), 1, h)
		m.d.Axpby(1, m.inT.Forward(et, rows), 1, h)
		if lab != nil {
			m.d.Axpby(1, lab, 1, h)
		}
		h = m.acts[0].Forward(h)
		for i, l := range m.hidden {
			h = m.acts[i+1].Forward(l.Forward(h, rows))
		}
		return m.out.Forward(h, rows), nil
	}
	c := m.c.get(m.d, rows*W)
	m.d.Copy(c, m.temb.Forward(ns, nt, rows))
	if lab != nil {
		m.d.Axpby(1, lab, 1, c)
	}
	h := m.in.Forward(x, rows)
	for _, b := range m.blocks {
		h = b.Forward(h, c, rows)
	}
	sc := m.condAct.Forward(c)
	h = m.fnorm.Forward(h, m.fshift.Forward(sc, rows), m.fscale.Forward(sc, rows), rows, 1, m.Cfg.Width)
	return m.out.Forward(h, rows), nil
}

// Backward accumulates parameter gradients for the output gradient dy [rows, Dim] of the
// last Forward. The input gradient is not needed by IMM and is not computed.
func (m *MLP[T]) Backward(dy kernels.Buffer) {
	rows, W := m.rows, m.Cfg.Width
	if m.Cfg.Arch == "mlp" {
		dh := m.out.Backward(dy, true)
		for i := len(m.hidden) - 1; i >= 0; i-- {
			dh = m.hidden[i].Backward(m.acts[i+1].Backward(dh), true)
		}
		dh = m.acts[0].Backward(dh)
		m.inX.Backward(dh, false)
		m.inS.Backward(dh, false)
		m.inT.Backward(dh, false)
		if m.label != nil && m.label.ids != nil {
			m.label.Backward(dh)
		}
		return
	}
	dh, dshift, dscale := m.fnorm.Backward(m.out.Backward(dy, true))
	dcs := m.dcs.get(m.d, rows*W)
	m.d.Copy(dcs, m.fshift.Backward(dshift, true))
	m.d.Axpby(1, m.fscale.Backward(dscale, true), 1, dcs)
	dc := m.dc.get(m.d, rows*W)
	m.d.Copy(dc, m.condAct.Backward(dcs))
	for i := len(m.blocks) - 1; i >= 0; i-- {
		var dci kernels.Buffer
		dh, dci = m.blocks[i].Backward(dh)
		m.d.Axpby(1, dci, 1, dc)
	}
	m.in.Backward(dh, false)
	if m.label != nil && m.label.ids != nil {
		m.label.Backward(dc)
	}
	m.temb.Backward(dc)
}
