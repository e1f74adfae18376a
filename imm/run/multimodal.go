package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/shards"
)

// Size is a named width of the multimodal backbone.
type Size struct {
	Width, Depth, Heads, Freq int
	Patch                     int // default image patch side P for this size
}

// Sizes of the multimodal backbone: tiny and small for CPU runs, S/2 and B/2 with the
// trunks of DiT-S/2 and DiT-B/2 (patch 2) for GPUs.
var Sizes = map[string]Size{
	"tiny":  {Width: 64, Depth: 2, Heads: 4, Freq: 64, Patch: 4},
	"small": {Width: 128, Depth: 4, Heads: 4, Freq: 128, Patch: 4},
	"S/2":   {Width: 384, Depth: 12, Heads: 6, Freq: 256, Patch: 2},
	"B/2":   {Width: 768, Depth: 12, Heads: 12, Freq: 256, Patch: 2},
}

// SizeNames lists Sizes in order of width.
var SizeNames = []string{"tiny", "small", "S/2", "B/2"}

// Options configure a multimodal training run (immtrain multimodal).
type Options struct {
	Data      string // shard directory (index.json)
	Artefacts string // the immdata encode output directory holding the artefacts; "" = Data
	Out       string // run directory
	Size      string // a key of Sizes
	Layout    mmdata.Options
	IMM       imm.Config
	Train     imm.TrainConfig
	CkptEvery int     // checkpoint period in steps (0: only at the end and on interrupt)
	EvalEvery int     // sample-sheet period in steps (0: only at the end)
	CFG       float64 // classifier-free guidance weight of the sample sheets (1 = none)
	// HoldProb is the probability that a training sample has a random proper subset of
	// its modalities held as clean conditioning (Multimodal.Hold), so that the model
	// also learns to generate missing modalities given present ones.
	HoldProb    float64
	SampleSteps []int // sampling-step counts of the sheets; default 1, 2, 4, 8
	SampleN     int   // samples per sheet row; default 8
	// Resume continues the run in Out from its newest good checkpoint with the settings
	// of Out/config.json; with SetSteps, Train.Steps replaces the run's step count.
	Resume, SetSteps bool

	// OnStep, when set, is called after every completed step (tests use it to interrupt
	// a run at a chosen step).
	OnStep func(step int)

	Device     kernels.Device[float32]
	DeviceInfo string
	Progress   io.Writer // terminal for the progress bar, or nil
	Log        io.Writer // plain progress and warning lines, or nil
}

// DefaultOptions are the documented defaults (sized for the demo on 2 CPU cores). Two
// depart from DESIGN.md section 5 for small CPU budgets: the mapping exponent k is 4,
// not 12 (with eta_max = 160 the step 160/2^4 = 10 in eta(t) makes r = s, the data
// path itself, for t below 0.91), and the group size M is 2, not 4: in the MMD
// gradient of a particle only its own pair (y_t^j, y_r^j) carries its sample's signal,
// the M-1 cross pairs add noise, and on the image-only shapes corpus M = 4 stayed at
// chance where M = 2 learned the image colour of the label in the same 3000 steps
// (docs/multimodal.md, "Before the recipe"). Pass --group 4 --k 12 for the
// paper's setting. The kernel is "modality" (one Laplace kernel per modality,
// multiplied), not the paper's one norm over the whole particle: with one norm a
// modality with a small residual got a small share of the gradient, and adding text took
// the image's label agreement from 0.73 to 0.23 (docs/multimodal.md, "The demo recipe").
func DefaultOptions() Options {
	c := imm.DefaultConfig()
	c.K = 4
	c.M = 2
	c.Kernel = "modality"
	return Options{
		Size: "tiny", IMM: c,
		Train:     imm.TrainConfig{Objective: "imm", Batch: 32, Steps: 1200, LR: 2e-3, Clip: 1, EMADecay: 0.99, Seed: 1},
		CkptEvery: 100, EvalEvery: 400, CFG: 1.5, HoldProb: 0.25, SampleSteps: []int{1, 2, 4, 8}, SampleN: 8,
	}
}

