package nn

import (
	"math"

	"github.com/immkit/immkit/kernels"
)

// AdamW is the AdamW optimiser over a Registry with global-norm gradient clipping.
// M and V hold the first and second moments, in the order and shapes of Registry.Params.
type AdamW[T kernels.Float] struct {
	Opt  kernels.AdamW
	Clip float64 // clip the global gradient norm to this value; 0 disables
	Step int     // number of updates done
	M, V []kernels.Buffer
	reg  *Registry[T]
	// flatM, flatV hold every M and V when the registry is flat (M[i], V[i] are views):
	// one AdamW call updates the whole model
	flatM, flatV kernels.Buffer
}

// NewAdamW returns an optimiser with zero moments (one buffer each for the whole model
// when the registry is flat).
func NewAdamW[T kernels.Float](r *Registry[T], opt kernels.AdamW, clip float64) *AdamW[T] {
	a := &AdamW[T]{Opt: opt, Clip: clip, reg: r}
	if _, _, ok := r.Flat(); ok {
		a.flatM, a.flatV = r.Dev.Alloc(r.flatLen()), r.Dev.Alloc(r.flatLen())
		a.M, a.V = r.views(a.flatM), r.views(a.flatV)
		return a
	}
	for _, p := range r.Params {
		a.M = append(a.M, r.Dev.Alloc(p.Size()))
		a.V = append(a.V, r.Dev.Alloc(p.Size()))
	}
	return a
}

// Update applies one step with the current gradients and returns the gradient norm
// before clipping. A non-finite norm skips the update and is returned as is.
func (a *AdamW[T]) Update() float64 { return a.UpdateEMA(nil) }

// UpdateEMA is Update, then, when the step was taken, e.Update, fused into one pass over
// the weights (kernels.Device.AdamWEMA). e nil: no EMA.
func (a *AdamW[T]) UpdateEMA(e *EMA[T]) float64 {
	norm := a.reg.GradNorm()
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	scale := 1.0
	if a.Clip > 0 && norm > a.Clip {
		scale = a.Clip / norm
	}
	a.Step++
	dev := a.reg.Dev
	// one call over the flat buffers, unless the EMA was made before Flatten (then its
	// averages are per parameter, and so are the calls; M and V are views either way)
	if w, g, ok := a.reg.Flat(); ok && a.flatM != nil && (e == nil || e.flat != nil) {
		if e == nil {
			dev.AdamW(w, g, a.flatM, a.flatV, a.Opt, a.Step, T(scale))
		} else {
			dev.AdamWEMA(w, g, a.flatM, a.flatV, e.flat, a.Opt, a.Step, T(scale), T(e.Decay))
		}
		return norm
	}
	for i, p := range a.reg.Params {
		if e == nil {
			dev.AdamW(p.W, p.G, a.M[i], a.V[i], a.Opt, a.Step, T(scale))
		} else {
			dev.AdamWEMA(p.W, p.G, a.M[i], a.V[i], e.Avg[i], a.Opt, a.Step, T(scale), T(e.Decay))
		}
	}
	return norm
}

// EMA keeps an exponential moving average of the weights of a Registry, for evaluation
// and sampling. Avg[i] matches Registry.Params[i].
type EMA[T kernels.Float] struct {
	Decay float64
	Avg   []kernels.Buffer
	reg   *Registry[T]
	flat  kernels.Buffer // every Avg when the registry is flat (Avg[i] are views)
}

// NewEMA starts the average at the current weights.
func NewEMA[T kernels.Float](r *Registry[T], decay float64) *EMA[T] {
	e := &EMA[T]{Decay: decay, reg: r}
	if w, _, ok := r.Flat(); ok {
		e.flat = r.Dev.Alloc(r.flatLen())
		r.Dev.Copy(e.flat, w)
		e.Avg = r.views(e.flat)
		return e
	}
	for _, p := range r.Params {
		b := r.Dev.Alloc(p.Size())
		r.Dev.Copy(b, p.W)
		e.Avg = append(e.Avg, b)
	}
	return e
}

// Update blends the current weights into the average.
func (e *EMA[T]) Update() {
	if w, _, ok := e.reg.Flat(); ok && e.flat != nil {
		e.reg.Dev.EMA(e.flat, w, T(e.Decay))
		return
	}
	for i, p := range e.reg.Params {
		e.reg.Dev.EMA(e.Avg[i], p.W, T(e.Decay))
	}
}

// Swap exchanges the live weights and the average (call twice to undo), so that the same
// model object samples with the EMA weights.
func (e *EMA[T]) Swap() {
	for i, p := range e.reg.Params {
		p.W, e.Avg[i] = e.Avg[i], p.W
	}
	if e.flat != nil {
		e.reg.flatW, e.flat = e.flat, e.reg.flatW
	}
}
