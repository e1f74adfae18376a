// Package nn holds the neural-network layers of immkit with explicit Forward and Backward
// passes over kernels.Device buffers: Linear, activations (SiLU, GELU-tanh), LayerNorm with
// adaLN shift/scale/gate, the sinusoidal time embedding with its MLP for two times, a label
// embedding with a null class, and the adaLN residual MLP block; plus the parameter and
// gradient Registry, the AdamW optimiser with gradient clipping, and the EMA of weights.
//
// Activations are [rows, features] row-major buffers. A layer's Forward caches what its
// Backward needs and returns a buffer the layer owns and reuses on the next Forward (copy it
// to keep it). Backward accumulates parameter gradients into Param.G (call
// Registry.ZeroGrad first) and returns the gradient with respect to the input.
//
// Every layer is generic over the element type: models train in float32 and the tests
// check every gradient against central finite differences in float64.
package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/immkit/immkit/kernels"
)

// Param is one named parameter tensor with its gradient. W and G hold prod(Shape)
// elements, row-major in Shape (a Linear weight is [out, in], W[o*in+i]).
type Param struct {
	Name  string
	Shape []int
	W, G  kernels.Buffer
}

// Size is the number of elements.
func (p *Param) Size() int {
	n := 1
	for _, s := range p.Shape {
		n *= s
	}
	return n
}

// Registry owns the parameters of a model in creation order.
type Registry[T kernels.Float] struct {
	Dev    kernels.Device[T]
	Params []*Param
	byName map[string]*Param
	dry    *dryRun[T] // set when Dev is the device of a Shapes dry run
	// flatW, flatG: after Flatten, every W and G is a view of these, in Params order
	flatW, flatG kernels.Buffer
}

// Flatten moves the weights and gradients of every parameter into one buffer each, the
// parameters' W and G becoming views of them in registration order, so that whole-model
// ops run as one call: ZeroGrad, GradNorm (one reduction, so one device sync instead of
// one per tensor), and the AdamW and EMA made after it. Values are kept; no parameter can
// be added after. It does nothing on a dry run or when called again.
func (r *Registry[T]) Flatten() {
	if r.flatW != nil || r.dry != nil {
		return
	}
	r.flatW, r.flatG = r.Dev.Alloc(r.flatLen()), r.Dev.Alloc(r.flatLen())
	ws, gs := r.views(r.flatW), r.views(r.flatG)
	type freer interface{ Free(kernels.Buffer) error }
	f, canFree := r.Dev.(freer)
	for i, p := range r.Params {
		r.Dev.Copy(ws[i], p.W)
		if canFree {
			_ = f.Free(p.W) // best effort: the old storage is unreferenced either way
			_ = f.Free(p.G)
		}
		p.W, p.G = ws[i], gs[i]
	}
}

// Flat returns the buffers that hold every weight and every gradient after Flatten.
func (r *Registry[T]) Flat() (w, g kernels.Buffer, ok bool) { return r.flatW, r.flatG, r.flatW != nil }

// flatAlign is the element alignment of each parameter in the flat buffers: 64 floats
// (256 bytes), so that every weight and bias starts where cuBLAS and cuBLASLt want their
// operands (a cuBLASLt bias epilogue needs at least 16 bytes). The gaps stay zero in the
// weights, gradients and optimiser state, so the whole-buffer ops leave them zero.
const flatAlign = 64

// flatLen is the length of a flat buffer: every parameter at a multiple of flatAlign.
func (r *Registry[T]) flatLen() int {
	n := 0
	for _, p := range r.Params {
		n = (n+flatAlign-1)/flatAlign*flatAlign + p.Size()
	}
	return n
}

// views returns views of a flat buffer (flatLen elements) with the parameters' sizes, in
// Params order, each at a multiple of flatAlign.
func (r *Registry[T]) views(buf kernels.Buffer) []kernels.Buffer {
	out := make([]kernels.Buffer, len(r.Params))
	off := 0
	for i, p := range r.Params {
		off = (off + flatAlign - 1) / flatAlign * flatAlign
		out[i] = r.Dev.Slice(buf, off, p.Size())
		off += p.Size()
	}
	return out
}

