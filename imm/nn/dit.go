package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/immkit/immkit/kernels"
)

// reduceTokens sums over the l tokens of each sequence, the gradient of a per-sequence
// modulation (kernels.Device.MulRows, ModulateRows): dst[b*ld+off+j] = sum_i
// src[(b*l+i)*cols+j].
func reduceTokens[T kernels.Float](d kernels.Device[T], dst, src kernels.Buffer, batch, l, cols, ld, off int) {
	d.SumRowGroups(kernels.Tail(d, dst, off), src, batch, l, cols, ld)
}

// DiTBlock is the adaLN-Zero transformer block of DiT (Peebles and Xie, 2023):
//
//	(sh1, sc1, g1, sh2, sc2, g2) = Linear(Dim, 6 Dim)(SiLU(c))     per sequence
//	x = x + g1 * Attention(LN(x)(1+sc1)+sh1)
//	x = x + g2 * MLP(LN(x)(1+sc2)+sh2),  MLP = Linear, GELU-tanh, Linear (hidden Hidden)
//
// x is [batch*L, Dim] (token l of sequence b in row b*L+l); the conditioning enters as
// SiLU(c) [batch, Dim], computed once by the caller. The modulation Linear is registered
// as name.ada with its output in the order above; NewDiT zeroes it (adaLN-Zero).
type DiTBlock[T kernels.Float] struct {
	Dim, Hidden int
	Ada         *Linear[T]
	Attn        *Attention[T]
	FC1, FC2    *Linear[T]
	d           kernels.Device[T]
	norm1       *AdaLN[T]
	norm2       *AdaLN[T]
	batch, l    int
	a, z        kernels.Buffer // attention and MLP branch outputs
	// m: the six modulations of each sequence [batch, 6 Dim] (the Ada output)
	m kernels.Buffer
	// x1, out: residual stream.
	x1, out, dmod, dg, db scratch[T]
	dbr                   scratch[T] // db as rounded storage (Backward)
}

// NewDiTBlock registers name.ada, name.attn.{qkv,proj}, name.fc1, name.fc2.
func NewDiTBlock[T kernels.Float](r *Registry[T], name string, dim, heads, hidden int, rng *rand.Rand) *DiTBlock[T] {
	blk := &DiTBlock[T]{Dim: dim, Hidden: hidden, d: r.Dev,
		Ada:   NewLinear(r, name+".ada", dim, 6*dim, true, rng),
		Attn:  NewAttention(r, name+".attn", dim, heads, rng),
		FC1:   NewLinear(r, name+".fc1", dim, hidden, true, rng),
		FC2:   NewLinear(r, name+".fc2", hidden, dim, true, rng),
		norm1: NewAdaLN(r.Dev, dim), norm2: NewAdaLN(r.Dev, dim),
	}
	blk.norm1.ToProduct, blk.norm2.ToProduct = true, true // read by QKV and FC1 only
	blk.FC1.ToProduct = true                              // read by FC2 only
	return blk
}

// onesOf returns a buffer of n ones.
func onesOf[T kernels.Float](d kernels.Device[T], s *scratch[T], n int) kernels.Buffer {
	fresh := s.b == nil || s.b.Len() < n
	b := s.get(d, n)
	if fresh {
		d.Fill(b, 1)
	}
	return b
}

// mod returns modulation k (0..5: sh1, sc1, g1, sh2, sc2, g2) of every sequence: the
// column block k*Dim of the [batch, 6 Dim] Ada output, leading dimension 6 Dim.
func (blk *DiTBlock[T]) mod(k int) kernels.Buffer { return kernels.Tail(blk.d, blk.m, k*blk.Dim) }

// Forward returns the block output [batch*l, Dim] for x [batch*l, Dim] and sc [batch, Dim].
func (blk *DiTBlock[T]) Forward(x, sc kernels.Buffer, batch, l int) kernels.Buffer {
	blk.batch, blk.l = batch, l
	d, D := blk.d, blk.Dim
	n, rows := batch*l*D, batch*l
	blk.m = blk.Ada.Forward(sc, batch)
	y := blk.norm1.Forward(x, blk.mod(0), blk.mod(1), rows, l, 6*D)
	blk.a = blk.Attn.Forward(y, batch, l)
	x1 := blk.x1.get(d, n)
	d.MulRowsAdd(x1, x, blk.a, blk.mod(2), rows, l, D, 6*D)
	y = blk.norm2.Forward(x1, blk.mod(3), blk.mod(4), rows, l, 6*D)
	blk.z = blk.FC2.Forward(blk.FC1.ForwardAct(y, rows, kernels.GELUTanh), rows) // GELU in FC1's epilogue
	out := blk.out.get(d, n)
	d.MulRowsAdd(out, x1, blk.z, blk.mod(5), rows, l, D, 6*D)
	return out
}

