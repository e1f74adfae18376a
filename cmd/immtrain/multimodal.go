package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/run"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/kernels/device"
	"github.com/immkit/immkit/testdata/gen"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newMultimodalCmd) }

type multimodalOpts struct {
	run.Options
	demo       bool
	demoN      int
	demoEvalN  int
	demoBG     string
	demoLayout string
	deviceName string
	modalities string
	g          *cli.Global
}

func newMultimodalCmd(g *cli.Global) *cobra.Command {
	o := &multimodalOpts{Options: run.DefaultOptions(), g: g}
	d := run.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "multimodal",
		Short: "Train one few-step IMM model over image, audio and text shards (CPU or GPU)",
		Long: `multimodal trains one Inductive Moment Matching model on multimodal particles: each
sample's image latent patches, groups of mel frames and caption token embeddings are
concatenated into one particle, and one transformer learns them under one masked
Laplace-MMD loss (docs/multimodal.md). It writes into --out: config.json,
metrics.jsonl, loss.png, ckpt/step-NNNNNN.safetensors (+ latest; every --ckpt-every
steps, at the end and on Ctrl-C/SIGTERM), samples/step-NNNNNN/ sample sheets (grid.png
with rows of 1/2/4/8 sampling steps, WAV files, captions.json) every --eval-every steps
and at the end, and summary.json. --resume continues from the newest good checkpoint
exactly (weights, optimiser, random state and loader position).

--demo without --data first builds the synthetic shapes corpus (image + caption +
sound) and runs it through ingest, tokenizer training, encode and shard into
OUT/data, then trains on it and evaluates the result (immtrain eval).`,
		Example: "  immtrain multimodal --demo --out runs/demo\n  immtrain multimodal --data shards --artefacts encoded --out runs/mm --size small --steps 5000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.SetSteps = cmd.Flags().Changed("steps")
			return o.run(cmd.Context(), cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "", "shard directory (immdata shard output, with index.json)")
	f.StringVar(&o.Artefacts, "artefacts", "", "immdata encode output directory holding the artefacts the manifest names (default: --data)")
	f.StringVar(&o.Out, "out", "", "run directory")
	f.BoolVar(&o.demo, "demo", false, "without --data: build the synthetic shapes corpus into OUT/data first, then train and evaluate")
	f.IntVar(&o.demoN, "demo-samples", 2000, "samples of the --demo corpus")
	f.IntVar(&o.demoEvalN, "demo-eval-n", 64, "samples per step count of the --demo evaluation")
	f.StringVar(&o.demoBG, "demo-background", gen.BackgroundPlain, "background of the --demo corpus images: plain or texture (immdata gen --background)")
	f.StringVar(&o.demoLayout, "demo-layout", gen.LayoutCenter, "shape positions of the --demo corpus: center or grid (immdata gen --layout)")
	f.StringVar(&o.deviceName, "device", "auto", "compute backend: "+strings.Join(device.Names, ", "))
	f.StringVar(&o.Size, "size", d.Size, "model size: "+strings.Join(run.SizeNames, ", "))
	f.IntVar(&o.Train.Batch, "batch", d.Train.Batch, "particles per step (a multiple of --group)")
	f.IntVar(&o.IMM.M, "group", d.IMM.M, "IMM particles per group M")
	f.BoolVar(&o.Train.GroupLabels, "group-labels", d.Train.GroupLabels, "compose batches so that the M particles of a group share one class label (labelled data)")
	f.IntVar(&o.Train.Steps, "steps", d.Train.Steps, "training steps")
	f.Float64Var(&o.Train.LR, "lr", d.Train.LR, "AdamW learning rate")
	f.StringVar(&o.Train.LRSchedule, "lr-schedule", "constant", "learning rate over the run: constant or cosine (to 0 at --steps)")
	f.IntVar(&o.Train.Warmup, "warmup", 0, "steps of linear learning-rate warmup")
	f.Float64Var(&o.Train.EMADecay, "ema", d.Train.EMADecay, "EMA decay of the weights the sample sheets use")
	f.IntVar(&o.Train.MaxBadSteps, "max-bad-steps", 20, "stop after this many consecutive steps with a non-finite loss or gradient")
	f.IntVar(&o.CkptEvery, "ckpt-every", d.CkptEvery, "checkpoint every N steps (0: only at the end and on interrupt)")
	f.IntVar(&o.EvalEvery, "eval-every", d.EvalEvery, "sample sheet every N steps (0: only at the end)")
	f.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its newest good checkpoint, with the settings of its config.json (only --steps may change)")
	f.StringVar(&o.modalities, "modalities", "", "comma-separated subset of image,audio,text (default: all the shards have)")
	f.IntVar(&o.Layout.ImagePatch, "image-patch", 0, "patch side of the image segment (default: 4 for tiny/small, 2 for S/2 and B/2)")
	f.IntVar(&o.Layout.AudioGroup, "audio-group", 10, "mel frames per audio token")
	f.StringVar(&o.Layout.AudioNorm, "audio-norm", mmdata.AudioNormGlobal, "log-mel standardisation: global (one mean and std over all bins) or bin (each mel bin by its own)")
	f.IntVar(&o.Layout.TextLen, "text-len", 16, "text tokens per particle")
	f.IntVar(&o.Layout.TextDim, "text-dim", 16, "width of the frozen text embedding table")
	f.Float64Var(&o.CFG, "cfg", d.CFG, "classifier-free guidance weight of the sample sheets (1 = none)")
	f.Float64Var(&o.HoldProb, "hold-prob", d.HoldProb, "probability that a training sample holds some modalities as clean conditioning")
	f.IntSliceVar(&o.SampleSteps, "sample-steps", d.SampleSteps, "sampling-step counts of the sheets")
	f.IntVar(&o.SampleN, "sample-n", d.SampleN, "samples per sheet row")
	f.Uint64Var(&o.Train.Seed, "seed", d.Train.Seed, "seed of the weights, data order, noise and text table")
	f.StringVar(&o.IMM.Schedule, "schedule", d.IMM.Schedule, "noise schedule: ot-fm or cosine (held conditioning needs ot-fm)")
	f.StringVar(&o.IMM.Param, "param", d.IMM.Param, "parameterisation: euler-fm, simple-edm or identity")
	f.IntVar(&o.IMM.K, "k", d.IMM.K, "mapping step exponent k of r(s,t)")
	f.StringVar(&o.IMM.Kernel, "kernel", d.IMM.Kernel, "distance of the Laplace kernel: modality (sum of per-modality norms) or particle (one norm over the whole particle)")
	return cmd
}