// NewRegistry returns an empty registry on d. On the device that Shapes hands to a model
// constructor the registry only records names and shapes (see Shapes).
func NewRegistry[T kernels.Float](d kernels.Device[T]) *Registry[T] {
	r := &Registry[T]{Dev: d, byName: map[string]*Param{}}
	r.dry, _ = d.(*dryRun[T])
	return r
}

// Add creates a parameter initialised uniformly in [-scale, scale] from rng (zeros when
// scale is 0). Names must be unique.
func (r *Registry[T]) Add(name string, shape []int, scale float64, rng *rand.Rand) *Param {
	if _, dup := r.byName[name]; dup {
		panic("nn: duplicate parameter " + name)
	}
	if r.flatW != nil {
		panic("nn: parameter " + name + " added after Flatten")
	}
	p := &Param{Name: name, Shape: shape}
	if r.dry != nil { // names and shapes only: no storage, no draws from rng
		r.dry.add(p)
		p.W, p.G = noStorage{}, noStorage{}
	} else {
		n := p.Size()
		p.W, p.G = r.Dev.Alloc(n), r.Dev.Alloc(n)
		if scale != 0 {
			host := make([]T, n)
			for i := range host {
				host[i] = T(scale * (2*rng.Float64() - 1))
			}
			r.Dev.Write(p.W, host)
		}
	}
	r.Params = append(r.Params, p)
	r.byName[name] = p
	return p
}

// ParamShape is the name and shape of one parameter (Shape as in Param).
type ParamShape struct {
	Name  string
	Shape []int
}

// Size is the number of elements, prod(Shape).
func (p ParamShape) Size() int { return (&Param{Shape: p.Shape}).Size() }

// Shapes runs build, which constructs a model on the device it is given (for example
// func(d) error { _, err := NewMLP(d, cfg, rng); return err }), as a dry run: the
// Registry the constructor makes on that device records each parameter's name and shape
// but allocates no storage and draws no initial values (Param.W and Param.G are empty
// buffers, and the constructor's Fill of them does nothing). Each parameter is passed to
// check as it is registered, after its shape has been checked (every dimension positive,
// the size representable); the first error, from that check or from check, stops the
// constructor at that point and is returned with the parameters registered before it.
// Otherwise Shapes returns build's error (nil on success) and every parameter in
// registration order, the order of Registry.Params in a real build.
//
// The work and memory of a dry run are bounded by the number of parameters check accepts,
// not by the sizes the config declares, so a caller can compare a config with what a file
// holds before allocating the model. The network build constructs must not be used: the
// dry-run device implements only what constructors call (Alloc of nothing, Fill, Write
// and Slice of the empty buffers, Name); any other op on it panics.
func Shapes[T kernels.Float](build func(d kernels.Device[T]) error, check func(ParamShape) error) (params []ParamShape, err error) {
	dr := &dryRun[T]{check: check}
	defer func() {
		if v := recover(); v != nil {
			stop, ok := v.(dryRunStop)
			if !ok {
				panic(v)
			}
			params, err = dr.params, stop.err
		}
	}()
	err = build(dr)
	return dr.params, err
}

// dryRun is the device of a Shapes dry run. The embedded Device is nil: an op that a
// constructor should not call panics.
type dryRun[T kernels.Float] struct {
	kernels.Device[T]
	check  func(ParamShape) error
	params []ParamShape
}

// dryRunStop carries the error that ends a dry run from Registry.Add to Shapes.
type dryRunStop struct{ err error }

// noStorage is the empty buffer of every parameter of a dry run.
type noStorage struct{}

func (noStorage) Len() int { return 0 }

func (d *dryRun[T]) add(p *Param) {
	ps := ParamShape{Name: p.Name, Shape: append([]int(nil), p.Shape...)}
	n := 1
	for _, s := range ps.Shape {
		if s < 1 || n > math.MaxInt/s {
			panic(dryRunStop{fmt.Errorf("nn: parameter %s has shape %v: its dimensions must be positive and their product must fit an int", p.Name, p.Shape)})
		}
		n *= s
	}
	if d.check != nil {
		if err := d.check(ps); err != nil {
			panic(dryRunStop{err})
		}
	}
	d.params = append(d.params, ps)
}

