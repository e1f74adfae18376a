package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/shards"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newShardCmd) }

type shardOpts struct {
	g           *cli.Global
	inputs      []string
	out         string
	seed        uint64
	valFraction float64
	shardSize   string
	resume      bool
	overwrite   bool
	statsJSON   string
	stdout      io.Writer
}

func newShardCmd(g *cli.Global) *cobra.Command {
	o := &shardOpts{g: g}
	cmd := &cobra.Command{
		Use:   "shard IN... -o SHARDS",
		Short: "Merge part files into deduplicated, shuffled, split, verifiable Parquet shards",
		Long: `shard merges the part files of any number of ingest or encode output directories
(IN/parts/*.parquet, or IN/*.parquet, or Parquet files) that share one schema with a key
and a sha256 column. It drops exact duplicates by sha256, puts each key in train or val by
a stable hash of the key, orders each split by a seeded hash of the content, and writes
zstd Parquet shards of about --shard-size bytes plus SHARDS/index.json, which is written
last. The output depends only on the set of input rows, not on how many parts or workers
produced them.`,
		Example: "  immdata shard /tmp/enc -o /tmp/shards --val-fraction 0.05 --shard-size 64MiB",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs = args
			o.stdout = cmd.OutOrStdout()
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "output dataset directory (required)")
	f.Uint64Var(&o.seed, "seed", 0, "shuffle seed")
	f.Float64Var(&o.valFraction, "val-fraction", 0.05, "fraction of keys in the val split, by a stable hash of the key")
	f.StringVar(&o.shardSize, "shard-size", "128MiB", "target shard size (bytes, or with KiB/MiB/GiB/KB/MB/GB)")
	f.BoolVar(&o.resume, "resume", false, "redo an interrupted run in the output directory")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace a finished dataset in the output directory")
	f.StringVar(&o.statsJSON, "stats-json", "", "write a JSON summary of the run to this file")
	return cmd
}

func (o *shardOpts) run(ctx context.Context) error {
	if o.out == "" {
		return cli.Usagef("shard: -o/--out is required")
	}
	size, err := parseSize(o.shardSize)
	if err != nil {
		return cli.Usagef("shard: --shard-size: %v", err)
	}
	if math.IsNaN(o.valFraction) || o.valFraction < 0 || o.valFraction > 1 {
		return cli.Usagef("shard: --val-fraction must be in [0, 1], got %v", o.valFraction)
	}
	log, err := o.g.Logger()
	if err != nil {
		return err
	}
	res, err := shards.Build(ctx, shards.BuildOptions{
		Inputs: o.inputs, Out: o.out, Seed: o.seed, ValFraction: o.valFraction, ShardSize: size,
		Workers: o.g.NumWorkers(), Resume: o.resume, Overwrite: o.overwrite, Log: log,
	})
	if err != nil {
		return err
	}
	m := res.Manifest
	tr, va := m.Totals[shards.SplitTrain], m.Totals[shards.SplitVal]
	fmt.Fprintf(o.stdout, "read %d rows from %d parts, dropped %d duplicates\n", res.Inputs.Rows, res.Inputs.Parts, res.Inputs.Duplicates)
	fmt.Fprintf(o.stdout, "train: %d rows in %d shards (%d bytes)\nval: %d rows in %d shards (%d bytes)\nwrote %s/%s\n",
		tr.Rows, tr.Shards, tr.Bytes, va.Rows, va.Shards, va.Bytes, o.out, shards.ManifestName)
	if o.statsJSON != "" {
		js, err := json.MarshalIndent(map[string]any{"inputs": res.Inputs, "totals": m.Totals}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.statsJSON, append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("shard: --stats-json: %w", err)
		}
	}
	return nil
}

// parseSize reads a byte count with an optional KiB/MiB/GiB (or KB/MB/GB, or K/M/G as
// binary) suffix.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || n*float64(mult) > math.MaxInt64/2 {
		return 0, fmt.Errorf("want a positive size like 128MiB, got %q", s)
	}
	return int64(n * float64(mult)), nil
}
