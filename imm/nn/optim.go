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
}

// NewAdamW returns an optimiser with zero moments.
func NewAdamW[T kernels.Float](r *Registry[T], opt kernels.AdamW, clip float64) *AdamW[T] {
	a := &AdamW[T]{Opt: opt, Clip: clip, reg: r}
	for _, p := range r.Params {
		a.M = append(a.M, r.Dev.Alloc(p.Size()))
		a.V = append(a.V, r.Dev.Alloc(p.Size()))
	}
	return a
}

// Update applies one step with the current gradients and returns the gradient norm
// before clipping. A non-finite norm skips the update and is returned as is.
func (a *AdamW[T]) Update() float64 {
	norm := a.reg.GradNorm()
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	scale := 1.0
	if a.Clip > 0 && norm > a.Clip {
		scale = a.Clip / norm
	}
	a.Step++
	for i, p := range a.reg.Params {
		a.reg.Dev.AdamW(p.W, p.G, a.M[i], a.V[i], a.Opt, a.Step, T(scale))
	}
	return norm
}

// EMA keeps an exponential moving average of the weights of a Registry, for evaluation
// and sampling. Avg[i] matches Registry.Params[i].
type EMA[T kernels.Float] struct {
	Decay float64
	Avg   []kernels.Buffer
	reg   *Registry[T]
}

// NewEMA starts the average at the current weights.
func NewEMA[T kernels.Float](r *Registry[T], decay float64) *EMA[T] {
	e := &EMA[T]{Decay: decay, reg: r}
	for _, p := range r.Params {
		b := r.Dev.Alloc(p.Size())
		r.Dev.Copy(b, p.W)
		e.Avg = append(e.Avg, b)
	}
	return e
}

// Update blends the current weights into the average.
func (e *EMA[T]) Update() {
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
}
