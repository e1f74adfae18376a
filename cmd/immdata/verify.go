package main

import (
	"context"
	"fmt"
	"io"

	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/shards"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newVerifyCmd) }

type verifyOpts struct {
	g      *cli.Global
	dir    string
	stdout io.Writer
}

func newVerifyCmd(g *cli.Global) *cobra.Command {
	o := &verifyOpts{g: g}
	return &cobra.Command{
		Use:   "verify SHARDS",
		Short: "Recompute every shard's hash, size, row count and schema against index.json",
		Long: `verify reads SHARDS/index.json, recomputes the sha256, byte size, row count and schema
of every shard it lists and prints every mismatch. It exits 1 when anything differs.`,
		Example: "  immdata verify /tmp/shards",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dir = args[0]
			o.stdout = cmd.OutOrStdout()
			return o.run(cmd.Context())
		},
	}
}

func (o *verifyOpts) run(ctx context.Context) error {
	rep, err := shards.Verify(ctx, o.dir)
	if rep != nil {
		for _, m := range rep.Mismatches {
			fmt.Fprintln(o.stdout, "MISMATCH", m)
		}
		if err == nil {
			fmt.Fprintf(o.stdout, "ok: %d shards, %d rows, %d bytes match %s/%s\n", rep.Shards, rep.Rows, rep.Bytes, o.dir, shards.ManifestName)
		}
	}
	return err
}
