package nn

import (
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// Attention is multi-head self-attention over sequences of L tokens of width Dim:
//
//	qkv = Linear(Dim, 3 Dim)(x), per head h: P = softmax(Q_h K_h^T / sqrt(Dim/Heads)),
//	O_h = P V_h, out = Linear(Dim, Dim)(O)
//
// as in PyTorch's DiT (qkv viewed as [3, Heads, Dim/Heads] per token). x and out are
// [batch*L, Dim] row-major: token l of sequence b is row b*L+l. The attention itself is
// the device's Attention op.
type Attention[T kernels.Float] struct {
	Dim, Heads int
	QKV, Proj  *Linear[T]
	d          kernels.Device[T]
	batch, l   int
	qkv, o     kernels.Buffer // of the last Forward
	// ws: the op's saved state; os and or: o [batch*L, Dim] in float32 or rounded
	// storage; dqkv and dqkvr: the same for dqkv
	ws, os, or, dqkv, dqkvr scratch[T]
}

// NewAttention registers name.qkv and name.proj.
func NewAttention[T kernels.Float](r *Registry[T], name string, dim, heads int, rng *rand.Rand) *Attention[T] {
	if heads < 1 || dim%heads != 0 {
		panic("nn: attention width must be a multiple of the head count")
	}
	a := &Attention[T]{Dim: dim, Heads: heads, d: r.Dev,
		QKV:  NewLinear(r, name+".qkv", dim, 3*dim, true, rng),
		Proj: NewLinear(r, name+".proj", dim, dim, true, rng),
	}
	a.QKV.ToProduct = true    // read by the attention only
	a.Proj.DxToProduct = true // dO: read by the attention's backward pass only
	return a
}

// Forward returns the attention output [batch*l, Dim] for x [batch*l, Dim].
func (a *Attention[T]) Forward(x kernels.Buffer, batch, l int) kernels.Buffer {
	a.batch, a.l = batch, l
	hd := a.Dim / a.Heads
	a.qkv = a.QKV.Forward(x, batch*l)
	// o is read by Proj's products and the attention's backward pass: rounded storage
	// when the device keeps bf16 outputs (kernels.OperandRounder.RoundsOutputs)
	a.o = output(a.d, &a.os, &a.or, true, batch*l*a.Dim)
	a.d.Attention(a.o, a.ws.get(a.d, a.d.AttentionWorkspace(batch, l, a.Heads, hd)), a.qkv, batch, l, a.Heads, hd)
	return a.Proj.Forward(a.o, batch*l)
}

// Backward accumulates the parameter gradients and returns dx for the output gradient dy.
func (a *Attention[T]) Backward(dy kernels.Buffer) kernels.Buffer {
	batch, l, hd := a.batch, a.l, a.Dim/a.Heads
	do := a.Proj.Backward(dy, true)
	// dqkv is read by QKV's products and bias-gradient sum only: rounded storage when the
	// device keeps bf16 outputs
	dqkv := output(a.d, &a.dqkv, &a.dqkvr, true, batch*l*3*a.Dim)
	ws := a.ws.get(a.d, a.d.AttentionWorkspace(batch, l, a.Heads, hd))
	a.d.AttentionGrad(dqkv, do, a.o, ws, a.qkv, batch, l, a.Heads, hd)
	return a.QKV.Backward(dqkv, true)
}
