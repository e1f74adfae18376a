package main

import (
	"context"
	"fmt"
	"io"

	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/shards"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newExportCmd) }

type exportOpts struct {
	g      *cli.Global
	format string
	dir    string
	out    string
	stdout io.Writer
}

func newExportCmd(g *cli.Global) *cobra.Command {
	o := &exportOpts{g: g}
	cmd := &cobra.Command{
		Use:   "export --format webdataset SHARDS -o DIR",
		Short: "Write a shard dataset in another format (webdataset tar shards)",
		Long: `export writes the shards of SHARDS (made by immdata shard) as webdataset tar files,
one per shard (DIR/train/shard-00000.tar ...). A sample's members are adjacent and named
KEY.EXT with dots in keys replaced by underscores: media as .jpg/.png/.wav/..., text as
.txt, label_id as .cls, meta as .json, latents and token columns as .COLUMN.npy, other
scalars and the sha256 in .info.json.`,
		Example: "  immdata export --format webdataset /tmp/shards -o /tmp/wds",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dir = args[0]
			o.stdout = cmd.OutOrStdout()
			return o.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "webdataset", "output format (webdataset)")
	cmd.Flags().StringVarP(&o.out, "out", "o", "", "output directory (required)")
	return cmd
}

func (o *exportOpts) run(ctx context.Context) error {
	if o.format != "webdataset" {
		return cli.Usagef("export: --format %q is not supported (want webdataset)", o.format)
	}
	if o.out == "" {
		return cli.Usagef("export: -o/--out is required")
	}
	res, err := shards.ExportWebDataset(ctx, o.dir, o.out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "wrote %d samples (%d members) in %d tar files under %s\n", res.Samples, res.Members, len(res.Tars), o.out)
	return err
}
