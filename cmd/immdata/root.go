package main

import (
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

// subcommands is filled by the init functions of the subcommand files, one file each.
var subcommands []func(g *cli.Global) *cobra.Command

func newRootCmd(g *cli.Global) *cobra.Command {
	return cli.NewRoot(g, &cobra.Command{
		Use:   "immdata",
		Short: "Turn raw multimodal corpora into clean Parquet and training shards",
		Long: `immdata ingests raw image, audio and text corpora (directories, tar/webdataset,
jsonl, Parquet) into deduplicated Arrow/Parquet with every bad file accounted for,
tokenises and encodes them, and writes verifiable, shuffled, split training shards.`,
		Example: `  immdata gen --out shapes --samples 200 --bad
  immdata ingest shapes --out ingested --exclude manifest.jsonl
  immdata encode ingested -o encoded
  immdata shard encoded -o shards && immdata verify shards`,
	}, subcommands)
}
