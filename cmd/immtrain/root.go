package main

import (
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

// subcommands is filled by the init functions of the subcommand files, one file each.
var subcommands []func(g *cli.Global) *cobra.Command

func newRootCmd(g *cli.Global) *cobra.Command {
	root := &cobra.Command{
		Use:   "immtrain",
		Short: "Train few-step generative models with Inductive Moment Matching",
		Long: `immtrain trains few-step generative models with Inductive Moment Matching (IMM,
Zhou, Ermon, Song 2025) on CPU or NVIDIA GPUs, and writes samples as pictures, sounds
and text.`,
		Example:           "  immtrain version",
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.Validate() },
	}
	if g.Stdout != nil {
		root.SetOut(g.Stdout)
	}
	if g.Stderr != nil {
		root.SetErr(g.Stderr)
	}
	g.AddFlags(root)
	root.AddCommand(cli.VersionCommand("immtrain"))
	for _, sub := range subcommands {
		root.AddCommand(sub(g))
	}
	return root
}
