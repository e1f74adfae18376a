package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/pipeline"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newEncodeCmd) }

// encodeFlags are the config flags shared by encode and fit; a flag that was set overrides
// the config file.
type encodeFlags struct {
	configFile string
	c          encoders.Config
}

func (e *encodeFlags) add(f *pflag.FlagSet) {
	f.StringVar(&e.configFile, "config", "", "encoder config file, YAML or JSON (docs/examples/encode.yaml); flags override it")
	f.Uint64Var(&e.c.Seed, "seed", 0, "seed of the fitting sample and of learned encoders")
	f.IntVar(&e.c.FitSamples, "fit-samples", 1000, "samples the learned encoders are fitted on")
	f.StringVar(&e.c.Image.Encoder, "image-encoder", "pixels", "image encoder: pixels, patch-pca, vq, external (config file: image.external) or none")
	f.IntVar(&e.c.Image.Size, "image-size", 64, "image width and height after resizing")
	f.StringVar(&e.c.Image.Resize, "resize", "center-crop", "resize mode: center-crop, keep-ratio or pad")
	f.BoolVar(&e.c.Image.Half, "half", false, "store image latents as float16")
	f.BoolVar(&e.c.Image.Gray, "image-gray", false, "pixels encoder: one luma channel instead of RGB (grey corpora such as MNIST)")
	f.IntVar(&e.c.Image.Patch, "patch", 4, "patch side of patch-pca and vq")
	f.IntVar(&e.c.Image.Dims, "pca-dims", 16, "PCA components of patch-pca")
	f.IntVar(&e.c.Image.Codes, "image-codes", 256, "codebook size of vq")
	f.StringVar(&e.c.Audio.Encoder, "audio-encoder", "whisper-80", "audio encoder: whisper-80, whisper-128, mulaw, audio-vq or none")
	f.Float64Var(&e.c.Audio.ClipSeconds, "clip-seconds", 1, "fixed audio clip length in seconds (cut or zero-padded)")
	f.StringVar(&e.c.Audio.Crop, "crop", "start", "part of a longer clip kept: start or center")
	f.IntVar(&e.c.Audio.Codes, "audio-codes", 256, "codebook size of audio-vq")
	f.StringVar(&e.c.Text.Encoder, "text-encoder", "bpe", "text encoder: bpe or none")
	f.StringVar(&e.c.Text.Tokenizer, "tokenizer", "", ".tiktoken or tokenizer config .json (empty: train a BPE on the fitting sample)")
	f.IntVar(&e.c.Text.VocabSize, "vocab-size", 512, "vocabulary size of a trained tokenizer")
	f.IntVar(&e.c.Text.MaxLen, "max-len", 32, "text tokens per sample (padded with --pad-id; text_len holds the true length)")
	f.StringVar(&e.c.Text.Overflow, "overflow", "truncate", "longer texts: truncate or reject")
	f.Int32Var(&e.c.Text.PadID, "pad-id", 0, "token id of the padding")
	f.StringVar(&e.c.Label.Encoder, "label-encoder", "labels", "label vocabulary: labels or none")
}

// config reads the config file (if any) and applies the flags that were set.
func (e *encodeFlags) config(f *pflag.FlagSet) (encoders.Config, error) {
	if e.configFile == "" {
		return e.c.Defaults(), nil
	}
	c, err := encoders.LoadConfig(e.configFile)
	if err != nil {
		return c, cli.Usagef("%v", err)
	}
	set := map[string]func(){
		"seed": func() { c.Seed = e.c.Seed }, "fit-samples": func() { c.FitSamples = e.c.FitSamples },
		"image-encoder": func() { c.Image.Encoder = e.c.Image.Encoder }, "image-size": func() { c.Image.Size = e.c.Image.Size },
		"resize": func() { c.Image.Resize = e.c.Image.Resize }, "half": func() { c.Image.Half = e.c.Image.Half },
		"image-gray": func() { c.Image.Gray = e.c.Image.Gray },
		"patch":      func() { c.Image.Patch = e.c.Image.Patch }, "pca-dims": func() { c.Image.Dims = e.c.Image.Dims },
		"image-codes": func() { c.Image.Codes = e.c.Image.Codes }, "audio-encoder": func() { c.Audio.Encoder = e.c.Audio.Encoder },
		"clip-seconds": func() { c.Audio.ClipSeconds = e.c.Audio.ClipSeconds }, "crop": func() { c.Audio.Crop = e.c.Audio.Crop },
		"audio-codes": func() { c.Audio.Codes = e.c.Audio.Codes }, "text-encoder": func() { c.Text.Encoder = e.c.Text.Encoder },
		"tokenizer": func() { c.Text.Tokenizer = e.c.Text.Tokenizer }, "vocab-size": func() { c.Text.VocabSize = e.c.Text.VocabSize },
		"max-len": func() { c.Text.MaxLen = e.c.Text.MaxLen }, "overflow": func() { c.Text.Overflow = e.c.Text.Overflow },
		"pad-id": func() { c.Text.PadID = e.c.Text.PadID }, "label-encoder": func() { c.Label.Encoder = e.c.Label.Encoder },
	}
	f.Visit(func(fl *pflag.Flag) {
		if fn, ok := set[fl.Name]; ok {
			fn()
		}
	})
	return c.Defaults(), nil
}