func (d *dryRun[T]) Name() string { return "dry-run" }

func (d *dryRun[T]) Alloc(n int) kernels.Buffer {
	if n != 0 {
		panic(fmt.Sprintf("nn: a dry run allocated %d elements", n))
	}
	return noStorage{}
}

func (d *dryRun[T]) Slice(b kernels.Buffer, off, n int) kernels.Buffer {
	if _, ok := b.(noStorage); !ok || off != 0 || n != 0 {
		panic("nn: a dry run sliced a buffer it does not own")
	}
	return noStorage{}
}

func (d *dryRun[T]) Write(dst kernels.Buffer, src []T) {
	if _, ok := dst.(noStorage); !ok || len(src) != 0 {
		panic("nn: a dry run wrote data")
	}
}

func (d *dryRun[T]) Fill(dst kernels.Buffer, v T) {
	if _, ok := dst.(noStorage); !ok {
		panic("nn: a dry run filled a buffer it does not own")
	}
}

// Get returns the parameter with the given name, or nil.
func (r *Registry[T]) Get(name string) *Param { return r.byName[name] }

// ZeroGrad sets every gradient to zero.
func (r *Registry[T]) ZeroGrad() {
	if r.flatG != nil {
		r.Dev.Fill(r.flatG, 0)
		return
	}
	for _, p := range r.Params {
		r.Dev.Fill(p.G, 0)
	}
}

// Count is the total number of parameter elements.
func (r *Registry[T]) Count() int {
	n := 0
	for _, p := range r.Params {
		n += p.Size()
	}
	return n
}

// GradNorm is the global L2 norm of all gradients.
func (r *Registry[T]) GradNorm() float64 {
	if r.flatG != nil {
		return math.Sqrt(r.Dev.SumSquares(r.flatG))
	}
	var s float64
	for _, p := range r.Params {
		s += r.Dev.SumSquares(p.G)
	}
	return math.Sqrt(s)
}

// scratch is a reusable buffer that grows to the largest size asked for.
type scratch[T kernels.Float] struct{ b kernels.Buffer }

func (s *scratch[T]) get(d kernels.Device[T], n int) kernels.Buffer {
	if s.b == nil || s.b.Len() < n {
		s.b = d.Alloc(n)
	}
	return d.Slice(s.b, 0, n)
}

// rounded returns rounded storage (kernels.OperandRounder) of n elements.
func (s *scratch[T]) rounded(d kernels.Device[T], r kernels.OperandRounder, n int) kernels.Buffer {
	if s.b == nil || s.b.Len() < n {
		s.b = r.AllocRounded(n)
	}
	return d.Slice(s.b, 0, n)
}

// round returns the rounded copy of src[0:n] in the scratch's rounded storage.
func (s *scratch[T]) round(d kernels.Device[T], r kernels.OperandRounder, src kernels.Buffer, n int) kernels.Buffer {
	dst := s.rounded(d, r, n)
	r.Round(dst, src)
	return dst
}

// output returns storage for n elements of an op's output: rounded storage from r when
// toProduct (only products read the output) and the device writes bf16 outputs
// (kernels.OperandRounder.RoundsOutputs), float32 from f otherwise.
func output[T kernels.Float](d kernels.Device[T], f, r *scratch[T], toProduct bool, n int) kernels.Buffer {
	if rr := kernels.Rounder(d); rr != nil && toProduct && rr.RoundsOutputs() {
		return r.rounded(d, rr, n)
	}
	return f.get(d, n)
}

// Linear is y = x W^T + b with W [Out, In] and b [Out] (b absent when built without bias).
type Linear[T kernels.Float] struct {
	In, Out int
	W, B    *Param
	// ToProduct says the output is read only by products: the next Linear (the first
	// layer of an MLP) or the attention (qkv). On a device that rounds product operands
	// and outputs (kernels.OperandRounder.RoundsOutputs) ForwardAct then writes it, and
	// its pre-activation, as rounded storage, and the next layer's BackwardAct returns
	// the pre-activation's gradient rounded too: no float32 copy of either.
	ToProduct bool
	// DxToProduct says the same of the input gradient that Backward returns (the
	// attention projection's: the attention's backward pass reads it as a product
	// operand): rounded storage on such a device.
	DxToProduct bool
	d           kernels.Device[T]
	x           kernels.Buffer
	rows        int
	act         kernels.Act    // the activation of the last ForwardAct (Identity after Forward)
	preOut      kernels.Buffer // the pre-activation that ForwardAct saved (nil for Identity)
	y, dx, pre  scratch[T]
	// On a device whose products round their operands (kernels.OperandRounder), the
	// rounded x and W of the last forward pass, which the backward products reuse; nil
	// otherwise.
	xr, wr             kernels.Buffer
	xs, ws             scratch[T]
	yr, prer, dzr, dxr scratch[T] // rounded output, pre-activation, dz (BackwardAct) and dx
}