func (o *multimodalOpts) run(ctx context.Context, cmd *cobra.Command) error {
	if o.Out == "" {
		return cli.Usagef("multimodal: --out is required")
	}
	if o.modalities != "" {
		for _, m := range strings.Split(o.modalities, ",") {
			o.Layout.Modalities = append(o.Layout.Modalities, strings.TrimSpace(m))
		}
	}
	if o.IMM.Schedule == "cosine" {
		o.IMM.T = 0.996
	}
	o.Layout.Seed = o.Train.Seed
	errOut := cmd.ErrOrStderr()
	if o.demo && o.Data == "" && !o.Resume {
		o.Data = filepath.Join(o.Out, "data", "shards")
		o.Artefacts = filepath.Join(o.Out, "data", "encoded")
		if _, err := os.Stat(filepath.Join(o.Data, "index.json")); err != nil {
			if !o.g.Quiet {
				fmt.Fprintf(errOut, "demo: building the shapes corpus (%d samples) into %s\n", o.demoN, filepath.Join(o.Out, "data"))
			}
			start := time.Now()
			if err := run.BuildDemoData(ctx, filepath.Join(o.Out, "data"), o.demoN, o.Train.Seed, o.demoBG, o.demoLayout, o.g.NumWorkers()); err != nil {
				return err
			}
			if !o.g.Quiet {
				fmt.Fprintf(errOut, "demo: data ready in %.0fs\n", time.Since(start).Seconds())
			}
		}
	}
	if o.Data == "" && !o.Resume {
		return cli.Usagef("multimodal: give --data SHARDS (or --demo to build the synthetic shapes corpus)")
	}
	dev, why, err := device.Open(o.deviceName, o.g.NumWorkers())
	if err != nil {
		return err
	}
	if o.demo && !o.Resume {
		demoDefaults(cmd.Flags(), o, dev.Name() == "cuda")
	}
	if err := o.Options.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	o.Device, o.DeviceInfo = dev, why
	if r, ok := dev.(device.Reporter); ok { // IMMKIT_PROFILE is set
		defer r.Report(errOut, 40)
	}
	if !o.g.Quiet {
		fmt.Fprintf(errOut, "device %s\n", why)
		if f, ok := errOut.(*os.File); ok && isTerminal(f) && o.g.LogFormat != "json" {
			o.Progress = errOut
		} else if log, err := o.g.Logger(); err == nil && o.g.LogFormat == "json" {
			o.Log = slogLines{log}
		} else {
			o.Log = errOut
		}
	}
	sum, err := run.Train(ctx, o.Options)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "trained %d steps (%d parameters, particles of %d values): final loss %.4g, %d skipped steps, %.1f samples/s over %.0fs\n",
		sum.Steps, sum.Params, sum.Dim, sum.FinalLoss, sum.Skipped, sum.SamplesPerS, sum.Seconds)
	fmt.Fprintf(w, "checkpoint %s\nsample sheet %s\n", sum.Checkpoint, filepath.Join(sum.Sheet, "grid.png"))
	if o.demo && run.ShapesLabels(o.labels()) {
		fmt.Fprintln(w)
		return runEval(ctx, &evalOpts{Run: o.Out, N: o.demoEvalN, Steps: o.SampleSteps, CFG: -1, Shapes: true, g: o.g, deviceName: o.deviceName}, w, errOut)
	}
	return nil
}

