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
// are computed with one GemmBatched per head over the sequences of the batch.
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
	// One strided-batched product per head over the sequences (head h of sequence b is at
	// a fixed stride from head h of sequence b-1): Heads launches instead of batch.
	for h := 0; h < H; h++ {
		q := tail(a.d, a.qkv, h*hd)
		k := tail(a.d, a.qkv, D+h*hd)
		a.d.GemmBatched(false, true, l, l, hd, scale, q, 3*D, l*3*D, k, 3*D, l*3*D, 0, tail(a.d, s, h*l*l), l, H*l*l, batch)
	}
	a.d.Softmax(p, s, batch*H*l, l)
	for h := 0; h < H; h++ {
		v := tail(a.d, a.qkv, 2*D+h*hd)
		a.d.GemmBatched(false, false, l, hd, l, 1, tail(a.d, p, h*l*l), l, H*l*l, v, 3*D, l*3*D, 0, tail(a.d, o, h*hd), D, l*D, batch)
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
	for h := 0; h < H; h++ {
		dob := tail(a.d, do, h*hd)
		v := tail(a.d, a.qkv, 2*D+h*hd)
		ph := tail(a.d, p, h*l*l)
		// dP = dO V^T, dV = P^T dO
		a.d.GemmBatched(false, true, l, l, hd, 1, dob, D, l*D, v, 3*D, l*3*D, 0, tail(a.d, dp, h*l*l), l, H*l*l, batch)
		a.d.GemmBatched(true, false, l, hd, l, 1, ph, l, H*l*l, dob, D, l*D, 0, tail(a.d, dqkv, 2*D+h*hd), 3*D, l*3*D, batch)
	}
	a.d.SoftmaxGrad(ds, dp, p, batch*H*l, l, 0)
	for h := 0; h < H; h++ {
		q := tail(a.d, a.qkv, h*hd)
		k := tail(a.d, a.qkv, D+h*hd)
		dsh := tail(a.d, ds, h*l*l)
		// dQ = scale dS K, dK = scale dS^T Q
		a.d.GemmBatched(false, false, l, hd, l, scale, dsh, l, H*l*l, k, 3*D, l*3*D, 0, tail(a.d, dqkv, h*hd), 3*D, l*3*D, batch)
		a.d.GemmBatched(true, false, l, hd, l, scale, dsh, l, H*l*l, q, 3*D, l*3*D, 0, tail(a.d, dqkv, D+h*hd), 3*D, l*3*D, batch)
	}
	return a.QKV.Backward(dqkv, true)
}