// NewLinear registers name.weight and name.bias with PyTorch's default initialisation
// U(-1/sqrt(in), 1/sqrt(in)).
func NewLinear[T kernels.Float](r *Registry[T], name string, in, out int, bias bool, rng *rand.Rand) *Linear[T] {
	s := 1 / math.Sqrt(float64(in))
	l := &Linear[T]{In: in, Out: out, d: r.Dev}
	l.W = r.Add(name+".weight", []int{out, in}, s, rng)
	if bias {
		l.B = r.Add(name+".bias", []int{out}, s, rng)
	}
	return l
}

// Forward computes y [rows, Out] from x [rows, In], the bias in the product's epilogue
// (kernels.Device.GemmBiasAct).
func (l *Linear[T]) Forward(x kernels.Buffer, rows int) kernels.Buffer {
	return l.ForwardAct(x, rows, kernels.Identity)
}

// ForwardAct computes act(x W^T + b) [rows, Out] in one product with its epilogue and,
// for an activation other than Identity, keeps the pre-activation for the BackwardAct of
// the layer that consumes the output.
func (l *Linear[T]) ForwardAct(x kernels.Buffer, rows int, act kernels.Act) kernels.Buffer {
	l.x, l.rows, l.act = x, rows, act
	a, w := x, l.W.W
	l.xr, l.wr = nil, nil
	if r := kernels.Rounder(l.d); r != nil {
		l.xr, l.wr = x, l.ws.round(l.d, r, l.W.W, l.Out*l.In)
		if !r.IsRounded(x) {
			l.xr = l.xs.round(l.d, r, x, rows*l.In)
		}
		a, w = l.xr, l.wr
	}
	var bias, y, pre kernels.Buffer
	if l.B != nil {
		bias = l.B.W
	}
	y = output(l.d, &l.y, &l.yr, l.ToProduct, rows*l.Out)
	if act != kernels.Identity {
		pre = output(l.d, &l.pre, &l.prer, l.ToProduct, rows*l.Out)
	}
	l.preOut = pre
	l.d.GemmBiasAct(false, true, rows, l.Out, l.In, a, l.In, w, l.In, bias, act, y, pre)
	return y
}

// Backward accumulates dW += dy^T x, db += sum_rows dy and returns dx = dy W
// (nil when needDx is false). dy is the gradient of the output before any activation
// of ForwardAct (BackwardAct of the next layer returns that).
func (l *Linear[T]) Backward(dy kernels.Buffer, needDx bool) kernels.Buffer {
	g, w := l.grads(dy)
	if !needDx {
		return nil
	}
	dx := output(l.d, &l.dx, &l.dxr, l.DxToProduct, l.rows*l.In)
	l.d.Gemm(false, false, l.rows, l.In, l.Out, 1, g, l.Out, w, l.In, 0, dx, l.In)
	return dx
}

// BackwardAct is Backward for a layer whose input was the output of in.ForwardAct: it
// returns the gradient of in's pre-activation, (dy W) * act'(pre), with the activation's
// derivative applied in the epilogue of the product (kernels.Device.GemmActGrad), ready
// for in.Backward.
func (l *Linear[T]) BackwardAct(dy kernels.Buffer, in *Linear[T]) kernels.Buffer {
	if in.act == kernels.Identity || in.rows != l.rows || in.Out != l.In {
		panic("nn: BackwardAct through a layer that was not the input of the last ForwardAct")
	}
	g, w := l.grads(dy)
	var dz kernels.Buffer
	if r := kernels.Rounder(l.d); r != nil && r.IsRounded(in.preOut) {
		dz = l.dzr.rounded(l.d, r, l.rows*l.In) // the rounded pre-activation's gradient is rounded too
	} else {
		dz = l.dx.get(l.d, l.rows*l.In)
	}
	l.d.GemmActGrad(false, false, l.rows, l.In, l.Out, g, l.Out, w, l.In, in.act, in.preOut, dz)
	return dz
}

