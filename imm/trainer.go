package imm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

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
}

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
	}
	return nil
}

// Source draws a training batch of rows particles (row-major rows x D) and their labels
// (nil when unconditional) from rng.
type Source[T kernels.Float] func(rng *rand.Rand, rows int) ([]T, []int32)

// Trainer runs IMM or flow-matching training of an nn.MLP with AdamW and an EMA. All its
// randomness comes from a PCG generator (times, data, label dropout) and a Philox stream
// (noise), both saved in checkpoints, so a resumed run continues bit for bit.
type Trainer[T kernels.Float] struct {
	Cfg   Config
	Train TrainConfig
	Model nn.MLPConfig
	Dev   kernels.Device[T]
	Net   *nn.MLP[T]
	Obj   *Objective[T]
	Opt   *nn.AdamW[T]
	EMA   *nn.EMA[T]
	Step  int // completed steps

	pcg          *rand.PCG
	rng          *rand.Rand
	noiseKey     uint64
	noiseCounter uint64 // next Philox block
	x, e         kernels.Buffer
}

// Metrics of one step.
type Metrics struct {
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	GradNorm float64 `json:"grad_norm"`
}

// NewTrainer builds the network (weights from the seed), optimiser and EMA.
func NewTrainer[T kernels.Float](d kernels.Device[T], cfg Config, tc TrainConfig, mc nn.MLPConfig) (*Trainer[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := tc.Validate(cfg); err != nil {
		return nil, err
	}
	if tc.Objective == "fm" && cfg.Schedule != "ot-fm" {
		return nil, errors.New("imm: the flow-matching baseline needs the ot-fm schedule")
	}
	net, err := nn.NewMLP(d, mc, rand.New(rand.NewPCG(tc.Seed, 0x6e6574)))
	if err != nil {
		return nil, err
	}
	obj, err := NewObjective(cfg, d, net, mc.Dim)
	if err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(tc.Seed, 0x747261696e)
	tr := &Trainer[T]{
		Cfg: cfg, Train: tc, Model: mc, Dev: d, Net: net, Obj: obj,
		Opt: nn.NewAdamW(net.Reg, kernels.AdamW{LR: tc.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: tc.WeightDecay}, tc.Clip),
		EMA: nn.NewEMA(net.Reg, tc.EMADecay),
		pcg: pcg, rng: rand.New(pcg), noiseKey: tc.Seed ^ 0x9e3779b97f4a7c15,
		x: d.Alloc(tc.Batch * mc.Dim), e: d.Alloc(tc.Batch * mc.Dim),
	}
	return tr, nil
}

// RNG is the trainer's host generator (data, times, dropout).
func (tr *Trainer[T]) RNG() *rand.Rand { return tr.rng }

// TrainStep draws a batch from src and does one optimiser step.
func (tr *Trainer[T]) TrainStep(src Source[T]) (Metrics, error) {
	B, D := tr.Train.Batch, tr.Model.Dim
	data, labels := src(tr.rng, B)
	if len(data) != B*D {
		return Metrics{}, fmt.Errorf("imm: data source gave %d values, want %d x %d", len(data), B, D)
	}
	if labels != nil {
		if tr.Model.Classes == 0 {
			return Metrics{}, errors.New("imm: labelled data for an unconditional model")
		}
		labels = DropLabels(labels, int32(tr.Model.Classes), tr.Cfg.LabelDrop, tr.rng)
	}
	tr.Dev.Write(tr.x, data)
	tr.Dev.RandNormal(tr.e, tr.noiseKey, tr.noiseCounter, T(tr.Cfg.SigmaD))
	tr.noiseCounter += uint64((B*D + 3) / 4)
	tr.Net.Reg.ZeroGrad()
	var loss float64
	var err error
	if tr.Train.Objective == "imm" {
		dr := tr.Cfg.DrawTimes(tr.rng, B/tr.Cfg.M)
		var yr kernels.Buffer
		if yr, err = tr.Obj.Target(tr.x, tr.e, dr, labels, int32(tr.Model.Classes)); err != nil {
			return Metrics{}, err
		}
		loss, err = tr.Obj.Loss(tr.x, tr.e, dr, labels, yr, true)
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
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return Metrics{}, fmt.Errorf("imm: loss is %v at step %d", loss, tr.Step+1)
	}
	norm := tr.Opt.Update()
	tr.EMA.Update()
	tr.Step++
	return Metrics{Step: tr.Step, Loss: loss, GradNorm: norm}, nil
}

// Sample draws n samples with the current (or, with ema, the averaged) weights: x_T ~
// N(0, sigma_d^2) from the Philox stream with the given key, then sp. The result is
// row-major n x D.
func (tr *Trainer[T]) Sample(n int, sp Sampler, key uint64, ema bool) ([]T, error) {
	if n < 1 {
		return nil, fmt.Errorf("imm: sample count must be positive, got %d", n)
	}
	if ema {
		tr.EMA.Swap()
		defer tr.EMA.Swap()
	}
	D := tr.Model.Dim
	x := tr.Dev.Alloc(n * D)
	tr.Dev.RandNormal(x, key, 0, T(tr.Cfg.SigmaD))
	if sp.Kind == "restart" && sp.Key == 0 {
		sp.Key = key + 1
	}
	if err := tr.Obj.Sample(x, n, sp); err != nil {
		return nil, err
	}
	out := make([]T, n*D)
	tr.Dev.Read(out, x)
	return out, nil
}
