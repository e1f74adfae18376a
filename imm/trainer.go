package imm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
)

// TrainConfig is the optimisation part of a run.
type TrainConfig struct {
	Objective   string  `json:"objective"` // "imm" or "fm" (flow-matching baseline)
	Batch       int     `json:"batch"`     // particles per step (a multiple of M for imm)
	Steps       int     `json:"steps"`
	LR          float64 `json:"lr"`
	WeightDecay float64 `json:"weight_decay"`
	Clip        float64 `json:"clip"`      // global gradient-norm clip, 0 = off
	EMADecay    float64 `json:"ema_decay"` // 0.9999 by default
	Seed        uint64  `json:"seed"`
	// MaxBadSteps stops training (a *FaultError) after this many consecutive steps with a
	// non-finite loss or gradient norm; 0 means DefaultMaxBadSteps.
	MaxBadSteps int `json:"max_bad_steps,omitempty"`
	// GroupLabels says that every group of M particles of a labelled batch shares one
	// label (the caller composes such batches): Update checks it, and label dropout then
	// drops a whole group's label or none, so that each group's MMD compares samples of
	// one conditional distribution, p(x | c) or p(x).
	GroupLabels bool `json:"group_labels,omitempty"`
	// LRSchedule shapes the learning rate over the run: constant ("" or "constant") or
	// cosine, LR * (1 + cos(pi * p)) / 2 with p the fraction of the steps after the warmup
	// done, falling to 0 at Steps. It depends only on the step, so a resumed run takes the
	// same rates; a resume with more --steps stretches the cosine from that step on.
	LRSchedule string `json:"lr_schedule,omitempty"`
	// Warmup ramps the learning rate linearly from LR/Warmup at step 1 to LR at step
	// Warmup (0: no warmup), before any schedule.
	Warmup int `json:"warmup,omitempty"`
}

// LRAt is the learning rate of training step step (1 for the first update).
func (c TrainConfig) LRAt(step int) float64 {
	lr := c.LR
	if c.Warmup > 0 && step < c.Warmup {
		return lr * float64(step) / float64(c.Warmup)
	}
	if c.LRSchedule == "cosine" && c.Steps > c.Warmup {
		p := float64(step-c.Warmup) / float64(c.Steps-c.Warmup)
		p = min(max(p, 0), 1)
		lr *= (1 + math.Cos(math.Pi*p)) / 2
	}
	return lr
}

// DefaultMaxBadSteps is the default of TrainConfig.MaxBadSteps.
const DefaultMaxBadSteps = 20

// Validate reports the first problem with c for the objective config m.
func (c TrainConfig) Validate(m Config) error {
	switch {
	case c.Objective != "imm" && c.Objective != "fm":
		return fmt.Errorf("imm: objective must be imm or fm, got %q", c.Objective)
	case c.Batch < 1:
		return fmt.Errorf("imm: batch must be positive, got %d", c.Batch)
	case c.Objective == "imm" && c.Batch%m.M != 0:
		return fmt.Errorf("imm: batch %d is not a multiple of M = %d", c.Batch, m.M)
	case c.Steps < 0:
		return fmt.Errorf("imm: steps must be >= 0, got %d", c.Steps)
	case !(c.LR > 0):
		return fmt.Errorf("imm: learning rate must be positive, got %v", c.LR)
	case c.EMADecay < 0 || c.EMADecay >= 1:
		return fmt.Errorf("imm: EMA decay must be in [0,1), got %v", c.EMADecay)
	case c.MaxBadSteps < 0:
		return fmt.Errorf("imm: max bad steps must be >= 0, got %d", c.MaxBadSteps)
	case c.LRSchedule != "" && c.LRSchedule != "constant" && c.LRSchedule != "cosine":
		return fmt.Errorf("imm: learning-rate schedule must be constant or cosine, got %q", c.LRSchedule)
	case c.Warmup < 0:
		return fmt.Errorf("imm: warmup must be >= 0 steps, got %d", c.Warmup)
	}
	return nil
}

// Source draws a training batch of rows particles (row-major rows x D) and their labels
// (nil when unconditional) from rng.
type Source[T kernels.Float] func(rng *rand.Rand, rows int) ([]T, []int32)