// grads accumulates dW += dy^T x and db += sum_rows dy. It returns the operands of the
// product for dx: dy and W, or their rounded copies when the forward pass rounded x and
// W (dy rounded once for both products, unless it is rounded storage already).
func (l *Linear[T]) grads(dy kernels.Buffer) (g, w kernels.Buffer) {
	g, x, w := dy, l.x, l.W.W
	if l.xr != nil {
		r := kernels.Rounder(l.d)
		x, w = l.xr, l.wr
		if !r.IsRounded(dy) {
			g = r.RoundTemp(dy, l.rows*l.Out)
		}
	}
	l.d.Gemm(true, false, l.Out, l.In, l.rows, 1, g, l.Out, x, l.In, 1, l.W.G, l.In)
	if l.B != nil {
		l.d.SumRows(l.B.G, dy, l.rows, l.Out, 1)
	}
	return g, w
}

// Activation applies an elementwise nonlinearity.
type Activation[T kernels.Float] struct {
	Act   kernels.Act
	d     kernels.Device[T]
	x     kernels.Buffer
	y, dx scratch[T]
}

// NewActivation returns the layer y = act(x).
func NewActivation[T kernels.Float](d kernels.Device[T], act kernels.Act) *Activation[T] {
	return &Activation[T]{Act: act, d: d}
}

// Forward computes act(x) over n elements.
func (a *Activation[T]) Forward(x kernels.Buffer) kernels.Buffer {
	a.x = x
	y := a.y.get(a.d, x.Len())
	a.d.Activate(a.Act, y, x)
	return y
}

// Backward returns dx = dy * act'(x).
func (a *Activation[T]) Backward(dy kernels.Buffer) kernels.Buffer {
	dx := a.dx.get(a.d, a.x.Len())
	a.d.ActivateGrad(a.Act, dx, dy, a.x, 0)
	return dx
}

// AdaLN is a LayerNorm without affine parameters followed by an adaLN modulation:
// y = LN(x) * (1 + scale) + shift, with shift and scale [rows, Dim] computed from the
// conditioning by the caller.
type AdaLN[T kernels.Float] struct {
	Dim int
	Eps float64
	// ToProduct says the output is read only as the input of Linear layers: on a device
	// whose products round their operands (kernels.OperandRounder) Forward then returns
	// it as rounded storage, which the layers take without rounding it again, and no
	// float32 copy is stored.
	ToProduct     bool
	yr            scratch[T]
	d             kernels.Device[T]
	x, scale      kernels.Buffer
	rows, l, ld   int
	mean, rstd, y scratch[T]
	dx, dscale    scratch[T]
}

// NewAdaLN returns the layer with eps 1e-6.
func NewAdaLN[T kernels.Float](d kernels.Device[T], dim int) *AdaLN[T] {
	return &AdaLN[T]{Dim: dim, Eps: 1e-6, d: d}
}

// Forward computes y [rows, Dim]. Row r is modulated by the shift and scale of its
// sequence r/l, row r/l of [rows/l, ld] matrices (kernels.Device.ModulateRows): l = 1
// and ld = Dim for per-row modulations, l tokens and a column block of the [batch, 6
// Dim] adaLN output for a transformer block.
func (a *AdaLN[T]) Forward(x, shift, scale kernels.Buffer, rows, l, ld int) kernels.Buffer {
	a.x, a.scale, a.rows, a.l, a.ld = x, scale, rows, l, ld
	var y kernels.Buffer
	if r := kernels.Rounder(a.d); r != nil && a.ToProduct {
		y = a.yr.rounded(a.d, r, rows*a.Dim)
	} else {
		y = a.y.get(a.d, rows*a.Dim)
	}
	a.d.AdaLayerNorm(y, a.mean.get(a.d, rows), a.rstd.get(a.d, rows), x, shift, scale, rows, l, a.Dim, ld, T(a.Eps))
	return y
}

