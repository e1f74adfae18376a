package main

import (
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

// subcommands is filled by the init functions of the subcommand files, one file each.
var subcommands []func(g *cli.Global) *cobra.Command

func newRootCmd(g *cli.Global) *cobra.Command {
	return cli.NewRoot(g, &cobra.Command{
		Use:   "immtrain",
		Short: "Train few-step generative models with Inductive Moment Matching",
		Long: `immtrain trains few-step generative models with Inductive Moment Matching (IMM,
Zhou, Ermon, Song 2025) on CPU or NVIDIA GPUs, and writes samples as pictures, sounds
and text.`,
		Example: "  immtrain toy --dataset checkerboard --out runs/checkerboard",
	}, subcommands)
}