// Backward accumulates the parameter gradients and returns dx [batch*l, Dim] and
// dsc [batch, Dim] for the output gradient dout.
func (blk *DiTBlock[T]) Backward(dout kernels.Buffer) (dx, dsc kernels.Buffer) {
	d, D, batch, l := blk.d, blk.Dim, blk.batch, blk.l
	n := batch * l * D
	dmod := blk.dmod.get(d, batch*6*D)
	dg := blk.dg.get(d, n)
	// db, a gated branch's output gradient, is read only by the branch's last layer
	// (FC2, the attention projection): rounded storage on a device with bf16 outputs
	db := output(d, &blk.db, &blk.dbr, true, n)
	// MLP branch: out = x1 + g2*z
	d.Mul(dg, dout, blk.z, 0)
	reduceTokens(d, dmod, dg, batch, l, D, 6*D, 5*D)
	d.MulRows(db, dout, blk.mod(5), batch*l, l, D, 6*D, 0)
	dy := blk.FC1.Backward(blk.FC2.BackwardAct(db, blk.FC1), true)
	dxn, dsh, dscl := blk.norm2.Backward(dy)
	reduceTokens(d, dmod, dsh, batch, l, D, 6*D, 3*D)
	reduceTokens(d, dmod, dscl, batch, l, D, 6*D, 4*D)
	// dx1 = dout + dxn, added into norm2's gradient buffer (no copy)
	d.Axpby(1, dout, 1, dxn)
	dx1 := dxn
	// attention branch: x1 = x + g1*a
	d.Mul(dg, dx1, blk.a, 0)
	reduceTokens(d, dmod, dg, batch, l, D, 6*D, 2*D)
	d.MulRows(db, dx1, blk.mod(2), batch*l, l, D, 6*D, 0)
	dy = blk.Attn.Backward(db)
	dxn, dsh, dscl = blk.norm1.Backward(dy)
	reduceTokens(d, dmod, dsh, batch, l, D, 6*D, 0)
	reduceTokens(d, dmod, dscl, batch, l, D, 6*D, D)
	d.Axpby(1, dx1, 1, dxn) // dx = dx1 + dxn, in norm1's gradient buffer
	return dxn, blk.Ada.Backward(dmod, true)
}

// DiTSize is a named backbone size.
type DiTSize struct {
	Width, Depth, Heads, Patch int
}

// DiTSizes are the sizes of the DiT paper (S/2, B/2) and tiny ones for CPU tests.
var DiTSizes = map[string]DiTSize{
	"S/2":    {384, 12, 6, 2},
	"B/2":    {768, 12, 12, 2},
	"tiny/2": {32, 2, 2, 2},
	"tiny/1": {16, 1, 2, 1},
}

// DiTConfig describes a DiT over C x H x W images (latents).
type DiTConfig struct {
	Channels int `json:"channels"`  // C
	Height   int `json:"height"`    // H
	WidthPx  int `json:"width_px"`  // W
	Patch    int `json:"patch"`     // P; H and W are multiples of P
	Width    int `json:"width"`     // token width
	Depth    int `json:"depth"`     // blocks
	Heads    int `json:"heads"`     // attention heads (Width is a multiple)
	MLPRatio int `json:"mlp_ratio"` // hidden width / Width; 0 means 4
	Freq     int `json:"freq"`      // sinusoidal features per time; 0 means 256
	Classes  int `json:"classes"`   // labels; 0 for unconditional
	// RandomInit skips the adaLN-Zero initialisation (zero modulation and output layers)
	// and draws those weights like the others; gradient checks need it, or every
	// gradient upstream of a zero gate is zero.
	RandomInit bool `json:"random_init,omitempty"`
}

// NewDiTConfig returns the config of a named size (a key of DiTSizes) for c x h x w images.
func NewDiTConfig(size string, c, h, w, classes int) (DiTConfig, error) {
	s, ok := DiTSizes[size]
	if !ok {
		return DiTConfig{}, fmt.Errorf("nn: unknown DiT size %q (want S/2, B/2, tiny/2 or tiny/1)", size)
	}
	cfg := DiTConfig{Channels: c, Height: h, WidthPx: w, Patch: s.Patch, Width: s.Width, Depth: s.Depth,
		Heads: s.Heads, MLPRatio: 4, Freq: 256, Classes: classes}
	if strings.HasPrefix(size, "tiny") {
		cfg.Freq = 32
	}
	return cfg, cfg.Validate()
}

// Dim is the particle dimension C*H*W.
func (c DiTConfig) Dim() int { return c.Channels * c.Height * c.WidthPx }

// Validate reports a clear error for an unusable configuration.
func (c DiTConfig) Validate() error {
	switch {
	case c.Channels < 1 || c.Patch < 1 || c.Height < c.Patch || c.WidthPx < c.Patch || c.Height%c.Patch != 0 || c.WidthPx%c.Patch != 0:
		return fmt.Errorf("nn: DiT image %dx%dx%d cannot be cut into %dx%d patches", c.Channels, c.Height, c.WidthPx, c.Patch, c.Patch)
	case c.Width < 1 || c.Depth < 0 || c.Heads < 1 || c.Width%c.Heads != 0:
		return fmt.Errorf("nn: DiT width %d must be a positive multiple of heads %d, depth %d >= 0", c.Width, c.Heads, c.Depth)
	case c.MLPRatio < 0:
		return fmt.Errorf("nn: DiT mlp ratio must be >= 0, got %d", c.MLPRatio)
	case c.Freq < 0 || c.Freq%2 != 0:
		return fmt.Errorf("nn: DiT freq must be even, got %d", c.Freq)
	case c.Classes < 0:
		return fmt.Errorf("nn: classes must be >= 0, got %d", c.Classes)
	}
	return nil
}