// Backward returns dx, dshift (which is dy itself) and dscale = dy * LN(x), per row
// [rows, Dim]: the caller sums them over the l rows of a sequence.
func (a *AdaLN[T]) Backward(dy kernels.Buffer) (dx, dshift, dscale kernels.Buffer) {
	k := a.rows * a.Dim
	dx, dscale = a.dx.get(a.d, k), a.dscale.get(a.d, k)
	a.d.AdaLayerNormGrad(dx, dscale, dy, a.x, a.mean.get(a.d, a.rows), a.rstd.get(a.d, a.rows), a.scale, a.rows, a.l, a.Dim, a.ld, T(a.Eps))
	return dx, dy, dscale
}

// TimeEmbedding embeds two times: sinusoidal features of c_noise(s) and c_noise(t)
// (Freq each), concatenated, then Linear(2 Freq, Dim), SiLU, Linear(Dim, Dim).
// The two feature blocks are handled as two Linear layers whose outputs are summed,
// which is the same map as one Linear on the concatenation.
type TimeEmbedding[T kernels.Float] struct {
	Freq, Dim int
	d         kernels.Device[T]
	inS, inT  *Linear[T]
	act       *Activation[T]
	out       *Linear[T]
	es, et    scratch[T]
	h         scratch[T]
}

// NewTimeEmbedding registers name.s, name.t, name.out.
func NewTimeEmbedding[T kernels.Float](r *Registry[T], name string, freq, dim int, rng *rand.Rand) *TimeEmbedding[T] {
	return &TimeEmbedding[T]{
		Freq: freq, Dim: dim, d: r.Dev,
		inS: NewLinear(r, name+".s", freq, dim, true, rng),
		inT: NewLinear(r, name+".t", freq, dim, false, rng),
		act: NewActivation(r.Dev, kernels.SiLU),
		out: NewLinear(r, name+".out", dim, dim, true, rng),
	}
}

// Forward returns the embedding [rows, Dim] of the per-row noise levels ns and nt.
func (e *TimeEmbedding[T]) Forward(ns, nt kernels.Buffer, rows int) kernels.Buffer {
	es, et := e.es.get(e.d, rows*e.Freq), e.et.get(e.d, rows*e.Freq)
	e.d.TimeEmbed(es, ns, rows, e.Freq)
	e.d.TimeEmbed(et, nt, rows, e.Freq)
	h := e.h.get(e.d, rows*e.Dim)
	e.d.Copy(h, e.inS.Forward(es, rows))
	e.d.Axpby(1, e.inT.Forward(et, rows), 1, h)
	return e.out.Forward(e.act.Forward(h), rows)
}

// Backward accumulates the parameter gradients (the times are not differentiated).
func (e *TimeEmbedding[T]) Backward(dy kernels.Buffer) {
	dh := e.act.Backward(e.out.Backward(dy, true))
	e.inS.Backward(dh, false)
	e.inT.Backward(dh, false)
}

// LabelEmbedding maps class ids in [0, Classes] to Dim vectors; id Classes is the null
// class used for label dropout and classifier-free guidance. Table is [Classes+1, Dim].
type LabelEmbedding[T kernels.Float] struct {
	Classes, Dim int
	Table        *Param
	d            kernels.Device[T]
	ids          []int32
	y            scratch[T]
}

// NewLabelEmbedding registers name.table, initialised N(0,0.02)-like (uniform of that scale).
func NewLabelEmbedding[T kernels.Float](r *Registry[T], name string, classes, dim int, rng *rand.Rand) *LabelEmbedding[T] {
	return &LabelEmbedding[T]{Classes: classes, Dim: dim, d: r.Dev,
		Table: r.Add(name+".table", []int{classes + 1, dim}, 0.02*math.Sqrt(3), rng)}
}

// Null is the id of the null class.
func (l *LabelEmbedding[T]) Null() int32 { return int32(l.Classes) }

