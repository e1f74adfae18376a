package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/run"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/kernels/device"
	"github.com/immkit/immkit/shards"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newSampleCmd) }

type sampleOpts struct {
	Run        string
	Out        string
	Steps      []int
	N          int
	Label      string
	Given      []string
	CFG        float64
	Seed       uint64
	deviceName string
	g          *cli.Global
}

func newSampleCmd(g *cli.Global) *cobra.Command {
	o := &sampleOpts{g: g}
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Generate a sample sheet (pictures, sounds, captions) from a multimodal run's checkpoint",
		Long: `sample loads the newest good checkpoint of a multimodal run (EMA weights) and writes
a sample sheet into --out: grid.png (rows = sampling-step counts, columns = samples),
steps-<N>/sample-<k>.wav and captions.json. --label conditions every sample on one
class (classifier-free guidance --cfg); --given image,text (any of the run's
modalities) takes the first --n samples of the val split, holds those modalities at
their real values and generates the others; the real samples are written to OUT/given
for comparison.`,
		Example: "  immtrain sample --run runs/demo --out runs/demo/sheet --given image",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSample(cmd.Context(), o, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Run, "run", "", "run directory (immtrain multimodal --out)")
	f.StringVar(&o.Out, "out", "", "output directory of the sheet (default RUN/sample)")
	f.IntSliceVar(&o.Steps, "steps", []int{1, 2, 4, 8}, "sampling-step counts, one sheet row each")
	f.IntVar(&o.N, "n", 8, "samples per row")
	f.StringVar(&o.Label, "label", "", "condition every sample on this class label (default: labels cycle through the classes; none with --given)")
	f.StringSliceVar(&o.Given, "given", nil, "modalities held at a val sample's real values (image, audio, text)")
	f.Float64Var(&o.CFG, "cfg", -1, "classifier-free guidance weight (default: the run's)")
	f.Uint64Var(&o.Seed, "seed", run.SheetKey, "noise seed")
	f.StringVar(&o.deviceName, "device", "auto", "compute backend: "+strings.Join(device.Names, ", "))
	return cmd
}

func runSample(_ context.Context, o *sampleOpts, cmd *cobra.Command) error {
	if o.Run == "" {
		return cli.Usagef("sample: --run is required")
	}
	if o.N < 1 {
		return cli.Usagef("sample: --n must be >= 1, got %d", o.N)
	}
	for _, s := range o.Steps {
		if s < 1 {
			return cli.Usagef("sample: --steps must be positive, got %v", o.Steps)
		}
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Run, "sample")
	}
	dev, why, err := device.Open(o.deviceName, o.g.NumWorkers())
	if err != nil {
		return err
	}
	errOut := cmd.ErrOrStderr()
	if !o.g.Quiet {
		fmt.Fprintf(errOut, "device %s\n", why)
	}
	s, err := run.Open(o.Run, dev, errOut)
	if err != nil {
		return err
	}
	cfgW := s.Cfg.CFG
	if o.CFG >= 0 {
		cfgW = o.CFG
	}
	labels := run.SheetLabels(s.Cfg.Model.Classes(), o.N)
	var clean, present []float32
	if len(o.Given) > 0 {
		p, err := s.ValParticles(shards.SplitVal, o.N)
		if err != nil {
			return err
		}
		if p.N < o.N {
			fmt.Fprintf(errOut, "warning: the val split has %d samples; sampling %d\n", p.N, p.N)
			o.N = p.N
		}
		if present, err = s.Given(p, o.Given); err != nil {
			return cli.Usagef("%v", err)
		}
		clean, labels = p.X, nil
		real, err := s.Layout.Decode(p.X, p.N)
		if err != nil {
			return err
		}
		if err := mmdata.WriteSheet(filepath.Join(o.Out, "given"), []int{1}, []*mmdata.Media{real}); err != nil {
			return err
		}
	}
	if o.Label != "" {
		id, err := s.LabelID(o.Label)
		if err != nil {
			return cli.Usagef("%v", err)
		}
		labels = make([]int32, o.N)
		for i := range labels {
			labels[i] = id
		}
	}
	media, err := run.Generate(s.Layout, s.Tr, o.Steps, o.N, labels, cfgW, o.Seed, clean, present)
	if err != nil {
		return err
	}
	if err := mmdata.WriteSheet(o.Out, o.Steps, media); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "sampled %d x %v steps from %s (step %d) into %s\n", o.N, o.Steps, s.Checkpoint, s.Tr.Step, o.Out)
	if _, err := os.Stat(filepath.Join(o.Out, "captions.json")); err == nil {
		for i, m := range media {
			if len(m.Captions) > 0 {
				fmt.Fprintf(w, "  %d steps: %q\n", o.Steps[i], m.Captions[0])
			}
		}
	}
	return nil
}