// Config is a run's config.json: everything needed to rebuild the layout and the model
// for sampling and evaluation, and to check that a resumed run is the same run.
type Config struct {
	Data        string          `json:"data"`
	Artefacts   string          `json:"artefacts"`
	Size        string          `json:"size"`
	Layout      mmdata.Options  `json:"layout"` // Stats set: the normalisation the run trained with
	Labels      []string        `json:"labels,omitempty"`
	Model       imm.ModelConfig `json:"model"`
	IMM         imm.Config      `json:"imm"`
	Train       imm.TrainConfig `json:"train"`
	CkptEvery   int             `json:"ckpt_every"`
	EvalEvery   int             `json:"eval_every"`
	CFG         float64         `json:"cfg"`
	HoldProb    float64         `json:"hold_prob"`
	SampleSteps []int           `json:"sample_steps"`
	SampleN     int             `json:"sample_n"`
	Device      string          `json:"device"`
}

// Summary of a training run.
type Summary struct {
	Steps       int     `json:"steps"`
	FinalLoss   float64 `json:"final_loss"`
	Skipped     int     `json:"skipped_steps"`
	Seconds     float64 `json:"train_seconds"` // this invocation
	SamplesPerS float64 `json:"samples_per_s"`
	Params      int     `json:"parameters"`
	Dim         int     `json:"particle_dim"`
	Checkpoint  string  `json:"checkpoint"`
	Sheet       string  `json:"sheet"`
}

// ErrInterrupted wraps the context error when a run is stopped by a signal; the
// checkpoint written on the way out is named in the message.
var ErrInterrupted = errors.New("run: interrupted")

// Validate reports the first problem with o.
func (o Options) Validate() error {
	if _, ok := Sizes[o.Size]; !ok {
		return fmt.Errorf("run: unknown model size %q (want one of %s)", o.Size, strings.Join(SizeNames, ", "))
	}
	switch {
	case o.Data == "" && !o.Resume:
		return errors.New("run: no shard directory (--data)")
	case o.Out == "":
		return errors.New("run: no run directory (--out)")
	case o.CkptEvery < 0 || o.EvalEvery < 0:
		return fmt.Errorf("run: checkpoint and eval periods must be >= 0, got %d and %d", o.CkptEvery, o.EvalEvery)
	case o.HoldProb < 0 || o.HoldProb > 1:
		return fmt.Errorf("run: hold probability must be in [0,1], got %v", o.HoldProb)
	case o.CFG < 0:
		return fmt.Errorf("run: guidance weight must be >= 0, got %v", o.CFG)
	case o.SampleN < 1:
		return fmt.Errorf("run: samples per sheet must be >= 1, got %d", o.SampleN)
	case o.Train.Objective != "imm":
		return fmt.Errorf("run: multimodal training uses the imm objective, got %q", o.Train.Objective)
	}
	for _, s := range o.SampleSteps {
		if s < 1 {
			return fmt.Errorf("run: sampling steps must be positive, got %v", o.SampleSteps)
		}
	}
	if err := o.IMM.Validate(); err != nil {
		return err
	}
	return o.Train.Validate(o.IMM)
}

// ConfigPath is the config file of run directory dir.
func ConfigPath(dir string) string { return filepath.Join(dir, "config.json") }