// slogLines turns each written line into one info record of the logger (--log-format json).
type slogLines struct{ log *slog.Logger }

func (s slogLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		s.log.Info(line)
	}
	return len(p), nil
}

// labels returns the class names of the run in --out.
func (o *multimodalOpts) labels() []string {
	c, err := run.ReadConfig(o.Out)
	if err != nil {
		return nil
	}
	return c.Labels
}

// demoDefaults sets the --demo recipe for the flags the user did not set. On the CPU it
// is what learned the demo corpus in its 10-minute budget on 2 cores (docs/multimodal.md,
// "The demo recipe"): the identity parameterisation (G predicts the clean particle, so no
// per-pixel noise has to pass through the 64-wide tokens), learning rate 1e-2, 8x8 image
// patches, 20 mel frames per audio token, 12 text tokens, demoSteps steps, one sample
// sheet at the end and guidance 8 (where the demo's eval agreed best among 1.5, 3, 5, 8
// and 12). On a GPU (gpu true) the small model at batch 256 for 6000 steps sees
// 1.5 M samples in a few minutes instead (the MNIST run on an H200 trained the small model
// at batch 256 at 41 steps/s).
func demoDefaults(f *pflag.FlagSet, o *multimodalOpts, gpu bool) {
	set := map[string]func(){
		"param":       func() { o.IMM.Param = "identity" },
		"lr":          func() { o.Train.LR = 1e-2 },
		"image-patch": func() { o.Layout.ImagePatch = 8 },
		"audio-group": func() { o.Layout.AudioGroup = 20 },
		"text-len":    func() { o.Layout.TextLen = 12 },
		"steps":       func() { o.Train.Steps = demoSteps },
		"ckpt-every":  func() { o.CkptEvery = 500 },
		"eval-every":  func() { o.EvalEvery = 0 },
		"cfg":         func() { o.CFG = 8 },
	}
	if gpu {
		set["size"] = func() { o.Size = "small" }
		set["batch"] = func() { o.Train.Batch = 256 }
		set["lr"] = func() { o.Train.LR = 5e-3 }
		set["steps"] = func() { o.Train.Steps = 6000 }
		set["ckpt-every"] = func() { o.CkptEvery = 1000 }
		set["eval-every"] = func() { o.EvalEvery = 2000 }
	}
	for name, fn := range set {
		if !f.Changed(name) {
			fn()
		}
	}
}

// demoSteps is the CPU demo's step count (docs/multimodal.md, "The demo recipe").
const demoSteps = 4000
