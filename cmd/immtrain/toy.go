package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/immkit/immkit/imm/toy"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/kernels/device"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newToyCmd) }

type toyOpts struct {
	toy.Options
	objectives string
	immSteps   []int
	fmSteps    []int
	deviceName string
	global     *cli.Global
}

func newToyCmd(g *cli.Global) *cobra.Command {
	o := &toyOpts{Options: toy.DefaultOptions(), global: g}
	d := toy.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "toy",
		Short: "Train IMM and a flow-matching baseline on a 2-D toy distribution (CPU or GPU)",
		Long: `toy trains Inductive Moment Matching and, as a baseline, flow matching on a
two-dimensional toy distribution on the CPU, then samples both with few steps and
measures the energy distance to held-out data. It writes metrics.jsonl, loss.png,
samples_<objective>_<steps>.{png,npy}, grid.png, data.npy, <objective>.safetensors
checkpoints and summary.json into --out. Interrupting (Ctrl-C) saves a checkpoint;
--resume continues from it bit for bit.`,
		Example: "  immtrain toy --dataset checkerboard --out runs/checkerboard",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dataset, "dataset", d.Dataset, "toy distribution: "+strings.Join(toy.Names(), "|"))
	f.StringVar(&o.Out, "out", d.Out, "output directory")
	f.StringVar(&o.objectives, "objectives", "imm,fm", "objectives to train, comma-separated: imm, fm")
	f.StringVar(&o.Arch, "arch", d.Arch, "network: mlp (concat + SiLU layers) or resmlp (adaLN residual blocks)")
	f.IntVar(&o.Width, "width", d.Width, "hidden width")
	f.IntVar(&o.Depth, "depth", d.Depth, "hidden layers (mlp) or residual blocks (resmlp)")
	f.IntVar(&o.Batch, "batch", d.Batch, "particles per step")
	f.IntVar(&o.Steps, "steps", d.Steps, "training steps per objective")
	f.Float64Var(&o.LR, "lr", d.LR, "AdamW learning rate")
	f.StringVar(&o.Schedule, "schedule", d.Schedule, "noise schedule: ot-fm or cosine (cosine needs --objectives imm)")
	f.StringVar(&o.Param, "param", d.Param, "IMM parameterisation: euler-fm, simple-edm or identity")
	f.StringVar(&o.SecondTime, "second-time", d.SecondTime, "first time input of the network: s or stride (t-s)")
	f.IntVar(&o.M, "m", d.M, "IMM particles per group")
	f.IntVar(&o.K, "k", d.K, "IMM mapping step exponent k of r(s,t)")
	f.Float64Var(&o.WeightA, "weight-a", d.WeightA, "exponent a of the IMM loss weight w(s,t)")
	f.Float64Var(&o.EMADecay, "ema", d.EMADecay, "EMA decay of the weights")
	f.StringVar(&o.Sampler, "sampler", d.Sampler, "IMM sampler: pushforward or restart")
	f.BoolVar(&o.SampleEMA, "sample-ema", d.SampleEMA, "sample with the EMA weights instead of the live ones")
	f.Uint64Var(&o.Seed, "seed", d.Seed, "random seed")
	f.IntVar(&o.EvalN, "eval-samples", d.EvalN, "samples for the energy distance")
	f.IntSliceVar(&o.immSteps, "imm-steps", d.IMMSteps, "IMM sampling steps to evaluate")
	f.IntSliceVar(&o.fmSteps, "fm-steps", d.FMSteps, "flow-matching Euler steps to evaluate")
	f.IntVar(&o.SaveEvery, "save-every", d.SaveEvery, "checkpoint every N steps (0: only at the end)")
	f.BoolVar(&o.Resume, "resume", false, "continue from the checkpoints in --out")
	f.StringVar(&o.deviceName, "device", "auto", "compute backend: auto (a GPU when usable, else cpu), cpu, cuda or cuda-tf32")
	return cmd
}

func (o *toyOpts) run(ctx context.Context, cmd *cobra.Command) error {
	o.Objectives = nil
	for _, s := range strings.Split(o.objectives, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.Objectives = append(o.Objectives, s)
		}
	}
	o.IMMSteps, o.FMSteps = o.immSteps, o.fmSteps
	o.Workers = o.global.NumWorkers()
	if err := o.Options.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	dev, why, err := device.Open(o.deviceName, o.Workers)
	if err != nil {
		return err
	}
	o.Device, o.DeviceInfo = dev, why
	if !o.global.Quiet {
		fmt.Fprintf(cmd.ErrOrStderr(), "device %s\n", why)
	}
	if !o.global.Quiet {
		errOut := cmd.ErrOrStderr()
		if f, ok := errOut.(*os.File); ok && isTerminal(f) {
			o.Progress = errOut
		} else {
			o.Log = errOut
		}
	}
	sum, err := toy.Run(ctx, o.Options)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s: energy distance to %d held-out points (noise floor %.4f)\n", sum.Dataset, sum.EvalN, sum.NoiseFloor)
	for _, obj := range o.Objectives {
		r := sum.Results[obj]
		b, _ := json.Marshal(r.Energy)
		fmt.Fprintf(w, "  %-3s %s  (%.0f s, %.1f steps/s)\n", obj, b, r.TrainSeconds, r.StepsPerSecond)
	}
	fmt.Fprintf(w, "wrote %s\n", o.Out)
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