// Batch is one training batch of Rows particles of dimension D.
type Batch[T kernels.Float] struct {
	// X holds particle i at X[i*D : (i+1)*D]; coordinates that are padding should be 0.
	X []T
	// Mask (nil = every coordinate real) has the layout of X: 1 for a coordinate in the
	// loss, 0 for padding and for held coordinates. With a mask the loss is the masked
	// one of Multimodal and the noise is zeroed where the mask and Present are both 0.
	Mask []T
	// Present (nil = none) has the layout of X: 1 where the coordinate is conditioning,
	// held at its clean value in both branches (Multimodal.Hold; OT-FM only).
	Present []T
	// Labels (nil when unconditional) has one class id in [0, Classes] per particle
	// (Classes, the null class, for an unlabelled sample).
	Labels []int32
}

// FaultError stops training after Consecutive steps in a row whose loss or gradient norm
// was not finite; Step is the last of them. The weights are those of the last good step.
type FaultError struct {
	Step, Consecutive int
	Loss, GradNorm    float64
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("imm: training stopped at step %d: %d consecutive steps with a non-finite loss or gradient (last loss %v, gradient norm %v); the weights are those of the last good step",
		e.Step, e.Consecutive, e.Loss, e.GradNorm)
}

// Trainer runs IMM or flow-matching training of a backbone (MLP, DiT or multimodal) with
// AdamW and an EMA. All its randomness comes from a PCG generator (times, data, label
// dropout) and a Philox stream (noise), both saved in checkpoints, so a resumed run
// continues bit for bit.
type Trainer[T kernels.Float] struct {
	Cfg   Config
	Train TrainConfig
	Model ModelConfig
	Dev   kernels.Device[T]
	Net   *Model[T]
	Obj   *Objective[T]
	MM    *Multimodal[T] // masked loss, held segments and held sampling on Obj
	Opt   *nn.AdamW[T]
	EMA   *nn.EMA[T]
	Step  int // completed steps, skipped ones included
	// Skipped counts the steps whose update was skipped for a non-finite loss or
	// gradient norm; BadRun is the current run of them.
	Skipped, BadRun int
	// Extra is saved in and loaded from checkpoints as string metadata (for the caller's
	// loader state, run configuration, ...); keys must not collide with the trainer's own.
	Extra map[string]string

	pcg          *rand.PCG
	rng          *rand.Rand
	noiseKey     uint64
	noiseCounter uint64 // next Philox block
	x, e         kernels.Buffer
	hostMask     []T // 1 - Present, when a batch has no Mask
}

// Metrics of one step.
type Metrics struct {
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	GradNorm float64 `json:"grad_norm"`
	Skipped  bool    `json:"skipped,omitempty"` // non-finite loss or gradient: no update
	LR       float64 `json:"lr,omitempty"`      // learning rate of the update (TrainConfig.LRAt)
}

// NewTrainer builds a trainer of the MLP backbone mc (see NewModelTrainer).
func NewTrainer[T kernels.Float](d kernels.Device[T], cfg Config, tc TrainConfig, mc nn.MLPConfig) (*Trainer[T], error) {
	return NewModelTrainer(d, cfg, tc, MLPModel(mc))
}

