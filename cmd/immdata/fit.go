package main

import (
	"context"
	"fmt"
	"io"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newFitCmd) }

type fitOpts struct {
	in, out string
	flags   encodeFlags
	fs      *pflag.FlagSet
	stdout  io.Writer
}

func newFitCmd(g *cli.Global) *cobra.Command {
	o := &fitOpts{}
	cmd := &cobra.Command{
		Use:   "fit IN -o OUT",
		Short: "Fit the learned encoders and the label vocabulary for immdata encode",
		Long: `fit reads every raw-sample part of IN, fits the learned encoders chosen by the config
(patch-pca, vq, audio-vq, a trained bpe tokenizer) on a seeded sample of --fit-samples
samples and the label vocabulary on all labels, and writes the artefacts to OUT/artefacts
and their sha256 with the resolved config to OUT/encode.json. Run it once before
immdata encode with several --worker-index processes.`,
		Example: "  immdata fit /tmp/ingested -o /tmp/enc --config docs/examples/encode.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.in, o.stdout, o.fs = args[0], cmd.OutOrStdout(), cmd.Flags()
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "output directory (required)")
	o.flags.add(f)
	return cmd
}

func (o *fitOpts) run(ctx context.Context) error {
	if o.out == "" {
		return cli.Usagef("fit: -o/--out is required")
	}
	c, err := o.flags.config(o.fs)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return cli.Usagef("fit: %v", err)
	}
	st, err := encoders.Fit(ctx, o.in, o.out, c)
	if err != nil {
		return err
	}
	for _, a := range st.Artefacts {
		if _, err := fmt.Fprintf(o.stdout, "%s  %s  %s\n", a.SHA256, a.Name, a.Path); err != nil {
			return err
		}
	}
	return nil
}
