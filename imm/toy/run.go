package toy

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/imm/run"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// Options configure a toy run. DefaultOptions gives the documented defaults.
type Options struct {
	Dataset    string
	Out        string   // output directory
	Objectives []string // "imm", "fm" (both by default)
	Arch       string   // network: mlp or resmlp
	Width      int
	Depth      int
	Freq       int // sinusoidal features per time
	Batch      int
	Steps      int
	LR         float64
	Schedule   string  // ot-fm or cosine (cosine only for imm)
	Param      string  // euler-fm, simple-edm or identity
	SecondTime string  // s or stride
	M          int     // IMM particles per group
	K          int     // r(s,t) step exponent
	WeightA    float64 // a of w(s,t)
	EMADecay   float64
	SampleEMA  bool   // sample with the EMA weights instead of the live ones
	Sampler    string // IMM sampler: pushforward or restart
	Seed       uint64
	EvalN      int                     // samples for the energy distance
	IMMSteps   []int                   // sampling steps to evaluate for IMM
	FMSteps    []int                   // Euler steps to evaluate for flow matching
	SaveEvery  int                     // checkpoint period in steps (0: only at the end)
	Resume     bool                    // continue from OUT/<objective>.safetensors when present
	Workers    int                     // CPU goroutines (for the CPU device and the energy distance)
	Device     kernels.Device[float32] // where to train and sample; nil means kernels/cpu with Workers
	DeviceInfo string                  // what Device is and why it was chosen, recorded in summary.json
	Progress   io.Writer               // progress bar target (a terminal), or nil
	Log        io.Writer               // periodic plain progress lines when Progress is nil, or nil
}

// DefaultOptions are sized to finish both objectives in a few minutes on 2 cores.
func DefaultOptions() Options {
	return Options{
		Dataset: "checkerboard", Out: "toy-out", Objectives: []string{"imm", "fm"},
		Arch: "mlp", Width: 128, Depth: 3, Freq: 64, Batch: 512, Steps: 2000, LR: 1e-3,
		Schedule: "ot-fm", Param: "euler-fm", SecondTime: "s", M: 4, K: 12, WeightA: 2, EMADecay: 0.999, Seed: 1, EvalN: 3000,
		Sampler: "pushforward", IMMSteps: []int{1, 2, 4, 8}, FMSteps: []int{1, 2, 4, 8, 100}, SaveEvery: 500,
	}
}

// Result of one objective.
type Result struct {
	TrainSeconds   float64            `json:"train_seconds"`
	StepsPerSecond float64            `json:"steps_per_second"`
	FinalLoss      float64            `json:"final_loss"`
	Energy         map[string]float64 `json:"energy_distance"` // by number of sampling steps
}

// Summary is written to OUT/summary.json.
type Summary struct {
	Dataset    string             `json:"dataset"`
	EvalN      int                `json:"eval_samples"`
	NoiseFloor float64            `json:"noise_floor"` // energy distance between two held-out sets
	Results    map[string]*Result `json:"results"`     // by objective
	IMM        imm.Config         `json:"imm_config"`
	Model      nn.MLPConfig       `json:"model"`
	Batch      int                `json:"batch"`
	Steps      int                `json:"steps"`
	LR         float64            `json:"lr"`
	Workers    int                `json:"workers"`
	Device     string             `json:"device"` // backend and why it was chosen
	SampleEMA  bool               `json:"sample_ema"`
	Sampler    string             `json:"imm_sampler"`
	Seed       uint64             `json:"seed"`
}

// Validate reports the first problem with o.
func (o Options) Validate() error {
	if _, ok := datasets[o.Dataset]; !ok {
		return fmt.Errorf("toy: unknown dataset %q (want one of %v)", o.Dataset, Names())
	}
	for _, obj := range o.Objectives {
		if obj != "imm" && obj != "fm" {
			return fmt.Errorf("toy: objective must be imm or fm, got %q", obj)
		}
	}
	switch {
	case len(o.Objectives) == 0:
		return errors.New("toy: no objective to train")
	case o.Out == "":
		return errors.New("toy: output directory is empty")
	case o.EvalN < 2:
		return fmt.Errorf("toy: need at least 2 evaluation samples, got %d", o.EvalN)
	case o.Sampler != "pushforward" && o.Sampler != "restart":
		return fmt.Errorf("toy: IMM sampler must be pushforward or restart, got %q", o.Sampler)
	case o.SaveEvery < 0:
		return fmt.Errorf("toy: save period must be >= 0, got %d", o.SaveEvery)
	}
	for _, s := range append(append([]int{}, o.IMMSteps...), o.FMSteps...) {
		if s < 1 {
			return fmt.Errorf("toy: sampling steps must be positive, got %d", s)
		}
	}
	return nil
}