// ReadConfig reads dir/config.json.
func ReadConfig(dir string) (*Config, error) {
	b, err := os.ReadFile(ConfigPath(dir))
	if err != nil {
		return nil, fmt.Errorf("run: %s is not a run directory: %w", dir, err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("run: %s: %w", ConfigPath(dir), err)
	}
	if err := c.Model.Validate(); err != nil {
		return nil, fmt.Errorf("run: %s: %w", ConfigPath(dir), err)
	}
	return &c, nil
}

// OpenLayout builds the particle layout of a run from its config.
func (c *Config) OpenLayout() (*mmdata.Layout, error) {
	lo := c.Layout
	lo.ArtefactsDir = c.Artefacts
	l, err := mmdata.NewLayout(c.Data, lo)
	if err != nil {
		return nil, err
	}
	if l.Dim() != c.Model.Dim() {
		return nil, fmt.Errorf("run: the shards in %s give particles of dim %d, the run's model takes %d", c.Data, l.Dim(), c.Model.Dim())
	}
	return l, nil
}

// NewConfig makes the run config for o: it reads the shards' layout (computing the
// normalisation statistics) and sizes the backbone.
func NewConfig(o Options) (*Config, *mmdata.Layout, error) {
	sz := Sizes[o.Size]
	lo := o.Layout
	if lo.ImagePatch == 0 {
		lo.ImagePatch = sz.Patch
	}
	lo.ArtefactsDir = o.Artefacts
	if lo.ArtefactsDir == "" {
		lo.ArtefactsDir = o.Data
	}
	l, err := mmdata.NewLayout(o.Data, lo)
	if err != nil {
		return nil, nil, err
	}
	st := l.Stats
	lo = l.Opts
	lo.Stats = &st
	lo.ArtefactsDir = ""
	mc := nn.MultimodalConfig{Segments: l.Segments, Width: sz.Width, Depth: sz.Depth, Heads: sz.Heads, MLPRatio: 4, Freq: sz.Freq, Classes: l.Classes}
	c := &Config{
		Data: o.Data, Artefacts: o.Artefacts, Size: o.Size, Layout: lo, Labels: l.Labels,
		Model: imm.ModelConfig{Multimodal: &mc}, IMM: o.IMM, Train: o.Train,
		CkptEvery: o.CkptEvery, EvalEvery: o.EvalEvery, CFG: o.CFG, HoldProb: o.HoldProb,
		SampleSteps: o.SampleSteps, SampleN: o.SampleN, Device: o.DeviceInfo,
	}
	if c.Artefacts == "" {
		c.Artefacts = o.Data
	}
	if len(c.SampleSteps) == 0 {
		c.SampleSteps = []int{1, 2, 4, 8}
	}
	return c, l, c.Model.Validate()
}

// Hold chooses, for each of n particles with probability p, a random non-empty proper
// subset of the segments it has (any real coordinate in mask) to hold as conditioning:
// it returns present (1 on the real coordinates of held segments) and clears those
// coordinates in mask, or returns nil when nothing is held. All draws come from rng.
// With g > 1 the draws are made per group of g consecutive particles, on the segments
// its first particle has, and the other particles hold the same segments where that is
// a non-empty proper subset of theirs.
func Hold(rng *rand.Rand, p float64, segs []nn.Segment, g int, mask []float32, n int) []float32 {
	if p <= 0 || len(segs) < 2 {
		return nil
	}
	cfg := nn.MultimodalConfig{Segments: segs}
	D := cfg.Dim()
	has := func(i int) (have []int) {
		for k, s := range segs {
			off := cfg.Offset(k)
			if slices.Contains(mask[i*D+off:i*D+off+s.Tokens*s.Features], 1) {
				have = append(have, k)
			}
		}
		return have
	}
	var present []float32
	var held []int // segments the current group holds
	for i := range n {
		if i%g == 0 {
			held = held[:0]
			if rng.Float64() >= p {
				continue
			}
			have := has(i)
			if len(have) < 2 {
				continue
			}
			// a subset of have other than none and all: bits 1 .. 2^len-2
			bits := 1 + rng.IntN(1<<len(have)-2)
			for j, k := range have {
				if bits&(1<<j) != 0 {
					held = append(held, k)
				}
			}
		}
		if len(held) == 0 {
			continue
		}
		if i%g != 0 && !isProperSubset(held, has(i)) {
			continue
		}
		if present == nil {
			present = make([]float32, n*D)
		}
		for _, k := range held {
			off := cfg.Offset(k)
			for c := i*D + off; c < i*D+off+segs[k].Tokens*segs[k].Features; c++ {
				present[c] = mask[c]
				mask[c] = 0
			}
		}
	}
	return present
}

// isProperSubset reports whether every element of a is in b and b has more.
func isProperSubset(a, b []int) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return len(a) < len(b)
}