// DiT is the transformer backbone G for images, with the same Forward/Backward contract
// as MLP (x is [rows, C*H*W], already scaled by c_in):
//
//	h = Linear(C P^2, Width)(patchify(x)) + pos           pos: learned [L, Width]
//	c = TimeEmbedding(c_noise(s), c_noise(t)) [+ E[label]]
//	h = DiTBlock_i(h, SiLU(c))  for i < Depth
//	(sh, sc) = Linear(Width, 2 Width)(SiLU(c)); G = unpatchify(Linear(Width, C P^2)(LN(h)(1+sc)+sh))
//
// matching shared/bench/imm_torch_ref.py's DiT (plus the label embedding).
type DiT[T kernels.Float] struct {
	Cfg   DiTConfig
	Reg   *Registry[T]
	d     kernels.Device[T]
	inP   *Patchify[T]
	outP  *Patchify[T]
	embed *Linear[T]
	pos   *Param
	trunk *trunk[T]
	out   *Linear[T]
	rows  int
	h     scratch[T]
	dx    kernels.Buffer
}

// NewDiT builds the network with weights drawn from rng.
func NewDiT[T kernels.Float](d kernels.Device[T], cfg DiTConfig, rng *rand.Rand) (*DiT[T], error) {
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
	m := &DiT[T]{Cfg: cfg, Reg: r, d: d}
	var err error
	if m.inP, err = NewPatchify(d, cfg.Channels, cfg.Height, cfg.WidthPx, cfg.Patch); err != nil {
		return nil, err
	}
	m.outP, _ = NewPatchify(d, cfg.Channels, cfg.Height, cfg.WidthPx, cfg.Patch)
	W, F, L := cfg.Width, m.inP.Features(), m.inP.Tokens()
	m.embed = NewLinear(r, "patch", F, W, true, rng)
	m.pos = r.Add("pos", []int{L, W}, 0.02*math.Sqrt(3), rng)
	m.trunk = newTrunk(r, W, cfg.Depth, cfg.Heads, cfg.MLPRatio*W, cfg.Freq, cfg.Classes, rng)
	m.out = NewLinear(r, "out", W, F, true, rng)
	if !cfg.RandomInit {
		m.trunk.zeroModulation()
		d.Fill(m.out.W.W, 0)
		d.Fill(m.out.B.W, 0)
	}
	return m, nil
}

// Null is the id of the null class (Classes), for guidance and label dropout.
func (m *DiT[T]) Null() int32 { return int32(m.Cfg.Classes) }

// Forward computes G [rows, C*H*W] from x [rows, C*H*W], the noise levels ns, nt
// (length rows) and labels (nil, or length rows with values in [0, Classes]).
func (m *DiT[T]) Forward(x, ns, nt kernels.Buffer, labels []int32, rows int) (kernels.Buffer, error) {
	if labels != nil && (m.trunk.label == nil || len(labels) != rows) {
		return nil, fmt.Errorf("nn: %d labels for %d rows of a DiT with %d classes", len(labels), rows, m.Cfg.Classes)
	}
	if rows < 1 || x.Len() < rows*m.Cfg.Dim() {
		return nil, fmt.Errorf("nn: DiT input of %d values for %d rows of dim %d", x.Len(), rows, m.Cfg.Dim())
	}
	m.rows = rows
	d, W, L := m.d, m.Cfg.Width, m.inP.Tokens()
	h := m.h.get(d, rows*L*W)
	d.Copy(h, m.embed.Forward(m.inP.Patch(x, rows), rows*L))
	d.AddRowVector(h, m.pos.W, rows, L*W)
	h, err := m.trunk.forward(h, ns, nt, labels, rows, L)
	if err != nil {
		return nil, err
	}
	return m.outP.Unpatch(m.out.Forward(h, rows*L), rows), nil
}

// Backward accumulates parameter gradients for the output gradient dy [rows, C*H*W] of
// the last Forward.
func (m *DiT[T]) Backward(dy kernels.Buffer) { m.BackwardInput(dy) }

// BackwardInput is Backward that also returns the gradient with respect to the input x
// [rows, C*H*W] (owned by the network).
func (m *DiT[T]) BackwardInput(dy kernels.Buffer) kernels.Buffer {
	d, W, L, rows := m.d, m.Cfg.Width, m.inP.Tokens(), m.rows
	dh := m.trunk.backward(m.out.Backward(m.outP.Patch(dy, rows), true))
	d.SumRows(m.pos.G, dh, rows, L*W, 1)
	m.dx = m.inP.Unpatch(m.embed.Backward(dh, true), rows)
	return m.dx
}