// Run trains every objective, samples, evaluates and writes the outputs into o.Out:
// metrics.jsonl, loss.png, samples_<objective>_<steps>.{npy,png}, grid.png, data.npy,
// <objective>.safetensors and summary.json.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	workers := max(o.Workers, 1)
	deviceInfo := o.DeviceInfo
	if o.Device == nil {
		deviceInfo = fmt.Sprintf("cpu: %d workers", workers)
	}
	cfg := imm.DefaultConfig()
	cfg.M, cfg.K, cfg.WeightA = o.M, o.K, o.WeightA
	cfg.Schedule, cfg.Param, cfg.SecondTime = o.Schedule, o.Param, o.SecondTime
	if cfg.Schedule == "cosine" {
		cfg.T = 0.996
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ds, err := NewDataset(o.Dataset, cfg.SigmaD)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("toy: %w", err)
	}
	mc := nn.MLPConfig{Arch: o.Arch, Dim: 2, Width: o.Width, Depth: o.Depth, Freq: o.Freq}
	if err := mc.Validate(); err != nil {
		return nil, err
	}
	held := ds.Sample(rand.New(rand.NewPCG(o.Seed, 0xe7a1)), o.EvalN)
	held2 := ds.Sample(rand.New(rand.NewPCG(o.Seed, 0xe7a2)), o.EvalN)
	sum := &Summary{Dataset: o.Dataset, EvalN: o.EvalN, NoiseFloor: EnergyDistance(held, held2, 2, workers),
		Results: map[string]*Result{}, IMM: cfg, Model: mc, Batch: o.Batch, Steps: o.Steps, LR: o.LR,
		Workers: workers, Device: deviceInfo, SampleEMA: o.SampleEMA, Sampler: o.Sampler, Seed: o.Seed}
	if err := writeNPY(filepath.Join(o.Out, "data.npy"), held, 2); err != nil {
		return nil, err
	}

	metricsPath := filepath.Join(o.Out, "metrics.jsonl")
	var history []run.Record
	if o.Resume {
		if history, err = run.ReadMetrics(metricsPath); err != nil {
			return nil, err
		}
	}
	src := func(rng *rand.Rand, n int) ([]float32, []int32) {
		x := ds.Sample(rng, n)
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32(v)
		}
		return out, nil
	}
	panels := map[string][]float64{}
	for _, obj := range o.Objectives {
		tc := imm.TrainConfig{Objective: obj, Batch: o.Batch, Steps: o.Steps, LR: o.LR, Clip: 1,
			EMADecay: o.EMADecay, Seed: o.Seed}
		dev := o.Device
		if dev == nil {
			dev = cpu.New[float32](workers)
		}
		ckpt := filepath.Join(o.Out, obj+".safetensors")
		var tr *imm.Trainer[float32]
		if _, statErr := os.Stat(ckpt); o.Resume && statErr == nil {
			if tr, err = imm.Load(dev, ckpt); err != nil {
				return nil, err
			}
			if tr.Train.Objective != obj || tr.Train.Batch != o.Batch || !tr.Model.Equal(imm.MLPModel(mc)) {
				return nil, fmt.Errorf("toy: %s was written by a different configuration (%+v, %+v)", ckpt, tr.Train, tr.Model)
			}
		} else if tr, err = imm.NewTrainer(dev, cfg, tc, mc); err != nil {
			return nil, err
		}
		// Keep the metrics of this objective up to the checkpoint, drop any after it.
		history = run.TrimMetrics(history, obj, tr.Step)
		if err := run.WriteMetrics(metricsPath, history); err != nil {
			return nil, err
		}
		res, err := train(ctx, o, obj, tr, src, ckpt, metricsPath, &history)
		if err != nil {
			return nil, err
		}
		sum.Results[obj] = res
		steps := o.IMMSteps
		kind := o.Sampler
		if obj == "fm" {
			steps, kind = o.FMSteps, "euler"
		}
		for _, n := range steps {
			s32, err := tr.Sample(o.EvalN, imm.Sampler{Kind: kind, Steps: n}, o.Seed^0x5a3d1e, o.SampleEMA)
			if err != nil {
				return nil, err
			}
			s := make([]float64, len(s32))
			for i, v := range s32 {
				s[i] = float64(v)
			}
			res.Energy[strconv.Itoa(n)] = EnergyDistance(s, held, 2, workers)
			name := fmt.Sprintf("samples_%s_%d", obj, n)
			panels[fmt.Sprintf("%s %d", obj, n)] = s
			if err := writeNPY(filepath.Join(o.Out, name+".npy"), s, 2); err != nil {
				return nil, err
			}
			title := fmt.Sprintf("%s, %d step(s): ED %.4f", map[string]string{"imm": "IMM", "fm": "FM"}[obj], n, res.Energy[strconv.Itoa(n)])
			if err := scatterPNG(filepath.Join(o.Out, name+".png"), title, s, held); err != nil {
				return nil, err
			}
		}
	}
	if err := run.LossPNG(filepath.Join(o.Out, "loss.png"), history, objectiveName); err != nil {
		return nil, err
	}
	if err := gridPNG(filepath.Join(o.Out, "grid.png"), o, held, panels, sum); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := run.WriteAtomic(filepath.Join(o.Out, "summary.json"), append(b, '\n')); err != nil {
		return nil, err
	}
	return sum, nil
}