// NewModelTrainer builds the backbone mc (weights from the seed), optimiser and EMA.
func NewModelTrainer[T kernels.Float](d kernels.Device[T], cfg Config, tc TrainConfig, mc ModelConfig) (*Trainer[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := tc.Validate(cfg); err != nil {
		return nil, err
	}
	if tc.Objective == "fm" && cfg.Schedule != "ot-fm" {
		return nil, errors.New("imm: the flow-matching baseline needs the ot-fm schedule")
	}
	net, err := NewModel(d, mc, rand.New(rand.NewPCG(tc.Seed, 0x6e6574)))
	if err != nil {
		return nil, err
	}
	net.Reg.Flatten() // whole-model ZeroGrad, GradNorm, AdamW and EMA: one call each
	dim := mc.Dim()
	obj, err := NewObjective(cfg, d, Network(net), dim)
	if err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(tc.Seed, 0x747261696e)
	mm := NewMultimodal(obj)
	mm.Segments = SegmentBounds(cfg, mc)
	tr := &Trainer[T]{
		Cfg: cfg, Train: tc, Model: mc, Dev: d, Net: net, Obj: obj, MM: mm,
		Opt:   nn.NewAdamW(net.Reg, kernels.AdamW{LR: tc.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: tc.WeightDecay}, tc.Clip),
		EMA:   nn.NewEMA(net.Reg, tc.EMADecay),
		Extra: map[string]string{},
		pcg:   pcg, rng: rand.New(pcg), noiseKey: tc.Seed ^ 0x9e3779b97f4a7c15,
		x: d.Alloc(tc.Batch * dim), e: d.Alloc(tc.Batch * dim),
	}
	return tr, nil
}

// RNG is the trainer's host generator (data, times, dropout).
func (tr *Trainer[T]) RNG() *rand.Rand { return tr.rng }

// Null is the null-class id (Classes) used for label dropout and guidance.
func (tr *Trainer[T]) Null() int32 { return int32(tr.Model.Classes()) }

// TrainStep draws a batch from src and does one optimiser step (see Update).
func (tr *Trainer[T]) TrainStep(src Source[T]) (Metrics, error) {
	x, labels := src(tr.rng, tr.Train.Batch)
	return tr.Update(Batch[T]{X: x, Labels: labels})
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkBinary[T kernels.Float](name string, v []T, n int) error {
	if v == nil {
		return nil
	}
	if len(v) != n {
		return fmt.Errorf("imm: %s has %d values, want %d", name, len(v), n)
	}
	return nil
}

// Update does one optimiser step on b. A non-finite loss or gradient norm skips the
// update (weights, EMA and Adam moments unchanged; Metrics.Skipped set, Skipped counted);
// MaxBadSteps of them in a row return a *FaultError. The step counter advances either way.
func (tr *Trainer[T]) Update(b Batch[T]) (Metrics, error) {
	B, D := tr.Train.Batch, tr.Model.Dim()
	if len(b.X) != B*D {
		return Metrics{}, fmt.Errorf("imm: data source gave %d values, want %d x %d", len(b.X), B, D)
	}
	if err := errors.Join(checkBinary("mask", b.Mask, B*D), checkBinary("present", b.Present, B*D)); err != nil {
		return Metrics{}, err
	}
	labels := b.Labels
	if labels != nil {
		if tr.Model.Classes() == 0 {
			return Metrics{}, errors.New("imm: labelled data for an unconditional model")
		}
		if len(labels) != B {
			return Metrics{}, fmt.Errorf("imm: %d labels for %d particles", len(labels), B)
		}
		for i, l := range labels {
			if l < 0 || int(l) > tr.Model.Classes() {
				return Metrics{}, fmt.Errorf("imm: label %d of particle %d outside [0, %d] (%d is the null class)", l, i, tr.Model.Classes(), tr.Model.Classes())
			}
		}
		g := 1
		if tr.Train.GroupLabels && tr.Train.Objective == "imm" {
			g = tr.Cfg.M
			for i := range labels {
				if labels[i] != labels[i-i%g] {
					return Metrics{}, fmt.Errorf("imm: particle %d has label %d, the first of its group of %d has %d (GroupLabels)", i, labels[i], g, labels[i-i%g])
				}
			}
		}
		labels = DropGroupLabels(labels, g, tr.Null(), tr.Cfg.LabelDrop, tr.rng)
	}
	mask := b.Mask
	if mask == nil && b.Present != nil {
		tr.hostMask = slices.Grow(tr.hostMask[:0], B*D)[:B*D]
		mask = tr.hostMask
		for i, p := range b.Present {
			mask[i] = 1 - p
		}
	}
	if mask != nil && tr.Train.Objective != "imm" {
		return Metrics{}, errors.New("imm: masks and held segments need the imm objective")
	}
	tr.Dev.Write(tr.x, b.X)
	tr.Dev.RandNormal(tr.e, tr.noiseKey, tr.noiseCounter, T(tr.Cfg.SigmaD))
	tr.noiseCounter += uint64((B*D + 3) / 4)
	var mk kernels.Buffer // the mask on the device, for the noise and the loss
	if mask != nil {
		var err error
		if mk, err = tr.MM.maskNoise(tr.e, mask, B); err != nil {
			return Metrics{}, err
		}
	}
	if b.Present != nil {
		if err := tr.MM.Hold(tr.e, tr.x, b.Present, B); err != nil {
			return Metrics{}, err
		}
	}
	tr.Net.Reg.ZeroGrad()
	var loss float64
	var err error
	if tr.Train.Objective == "imm" {
		dr := tr.Cfg.DrawTimes(tr.rng, B/tr.Cfg.M)
		var yr kernels.Buffer
		if yr, err = tr.Obj.Target(tr.x, tr.e, dr, labels, tr.Null()); err != nil {
			return Metrics{}, err
		}
		if mask != nil {
			var rows int
			if rows, err = tr.Obj.check(tr.x, tr.e, dr, labels); err == nil {
				loss, err = tr.MM.loss(tr.x, tr.e, mask, mk, dr, labels, yr, rows, true)
			}
		} else {
			loss, err = tr.Obj.Loss(tr.x, tr.e, dr, labels, yr, true)
		}
	} else {
		ts := make([]float64, B)
		for i := range ts {
			ts[i] = tr.Cfg.Eps + (tr.Cfg.T-tr.Cfg.Eps)*tr.rng.Float64()
		}
		loss, err = tr.Obj.FMLoss(tr.x, tr.e, ts, labels, true)
	}
	if err != nil {
		return Metrics{}, err
	}
	tr.Step++
	m := Metrics{Step: tr.Step, Loss: loss, GradNorm: math.NaN()}
	if finite(loss) {
		tr.Opt.Opt.LR = tr.Train.LRAt(tr.Step)
		m.LR = tr.Opt.Opt.LR
		// AdamW and the EMA in one pass; both skipped when the norm is not finite
		m.GradNorm = tr.Opt.UpdateEMA(tr.EMA)
	}
	if !finite(loss) || !finite(m.GradNorm) {
		m.Skipped = true
		tr.Skipped++
		tr.BadRun++
		limit := tr.Train.MaxBadSteps
		if limit == 0 {
			limit = DefaultMaxBadSteps
		}
		if tr.BadRun >= limit {
			return m, &FaultError{Step: tr.Step, Consecutive: tr.BadRun, Loss: loss, GradNorm: m.GradNorm}
		}
		return m, nil
	}
	tr.BadRun = 0
	return m, nil
}

// Sample draws n samples with the current (or, with ema, the averaged) weights: x_T ~
// N(0, sigma_d^2) from the Philox stream with the given key, then sp. The result is
// row-major n x D.
func (tr *Trainer[T]) Sample(n int, sp Sampler, key uint64, ema bool) ([]T, error) {
	return tr.SampleHeld(n, sp, key, ema, nil, nil)
}

// SampleHeld is Sample with conditioning: where present is 1 (layout of n particles x D)
// the coordinates are held at their values in clean (Multimodal.SampleHeld, pushforward
// sampler). With present nil it is Sample.
func (tr *Trainer[T]) SampleHeld(n int, sp Sampler, key uint64, ema bool, clean, present []T) ([]T, error) {
	if n < 1 {
		return nil, fmt.Errorf("imm: sample count must be positive, got %d", n)
	}
	D := tr.Model.Dim()
	if present != nil && (len(present) != n*D || len(clean) != n*D) {
		return nil, fmt.Errorf("imm: held sampling of %d particles of dim %d needs %d clean and present values, got %d and %d", n, D, n*D, len(clean), len(present))
	}
	if ema {
		tr.EMA.Swap()
		defer tr.EMA.Swap()
	}
	x := tr.Dev.Alloc(n * D)
	tr.Dev.RandNormal(x, key, 0, T(tr.Cfg.SigmaD))
	if sp.Kind == "restart" && sp.Key == 0 {
		sp.Key = key + 1
	}
	if sp.Labels != nil && sp.Null == 0 {
		sp.Null = tr.Null()
	}
	var err error
	if present != nil {
		cb := tr.Dev.Alloc(n * D)
		tr.Dev.Write(cb, clean)
		err = tr.MM.SampleHeld(x, cb, present, n, sp)
	} else {
		err = tr.Obj.Sample(x, n, sp)
	}
	if err != nil {
		return nil, err
	}
	out := make([]T, n*D)
	tr.Dev.Read(out, x)
	return out, nil
}