// loaderState is the checkpoint metadata key of the loader position.
const loaderState = "loader_state"

// runConfigKey is the checkpoint metadata key of the run config.
const runConfigKey = "run_config"

// Train runs (or, with o.Resume, continues) multimodal training into o.Out: config.json,
// metrics.jsonl, loss.png, ckpt/step-NNNNNN.safetensors (+ latest), samples/step-NNNNNN/
// sheets (mmdata.WriteSheet, EMA weights) and summary.json.
func Train(ctx context.Context, o Options) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	dev := o.Device
	if dev == nil {
		return nil, errors.New("run: no device")
	}
	ck := Checkpoints{Dir: filepath.Join(o.Out, "ckpt")}
	list, err := ck.List()
	if err != nil {
		return nil, err
	}
	var cfg *Config
	var layout *mmdata.Layout
	var tr *imm.Trainer[float32]
	if o.Resume && len(list) > 0 {
		if cfg, err = ReadConfig(o.Out); err != nil {
			return nil, err
		}
		if o.SetSteps {
			cfg.Train.Steps = o.Train.Steps // a resumed run may be extended
		}
		if layout, err = cfg.OpenLayout(); err != nil {
			return nil, err
		}
		var path string
		tr, path, err = LoadNewest(ck, dev, func(p string, err error) {
			if o.Log != nil {
				fmt.Fprintf(o.Log, "warning: skipping checkpoint %s: %v; falling back to the previous one\n", p, err)
			}
		})
		if err != nil {
			return nil, err
		}
		if !tr.Model.Equal(cfg.Model) || tr.Train.Batch != cfg.Train.Batch || tr.Train.Seed != cfg.Train.Seed {
			return nil, fmt.Errorf("run: checkpoint %s was written by a different configuration than %s", path, ConfigPath(o.Out))
		}
		tr.Train.Steps = cfg.Train.Steps
		if o.Log != nil {
			fmt.Fprintf(o.Log, "resuming from %s (step %d)\n", path, tr.Step)
		}
	} else {
		if len(list) > 0 {
			return nil, fmt.Errorf("run: %s already holds checkpoints; pass --resume to continue it or choose another --out", o.Out)
		}
		if cfg, layout, err = NewConfig(o); err != nil {
			return nil, err
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := WriteAtomic(ConfigPath(o.Out), append(b, '\n')); err != nil {
			return nil, err
		}
		if tr, err = imm.NewModelTrainer(dev, cfg.IMM, cfg.Train, cfg.Model); err != nil {
			return nil, err
		}
	}
	cj, _ := json.Marshal(cfg)
	tr.Extra[runConfigKey] = string(cj)

	lopts := layout.LoaderOptions(shards.LoaderOptions{Seed: cfg.Train.Seed, GlobalBatch: cfg.Train.Batch, DropLast: true, ReuseBatches: true, Prefetch: 16 << 20})
	loader, err := shards.NewLoader(cfg.Data, lopts)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	if loader.StepsPerEpoch() < 1 {
		return nil, fmt.Errorf("run: the training split of %s has %d samples, fewer than one batch of %d", cfg.Data, loader.Samples(), cfg.Train.Batch)
	}
	if s, ok := tr.Extra[loaderState]; ok {
		var st shards.State
		if err := json.Unmarshal([]byte(s), &st); err != nil {
			return nil, fmt.Errorf("run: checkpoint loader state: %w", err)
		}
		if err := loader.Resume(st); err != nil {
			return nil, err
		}
	}

	metricsPath := filepath.Join(o.Out, "metrics.jsonl")
	history, err := ReadMetrics(metricsPath)
	if err != nil {
		return nil, err
	}
	history = TrimMetrics(history, "", tr.Step)
	if err := WriteMetrics(metricsPath, history); err != nil {
		return nil, err
	}
	ml, err := AppendMetrics(metricsPath)
	if err != nil {
		return nil, err
	}
	defer ml.Close()

	D, B := layout.Dim(), cfg.Train.Batch
	batch := func(x, mask []float32) ([]int32, error) {
		b, err := loader.Next()
		if err != nil {
			return nil, err
		}
		return layout.Assemble(b, x, mask)
	}
	holdGroup := 1
	if cfg.Train.GroupLabels {
		if layout.Classes == 0 {
			return nil, fmt.Errorf("run: label groups (--group-labels) need labelled shards; %s has no labels", cfg.Data)
		}
		g := newLabelGroups(layout, B, cfg.IMM.M)
		batch = func(x, mask []float32) ([]int32, error) { return g.next(loader, x, mask) }
		holdGroup = cfg.IMM.M
	}
	pre := newPrefetcher(B*D, 1, batch, loader.State)
	defer pre.stop() // before loader.Close (deferred earlier, so run later)
	sum := &Summary{Params: tr.Net.Reg.Count(), Dim: D}
	save := func() (string, error) {
		if err := ml.Flush(); err != nil {
			return "", err
		}
		return Save(ck, tr)
	}
	prog := NewProgress("multimodal", cfg.Train.Steps, tr.Step, o.Progress, o.Log)
	start, first := time.Now(), tr.Step
	var last imm.Metrics
	sheetStep := -1
	for tr.Step < cfg.Train.Steps {
		if err := ctx.Err(); err != nil {
			path, serr := save()
			prog.Stop(false)
			if serr != nil {
				return nil, errors.Join(fmt.Errorf("%w at step %d: %w", ErrInterrupted, tr.Step, err), serr)
			}
			return nil, fmt.Errorf("%w at step %d (checkpoint %s; continue with --resume): %w", ErrInterrupted, tr.Step, path, err)
		}
		pb := pre.next()
		if pb.err != nil {
			prog.Stop(false)
			return nil, pb.err
		}
		present := Hold(tr.RNG(), cfg.HoldProb, layout.Segments, holdGroup, pb.mask, B)
		m, err := tr.Update(imm.Batch[float32]{X: pb.x, Mask: pb.mask, Present: present, Labels: pb.labels})
		st, _ := json.Marshal(pb.state)
		pre.release(pb)
		tr.Extra[loaderState] = string(st)
		el := time.Since(start).Seconds()
		sps := float64((tr.Step-first)*B) / max(el, 1e-9)
		if m.Step > 0 {
			rec := Record{Step: m.Step, Loss: m.Loss, GradNorm: m.GradNorm, LR: m.LR, Skipped: m.Skipped, SamplesPerS: sps, Elapsed: el}
			history = append(history, rec)
			if aerr := ml.Add(rec); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
		if err != nil {
			prog.Stop(false)
			var fe *imm.FaultError
			if errors.As(err, &fe) {
				good, _ := ck.List()
				if len(good) > 0 {
					return nil, fmt.Errorf("%w; the last good checkpoint is %s", err, good[0])
				}
			}
			return nil, err
		}
		if m.Skipped {
			prog.Logf("warning: step %d: non-finite loss %v or gradient norm %v; update skipped (%d so far)", m.Step, m.Loss, m.GradNorm, tr.Skipped)
		} else {
			last = m
		}
		prog.Update(tr.Step, m.Loss, sps)
		if o.OnStep != nil {
			o.OnStep(tr.Step)
		}
		if cfg.CkptEvery > 0 && tr.Step%cfg.CkptEvery == 0 && tr.Step < cfg.Train.Steps {
			if _, err := save(); err != nil {
				prog.Stop(false)
				return nil, err
			}
		}
		if cfg.EvalEvery > 0 && tr.Step%cfg.EvalEvery == 0 && tr.Step < cfg.Train.Steps {
			if _, err := WriteSheet(o.Out, cfg, layout, tr); err != nil {
				prog.Stop(false)
				return nil, err
			}
			sheetStep = tr.Step
		}
	}
	prog.Stop(true)
	sum.Seconds = time.Since(start).Seconds()
	if n := tr.Step - first; n > 0 {
		sum.SamplesPerS = float64(n*B) / sum.Seconds
	}
	if sum.Checkpoint, err = save(); err != nil {
		return nil, err
	}
	if sheetStep != tr.Step {
		if sum.Sheet, err = WriteSheet(o.Out, cfg, layout, tr); err != nil {
			return nil, err
		}
	} else {
		sum.Sheet = SheetDir(o.Out, tr.Step)
	}
	if err := LossPNG(filepath.Join(o.Out, "loss.png"), history, func(string) string { return "IMM" }); err != nil {
		return nil, err
	}
	sum.Steps, sum.FinalLoss, sum.Skipped = tr.Step, last.Loss, tr.Skipped
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := WriteAtomic(filepath.Join(o.Out, "summary.json"), append(b, '\n')); err != nil {
		return nil, err
	}
	return sum, nil
}

// SheetDir is the sample-sheet directory of step in run directory dir.
func SheetDir(dir string, step int) string {
	return filepath.Join(dir, "samples", fmt.Sprintf("step-%06d", step))
}

// SheetLabels are the conditioning labels of n sheet samples: 0, 1, ... cycling through
// the classes, or nil for an unconditional model.
func SheetLabels(classes, n int) []int32 {
	if classes == 0 {
		return nil
	}
	l := make([]int32, n)
	for i := range l {
		l[i] = int32(i % classes)
	}
	return l
}

// SheetKey is the Philox key of the sheets' initial noise: every sheet of a run starts
// from the same x_T, so sheets of different steps are comparable.
const SheetKey = 0x5eed5eed

// WriteSheet samples cfg.SampleN particles with the EMA weights at each of
// cfg.SampleSteps steps (labels from SheetLabels, guidance cfg.CFG), decodes them and
// writes the sheet into SheetDir(dir, tr.Step).
func WriteSheet(dir string, cfg *Config, layout *mmdata.Layout, tr *imm.Trainer[float32]) (string, error) {
	out := SheetDir(dir, tr.Step)
	labels := SheetLabels(cfg.Model.Classes(), cfg.SampleN)
	media, err := Generate(layout, tr, cfg.SampleSteps, cfg.SampleN, labels, cfg.CFG, SheetKey, nil, nil)
	if err != nil {
		return "", err
	}
	if err := mmdata.WriteSheet(out, cfg.SampleSteps, media); err != nil {
		return "", err
	}
	return out, nil
}

// Generate samples n particles with the EMA weights at each step count of steps (same
// initial noise for every count), with labels (nil: unconditional) and guidance weight
// cfgW, holding the coordinates where present is 1 at clean (both nil: nothing held),
// and decodes them.
func Generate(layout *mmdata.Layout, tr *imm.Trainer[float32], steps []int, n int, labels []int32, cfgW float64, key uint64, clean, present []float32) ([]*mmdata.Media, error) {
	var out []*mmdata.Media
	for _, s := range steps {
		sp := imm.Sampler{Steps: s, Guide: cfgW, Labels: labels, Null: tr.Null()}
		if labels == nil {
			sp.Guide = 1
		}
		x, err := tr.SampleHeld(n, sp, key, true, clean, present)
		if err != nil {
			return nil, err
		}
		m, err := layout.Decode(x, n)
		if err != nil {
			return nil, fmt.Errorf("run: decode samples of %d steps: %w", s, err)
		}
		out = append(out, m)
	}
	return out, nil
}