func objectiveName(obj string) string {
	if obj == "fm" {
		return "flow matching"
	}
	return "IMM"
}

func train(ctx context.Context, o Options, obj string, tr *imm.Trainer[float32], src imm.Source[float32], ckpt, metricsPath string, history *[]run.Record) (*Result, error) {
	ml, err := run.AppendMetrics(metricsPath)
	if err != nil {
		return nil, fmt.Errorf("toy: %w", err)
	}
	closeAll := func(err error) error { return errors.Join(err, ml.Close()) }
	prog := run.NewProgress(obj, o.Steps, tr.Step, o.Progress, o.Log)
	start := time.Now()
	first := tr.Step
	var last imm.Metrics
	for tr.Step < o.Steps {
		if err := ctx.Err(); err != nil {
			saveErr := errors.Join(ml.Flush(), tr.Save(ckpt))
			prog.Stop(false)
			return nil, closeAll(errors.Join(fmt.Errorf("toy: interrupted at step %d of %s (checkpoint %s): %w", tr.Step, obj, ckpt, err), saveErr))
		}
		m, err := tr.TrainStep(src)
		if err != nil {
			prog.Stop(false)
			return nil, closeAll(err)
		}
		last = m
		el := time.Since(start).Seconds()
		rec := run.Record{Objective: obj, Step: m.Step, Loss: m.Loss, GradNorm: m.GradNorm, Skipped: m.Skipped, Elapsed: el}
		*history = append(*history, rec)
		if err := ml.Add(rec); err != nil {
			prog.Stop(false)
			return nil, closeAll(err)
		}
		prog.Update(tr.Step, m.Loss, float64((tr.Step-first)*o.Batch)/max(el, 1e-9))
		if o.SaveEvery > 0 && tr.Step%o.SaveEvery == 0 && tr.Step < o.Steps {
			if err := ml.Flush(); err != nil {
				return nil, closeAll(err)
			}
			if err := tr.Save(ckpt); err != nil {
				return nil, closeAll(err)
			}
		}
	}
	secs := time.Since(start).Seconds()
	prog.Stop(true)
	if err := closeAll(nil); err != nil {
		return nil, fmt.Errorf("toy: write metrics: %w", err)
	}
	if err := tr.Save(ckpt); err != nil {
		return nil, err
	}
	res := &Result{TrainSeconds: secs, FinalLoss: last.Loss, Energy: map[string]float64{}}
	if n := tr.Step - first; n > 0 && secs > 0 {
		res.StepsPerSecond = float64(n) / secs
	}
	return res, nil
}

// writeNPY writes x as a little-endian float32 .npy array of shape (len(x)/dim, dim).
func writeNPY(path string, x []float64, dim int) error {
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", len(x)/dim, dim)
	pad := 64 - (10+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	for range pad {
		header += " "
	}
	header += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	return run.WriteAtomic(path, b)
}
