package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/testdata/gen"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newGenCmd) }

// genOpts are the flags of `immdata gen`.
type genOpts struct {
	out     string      // output directory
	opts    gen.Options // Output and Workers are set from tar, tarOnly and --workers
	tar     bool
	tarOnly bool
	workers int
	stdout  io.Writer // the summary line goes here
}

func newGenCmd(g *cli.Global) *cobra.Command {
	o := &genOpts{}
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write the deterministic synthetic 'shapes' corpus (images, captions, WAV clips)",
		Long: `gen writes the synthetic multimodal 'shapes' corpus used by tests, benchmarks and the
demo: per sample OUT/<label>/<key>.{jpg|png} (a coloured shape on a textured background),
<key>.txt (a caption such as "a small red triangle in the upper left") and <key>.wav
(pitch encodes the colour, the number of notes the shape, loudness the size), plus
OUT/manifest.jsonl. The same seed gives byte-identical files. --bad adds the malformed-input
set under OUT/bad/; --tar also writes webdataset shards under OUT/shards/.
See docs/synthetic-corpus.md for the rules.`,
		Example: "  immdata gen --out /tmp/shapes --samples 200 --seed 1 --bad --tar\n" +
			"  immdata gen --out /tmp/bench --samples 20000 --image-size 512 --audio-seconds 2",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.stdout = cmd.OutOrStdout()
			o.workers = g.NumWorkers()
			return runGen(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "shapes", "output directory (must not exist or be empty)")
	f.IntVar(&o.opts.Samples, "samples", 200, "number of samples")
	f.Uint64Var(&o.opts.Seed, "seed", 1, "random seed; the same seed gives byte-identical files")
	f.IntVar(&o.opts.ImageSize, "image-size", 64, "image width and height in pixels")
	f.StringVar(&o.opts.ImageFormat, "image-format", gen.FormatJPEG, "image format: jpeg, png or mixed (even keys jpeg, odd png)")
	f.IntVar(&o.opts.JPEGQuality, "jpeg-quality", 90, "JPEG quality 1..100")
	f.Float64Var(&o.opts.AudioSeconds, "audio-seconds", 1, "length of each WAV clip in seconds")
	f.IntVar(&o.opts.SampleRate, "sample-rate", 16000, "WAV sample rate in Hz")
	f.StringVar(&o.opts.LabelBy, "label", gen.LabelShape, "class label and directory name: shape, color or color-shape")
	f.StringVar(&o.opts.Background, "background", gen.BackgroundTexture, "image background: texture (stripes and noise) or plain (one grey per image)")
	f.StringVar(&o.opts.Layout, "layout", gen.LayoutGrid, "shape positions: grid (3 x 3) or center")
	f.BoolVar(&o.opts.Bad, "bad", false, "also write the malformed-input set under OUT/bad/")
	f.BoolVar(&o.tar, "tar", false, "also write webdataset tar shards under OUT/shards/")
	f.BoolVar(&o.tarOnly, "tar-only", false, "write only the tar shards (and manifest), no per-sample files")
	f.IntVar(&o.opts.ShardSamples, "shard-samples", 1000, "samples per tar shard")
	return cmd
}

func runGen(ctx context.Context, o *genOpts) error {
	if o.out == "" {
		return cli.Usagef("--out: must not be empty")
	}
	switch {
	case o.tarOnly:
		o.opts.Output = gen.OutputTar
	case o.tar:
		o.opts.Output = gen.OutputBoth
	default:
		o.opts.Output = gen.OutputDir
	}
	o.opts.Workers = o.workers
	if err := o.opts.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	start := time.Now()
	sum, err := gen.Generate(ctx, o.out, o.opts)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "gen: %d samples, %d files, %d bytes (%.1f MiB), %d shards, %d bad files in %s, %.1fs\n",
		sum.Samples, sum.Files, sum.Bytes, float64(sum.Bytes)/(1<<20), sum.Shards, sum.BadFiles, o.out, time.Since(start).Seconds())
	return err
}