type encodeOpts struct {
	g         *cli.Global
	in, out   string
	flags     encodeFlags
	fit       bool
	resume    bool
	overwrite bool
	partition pipeline.Partition
	statsJSON string
	fs        *pflag.FlagSet
	stdout    io.Writer
}

func newEncodeCmd(g *cli.Global) *cobra.Command {
	o := &encodeOpts{g: g}
	cmd := &cobra.Command{
		Use:   "encode IN -o OUT",
		Short: "Encode ingested samples into image latents, mel spectrograms, tokens and label ids",
		Long: `encode reads the raw-sample parts of an ingest output (IN/parts/*.parquet) and writes
encoded samples to OUT/parts/<same name>.parquet: key, sha256, label_id, and per modality
image_latent or image_tokens, audio_mel or audio_tokens, text_tokens and text_len
(docs/encode.md). Learned encoders and the label vocabulary are fitted first on a seeded
sample (immdata fit, or here when OUT holds no fitted state and --fit is on); their
artefacts are hashed into OUT/encode.json and every part's schema metadata. A sample whose
media fails to decode becomes a reject in OUT/rejects. --resume continues a killed run;
--num-workers/--worker-index split the input parts over processes.`,
		Example: "  immdata encode /tmp/ingested -o /tmp/enc --config docs/examples/encode.yaml\n" +
			"  immdata encode /tmp/ingested -o /tmp/enc --image-encoder patch-pca --audio-encoder whisper-80 --max-len 24",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.in, o.stdout, o.fs = args[0], cmd.OutOrStdout(), cmd.Flags()
			return o.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "output directory (required)")
	o.flags.add(f)
	f.BoolVar(&o.fit, "fit", true, "fit the learned encoders first when OUT holds no fitted state")
	f.BoolVar(&o.resume, "resume", false, "continue a killed run: skip input parts already committed")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace this worker's previous output (and refit if the config changed)")
	f.StringVar(&o.statsJSON, "stats-json", "", "write the pipeline summary JSON to this file (- for stdout)")
	o.partition.AddFlags(f)
	return cmd
}

func (o *encodeOpts) run(ctx context.Context) error {
	if o.out == "" {
		return cli.Usagef("encode: -o/--out is required")
	}
	if err := o.partition.Validate(); err != nil {
		return cli.Usagef("encode: %v", err)
	}
	c, err := o.flags.config(o.fs)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return cli.Usagef("encode: %v", err)
	}
	log, err := o.g.Logger()
	if err != nil {
		return err
	}
	res, err := encoders.Run(ctx, encoders.RunOptions{
		In: o.in, Out: o.out, Config: c, Fit: o.fit, Resume: o.resume, Overwrite: o.overwrite,
		Partition: o.partition, Workers: o.g.NumWorkers(), Log: log, Progress: o.g.Stderr, Quiet: o.g.Quiet,
	})
	if errors.Is(err, encoders.ErrOutputExists) {
		return cli.Usagef("encode: %v", err)
	}
	if res != nil && res.Summary != nil && o.statsJSON != "" {
		err = errors.Join(err, res.Summary.WriteFile(o.statsJSON))
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("encode: interrupted; committed parts are kept, rerun with --resume to continue: %w", err)
	}
	if err != nil {
		return err
	}
	rows, rej, by := res.Progress.Totals()
	_, err = fmt.Fprintf(o.stdout, "encode: worker %d/%d: %d input parts, %d rows, %d rejected%s, %d artefacts -> %s\n",
		o.partition.WorkerIndex, o.partition.NumWorkers, len(res.Progress.Units), rows, rej, reasons(by), len(res.State.Artefacts), o.out)
	return err
}