// Forward gathers the rows of ids.
func (l *LabelEmbedding[T]) Forward(ids []int32) (kernels.Buffer, error) {
	for i, id := range ids {
		if id < 0 || int(id) > l.Classes {
			return nil, fmt.Errorf("nn: label %d of row %d outside [0, %d]", id, i, l.Classes)
		}
	}
	l.ids = ids
	y := l.y.get(l.d, len(ids)*l.Dim)
	l.d.Embed(y, l.Table.W, ids, l.Dim)
	return y, nil
}

// Backward scatters dy into the table gradient.
func (l *LabelEmbedding[T]) Backward(dy kernels.Buffer) {
	l.d.EmbedGrad(l.Table.G, dy, l.ids, l.Dim)
}

// ResBlock is the adaLN residual MLP block of DiT without attention:
//
//	(shift, scale, gate) = Linear(SiLU(c)); y = LN(h)(1+scale)+shift
//	out = h + gate * Linear2(GELU(Linear1(y)))
//
// with h [rows, Dim], c [rows, CondDim] and hidden width Hidden.
type ResBlock[T kernels.Float] struct {
	Dim, CondDim, Hidden int
	d                    kernels.Device[T]
	condAct              *Activation[T]
	shift, scale, gate   *Linear[T]
	norm                 *AdaLN[T]
	fc1, fc2             *Linear[T] // fc2(gelu(fc1(y))), the GELU in fc1's epilogue
	rows                 int
	z, g                 kernels.Buffer
	out, dgate, dz, dh   scratch[T]
	dc                   scratch[T]
}

// NewResBlock registers the block's parameters under name.
func NewResBlock[T kernels.Float](r *Registry[T], name string, dim, condDim, hidden int, rng *rand.Rand) *ResBlock[T] {
	b := &ResBlock[T]{
		Dim: dim, CondDim: condDim, Hidden: hidden, d: r.Dev,
		condAct: NewActivation(r.Dev, kernels.SiLU),
		shift:   NewLinear(r, name+".shift", condDim, dim, true, rng),
		scale:   NewLinear(r, name+".scale", condDim, dim, true, rng),
		gate:    NewLinear(r, name+".gate", condDim, dim, true, rng),
		norm:    NewAdaLN(r.Dev, dim),
		fc1:     NewLinear(r, name+".fc1", dim, hidden, true, rng),
		fc2:     NewLinear(r, name+".fc2", hidden, dim, true, rng),
	}
	b.fc1.ToProduct = true // read by fc2 only
	return b
}

// Forward returns the block output [rows, Dim].
func (b *ResBlock[T]) Forward(h, c kernels.Buffer, rows int) kernels.Buffer {
	b.rows = rows
	sc := b.condAct.Forward(c)
	shift := b.shift.Forward(sc, rows)
	scale := b.scale.Forward(sc, rows)
	b.g = b.gate.Forward(sc, rows)
	y := b.norm.Forward(h, shift, scale, rows, 1, b.Dim)
	b.z = b.fc2.Forward(b.fc1.ForwardAct(y, rows, kernels.GELUTanh), rows)
	out := b.out.get(b.d, rows*b.Dim)
	b.d.Copy(out, h)
	b.d.Mul(out, b.g, b.z, 1)
	return out
}

// Backward returns dh and dc for the block output gradient dout.
func (b *ResBlock[T]) Backward(dout kernels.Buffer) (dh, dc kernels.Buffer) {
	k := b.rows * b.Dim
	dgate := b.dgate.get(b.d, k)
	b.d.Mul(dgate, dout, b.z, 0)
	dz := b.dz.get(b.d, k)
	b.d.Mul(dz, dout, b.g, 0)
	dy := b.fc1.Backward(b.fc2.BackwardAct(dz, b.fc1), true)
	dxn, dshift, dscale := b.norm.Backward(dy)
	dh = b.dh.get(b.d, k)
	b.d.Copy(dh, dout)
	b.d.Axpby(1, dxn, 1, dh)
	dsc := b.dc.get(b.d, b.rows*b.CondDim)
	b.d.Copy(dsc, b.shift.Backward(dshift, true))
	b.d.Axpby(1, b.scale.Backward(dscale, true), 1, dsc)
	b.d.Axpby(1, b.gate.Backward(dgate, true), 1, dsc)
	return dh, b.condAct.Backward(dsc)
}
