package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/immkit/immkit/evals/mnist"
	"github.com/immkit/immkit/imm/run"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/kernels/device"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newEvalCmd) }

type evalOpts struct {
	Run        string
	N          int
	Steps      []int
	CFG        float64
	Shapes     bool
	Classifier string
	deviceName string
	g          *cli.Global
}

func newEvalCmd(g *cli.Global) *cobra.Command {
	o := &evalOpts{g: g}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score a multimodal run's samples: shapes cross-modal agreement or MNIST accuracy",
		Long: `eval loads the newest good checkpoint of a multimodal run (EMA weights), generates --n
samples at each sampling-step count (labels cycling through the classes, guidance
--cfg) and scores them, writing RUN/eval.json and a Markdown table to stdout:

  --shapes              on the synthetic shapes corpus: colour and shape recovered from
                        each generated image, caption and sound (evals/shapes), the
                        agreement rate per pair of modalities and with the conditioning
                        label, against chance; the same detectors on the real val data
                        give the ceiling of the measurement.
  --mnist-classifier F  on an MNIST run: the accuracy of the classifier F (evals/mnist)
                        on generated digits for their conditioning labels (and on the
                        real val digits).

Without either flag, --shapes is used when the run's labels are shapes labels.`,
		Example: "  immtrain eval --run runs/demo --shapes --n 256",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Run, "run", "", "run directory (immtrain multimodal --out)")
	f.IntVar(&o.N, "n", 256, "generated samples per sampling-step count")
	f.IntSliceVar(&o.Steps, "steps", []int{1, 2, 4, 8}, "sampling-step counts")
	f.Float64Var(&o.CFG, "cfg", -1, "classifier-free guidance weight (default: the run's)")
	f.BoolVar(&o.Shapes, "shapes", false, "score cross-modal agreement on the shapes corpus")
	f.StringVar(&o.Classifier, "mnist-classifier", "", "MNIST classifier file (tools/mnist) to score generated digits")
	f.StringVar(&o.deviceName, "device", "auto", "compute backend: "+strings.Join(device.Names, ", "))
	return cmd
}

func runEval(_ context.Context, o *evalOpts, w, errOut io.Writer) error {
	if o.Run == "" {
		return cli.Usagef("eval: --run is required")
	}
	if o.N < 1 {
		return cli.Usagef("eval: --n must be >= 1, got %d", o.N)
	}
	for _, s := range o.Steps {
		if s < 1 {
			return cli.Usagef("eval: --steps must be positive, got %v", o.Steps)
		}
	}
	dev, why, err := device.Open(o.deviceName, o.g.NumWorkers())
	if err != nil {
		return err
	}
	if !o.g.Quiet {
		fmt.Fprintf(errOut, "device %s\n", why)
	}
	s, err := run.Open(o.Run, dev, errOut)
	if err != nil {
		return err
	}
	eo := run.EvalOptions{N: o.N, Steps: o.Steps, CFG: s.Cfg.CFG, Shapes: o.Shapes}
	if o.CFG >= 0 {
		eo.CFG = o.CFG
	}
	if o.Classifier != "" {
		if eo.MNIST, err = mnist.LoadClassifier(o.Classifier); err != nil {
			return err
		}
	}
	if !eo.Shapes && eo.MNIST == nil {
		if !run.ShapesLabels(s.Cfg.Labels) {
			return cli.Usagef("eval: the run's labels are not shapes labels; give --shapes or --mnist-classifier")
		}
		eo.Shapes = true
	}
	res, err := s.Eval(eo)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	path := filepath.Join(o.Run, "eval.json")
	if err := run.WriteAtomic(path, append(b, '\n')); err != nil {
		return err
	}
	fmt.Fprintf(w, "eval of %s (step %d), %d samples per step count, guidance %g\n\n", s.Checkpoint, s.Tr.Step, o.N, eo.CFG)
	if res.MNISTAccuracy != nil {
		fmt.Fprintf(w, "| sampling steps | classifier accuracy |\n|---|---|\n")
		for _, k := range sortedKeys(res.MNISTAccuracy) {
			fmt.Fprintf(w, "| %s | %.3f |\n", k, res.MNISTAccuracy[k])
		}
		fmt.Fprintln(w)
	}
	if res.Shapes != nil {
		fmt.Fprint(w, run.ShapesMarkdown(res))
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "wrote %s\n", path)
	return nil
}

// sortedKeys orders step counts numerically, then "real".
func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		switch {
		case ea == nil && eb == nil:
			return a < b
		case ea == nil:
			return true
		case eb == nil:
			return false
		}
		return keys[i] < keys[j]
	})
	return keys
}
