package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// trunk is the part shared by the DiT and the multimodal sequence model: the conditioning
// c = TimeEmbedding(ns, nt) [+ E[label]] and its SiLU, the adaLN-Zero blocks over the token
// sequence h [rows*L, Width] (token l of sequence b in row b*L+l), and the final adaLN
//
//	(sh, sc) = Linear(Width, 2 Width)(SiLU(c)); out = LN(h)(1+sc)+sh
//
// Each model keeps its own input embedding (into h) and output projection (from out).
type trunk[T kernels.Float] struct {
	d       kernels.Device[T]
	width   int
	temb    *TimeEmbedding[T]
	label   *LabelEmbedding[T] // nil without classes
	blocks  []*DiTBlock[T]
	condAct *Activation[T]
	fada    *Linear[T]
	fnorm   *AdaLN[T]
	rows, l int
	c       scratch[T]
	dfmod   scratch[T]
	dsc     scratch[T]
}

// newTrunk registers temb, label (when classes > 0), block.0 .. block.depth-1 and
// final.ada, in that order.
func newTrunk[T kernels.Float](r *Registry[T], width, depth, heads, hidden, freq, classes int, rng *rand.Rand) *trunk[T] {
	t := &trunk[T]{d: r.Dev, width: width}
	t.temb = NewTimeEmbedding(r, "temb", freq, width, rng)
	if classes > 0 {
		t.label = NewLabelEmbedding(r, "label", classes, width, rng)
	}
	for i := 0; i < depth; i++ {
		t.blocks = append(t.blocks, NewDiTBlock(r, fmt.Sprintf("block.%d", i), width, heads, hidden, rng))
	}
	t.condAct = NewActivation(r.Dev, kernels.SiLU)
	t.fada = NewLinear(r, "final.ada", width, 2*width, true, rng)
	t.fnorm = NewAdaLN(r.Dev, width)
	return t
}

// zeroModulation zeroes the modulation Linears of the blocks and of the final layer
// (the adaLN-Zero initialisation; the model zeroes its own output projection).
func (t *trunk[T]) zeroModulation() {
	zero := []*Linear[T]{t.fada}
	for _, b := range t.blocks {
		zero = append(zero, b.Ada)
	}
	for _, l := range zero {
		t.d.Fill(l.W.W, 0)
		t.d.Fill(l.B.W, 0)
	}
}

// forward returns the final adaLN output [rows*l, Width] for the embedded tokens h
// [rows*l, Width], the noise levels ns, nt (length rows) and labels (nil, or length rows;
// the caller checks the length).
func (t *trunk[T]) forward(h, ns, nt kernels.Buffer, labels []int32, rows, l int) (kernels.Buffer, error) {
	t.rows, t.l = rows, l
	d, W := t.d, t.width
	if t.label != nil {
		t.label.ids = nil
	}
	c := t.c.get(d, rows*W)
	d.Copy(c, t.temb.Forward(ns, nt, rows))
	if labels != nil {
		lab, err := t.label.Forward(labels)
		if err != nil {
			return nil, err
		}
		d.Axpby(1, lab, 1, c)
	}
	sc := t.condAct.Forward(c)
	for _, b := range t.blocks {
		h = b.Forward(h, sc, rows, l)
	}
	fmod := t.fada.Forward(sc, rows) // [rows, 2 W]: shift, scale
	return t.fnorm.Forward(h, fmod, kernels.Tail(d, fmod, W), rows*l, l, 2*W), nil
}

// backward accumulates the gradients of the trunk's parameters for the gradient dout
// [rows*l, Width] of the last forward's output and returns the gradient with respect to
// its input tokens h [rows*l, Width] (owned by the first block, or by the final adaLN
// when there are no blocks).
func (t *trunk[T]) backward(dout kernels.Buffer) kernels.Buffer {
	d, W, l, rows := t.d, t.width, t.l, t.rows
	dh, dsh, dscl := t.fnorm.Backward(dout)
	dfm := t.dfmod.get(d, rows*2*W)
	reduceTokens(d, dfm, dsh, rows, l, W, 2*W, 0)
	reduceTokens(d, dfm, dscl, rows, l, W, 2*W, W)
	dsc := t.dsc.get(d, rows*W)
	d.Copy(dsc, t.fada.Backward(dfm, true))
	for i := len(t.blocks) - 1; i >= 0; i-- {
		var dsci kernels.Buffer
		dh, dsci = t.blocks[i].Backward(dh)
		d.Axpby(1, dsci, 1, dsc)
	}
	dc := t.condAct.Backward(dsc)
	if t.label != nil && t.label.ids != nil {
		t.label.Backward(dc)
	}
	t.temb.Backward(dc)
	return dh
}
