package main

import (
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

// subcommands is filled by the init functions of the subcommand files, one file each.
var subcommands []func(g *cli.Global) *cobra.Command

func newRootCmd(g *cli.Global) *cobra.Command {
	root := &cobra.Command{
		Use:   "immdata",
		Short: "Turn raw multimodal corpora into clean Parquet and training shards",
		Long: `immdata ingests raw image, audio and text corpora (directories, tar/webdataset,
jsonl, Parquet) into deduplicated Arrow/Parquet with every bad file accounted for,
tokenises and encodes them, and writes verifiable, shuffled, split training shards.`,
		Example:           "  immdata gen --out /tmp/shapes --samples 200\n  immdata version",
		PersistentPreRunE: func(*cobra.Command, []string) error { return g.Validate() },
	}
	if g.Stdout != nil {
		root.SetOut(g.Stdout)
	}
	if g.Stderr != nil {
		root.SetErr(g.Stderr)
	}
	g.AddFlags(root)
	root.AddCommand(cli.VersionCommand("immdata"))
	for _, sub := range subcommands {
		root.AddCommand(sub(g))
	}
	return root
}
