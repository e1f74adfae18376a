package nn

import (
	"math"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// Attention is multi-head self-attention over sequences of L tokens of width Dim:
//
//	qkv = Linear(Dim, 3 Dim)(x), per head h: P = softmax(Q_h K_h^T / sqrt(Dim/Heads)),
//	O_h = P V_h, out = Linear(Dim, Dim)(O)
//
// as in PyTorch's DiT (qkv viewed as [3, Heads, Dim/Heads] per token). x and out are
// [batch*L, Dim] row-major: token l of sequence b is row b*L+l. The attention matrices
// are computed with GemmBatched over the heads of one sequence.
type Attention[T kernels.Float] struct {
	Dim, Heads int
	QKV, Proj  *Linear[T]
	d          kernels.Device[T]
	batch, l   int
	qkv        kernels.Buffer
	// s, p: scores and probabilities, [batch, Heads, L, L]; o: [batch*L, Dim].
	s, p, o, dp, ds, dqkv scratch[T]
}

// NewAttention registers name.qkv and name.proj.
func NewAttention[T kernels.Float](r *Registry[T], name string, dim, heads int, rng *rand.Rand) *Attention[T] {
	if heads < 1 || dim%heads != 0 {
		panic("nn: attention width must be a multiple of the head count")
	}
	return &Attention[T]{Dim: dim, Heads: heads, d: r.Dev,
		QKV:  NewLinear(r, name+".qkv", dim, 3*dim, true, rng),
		Proj: NewLinear(r, name+".proj", dim, dim, true, rng),
	}
}

// tail is the view of b from off to its end.
func tail[T kernels.Float](d kernels.Device[T], b kernels.Buffer, off int) kernels.Buffer {
	return d.Slice(b, off, b.Len()-off)
}

// Forward returns the attention output [batch*l, Dim] for x [batch*l, Dim].
func (a *Attention[T]) Forward(x kernels.Buffer, batch, l int) kernels.Buffer {
	a.batch, a.l = batch, l
	D, H := a.Dim, a.Heads
	hd := D / H
	scale := T(1 / math.Sqrt(float64(hd)))
	a.qkv = a.QKV.Forward(x, batch*l)
	s := a.s.get(a.d, batch*H*l*l)
	p := a.p.get(a.d, batch*H*l*l)
	o := a.o.get(a.d, batch*l*D)
	for b := 0; b < batch; b++ {
		q := tail(a.d, a.qkv, b*l*3*D)
		k := tail(a.d, a.qkv, b*l*3*D+D)
		sb := tail(a.d, s, b*H*l*l)
		a.d.GemmBatched(false, true, l, l, hd, scale, q, 3*D, hd, k, 3*D, hd, 0, sb, l, l*l, H)
	}
	a.d.Softmax(p, s, batch*H*l, l)
	for b := 0; b < batch; b++ {
		v := tail(a.d, a.qkv, b*l*3*D+2*D)
		a.d.GemmBatched(false, false, l, hd, l, 1, tail(a.d, p, b*H*l*l), l, l*l, v, 3*D, hd, 0, tail(a.d, o, b*l*D), D, hd, H)
	}
	return a.Proj.Forward(o, batch*l)
}

// Backward accumulates the parameter gradients and returns dx for the output gradient dy.
func (a *Attention[T]) Backward(dy kernels.Buffer) kernels.Buffer {
	batch, l, D, H := a.batch, a.l, a.Dim, a.Heads
	hd := D / H
	scale := T(1 / math.Sqrt(float64(hd)))
	do := a.Proj.Backward(dy, true)
	p := a.p.get(a.d, batch*H*l*l)
	dp := a.dp.get(a.d, batch*H*l*l)
	ds := a.ds.get(a.d, batch*H*l*l)
	dqkv := a.dqkv.get(a.d, batch*l*3*D)
	for b := 0; b < batch; b++ {
		dob := tail(a.d, do, b*l*D)
		v := tail(a.d, a.qkv, b*l*3*D+2*D)
		pb := tail(a.d, p, b*H*l*l)
		// dP = dO V^T, dV = P^T dO
		a.d.GemmBatched(false, true, l, l, hd, 1, dob, D, hd, v, 3*D, hd, 0, tail(a.d, dp, b*H*l*l), l, l*l, H)
		a.d.GemmBatched(true, false, l, hd, l, 1, pb, l, l*l, dob, D, hd, 0, tail(a.d, dqkv, b*l*3*D+2*D), 3*D, hd, H)
	}
	a.d.SoftmaxGrad(ds, dp, p, batch*H*l, l, 0)
	for b := 0; b < batch; b++ {
		q := tail(a.d, a.qkv, b*l*3*D)
		k := tail(a.d, a.qkv, b*l*3*D+D)
		dsb := tail(a.d, ds, b*H*l*l)
		// dQ = scale dS K, dK = scale dS^T Q
		a.d.GemmBatched(false, false, l, hd, l, scale, dsb, l, l*l, k, 3*D, hd, 0, tail(a.d, dqkv, b*l*3*D), 3*D, hd, H)
		a.d.GemmBatched(true, false, l, hd, l, scale, dsb, l, l*l, q, 3*D, hd, 0, tail(a.d, dqkv, b*l*3*D+D), 3*D, hd, H)
	}
	return a.QKV.Backward(dqkv, true)
}
