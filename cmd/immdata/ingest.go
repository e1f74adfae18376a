package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/pipeline"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newIngestCmd) }

// ingestOpts are the flags of `immdata ingest`.
type ingestOpts struct {
	sources     []string
	out         string
	src         ingest.SourceOptions
	probe       ingest.ProbeOptions
	part        ingest.PartOptions
	noDedup     bool
	resume      bool
	strict      bool
	statsJSON   string
	memLimitMiB int64
	partition   pipeline.Partition
	g           *cli.Global
	stdout      io.Writer
}

func newIngestCmd(g *cli.Global) *cobra.Command {
	o := &ingestOpts{g: g, src: ingest.DefaultSourceOptions(), part: ingest.DefaultPartOptions()}
	cmd := &cobra.Command{
		Use:   "ingest SOURCE... --out OUT",
		Short: "Ingest directories, tar/webdataset shards, jsonl, text and Parquet into deduplicated Parquet",
		Long: `ingest reads any mix of sources: directory trees (files sharing a key in one directory,
cat.jpg + cat.txt + cat.wav, become one sample; tar shards inside are read too), tar, tar.gz
and webdataset shards, jsonl files, plain text files and Parquet datasets. It probes every
image, audio and text item without decoding it fully, rejects bad items with a specific
reason, drops exact duplicates (content sha256) and writes OUT/parts/part-W-NNNNN.parquet
(Hugging Face Image/Audio columns), OUT/rejects/ and OUT/ingest-stats.json.
Exit code 0 when the run completed, even with rejects (unless --strict). See docs/ingest.md.`,
		Example: "  immdata ingest shapes/ --out ingested --exclude manifest.jsonl\n" +
			"  immdata ingest shards/*.tar captions.jsonl --out ds --num-workers 4 --worker-index 0 --resume",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.sources = args
			o.stdout = cmd.OutOrStdout()
			return runIngest(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "ingested", "output directory")
	f.StringVar(&o.src.LabelFrom, "label-from", o.src.LabelFrom, "label source: auto (label field or .cls member, else parent directory), dir, field or none")
	f.StringVar(&o.src.TextUnit, "text-unit", o.src.TextUnit, "one text sample per file, line or paragraph (text-only files)")
	f.Int64Var(&o.src.MaxFileBytes, "max-file-bytes", o.src.MaxFileBytes, "reject files larger than this without reading them")
	f.StringSliceVar(&o.src.Exclude, "exclude", nil, "glob of paths (or base names) inside directory sources to leave out, repeatable")
	f.StringVar(&o.src.KeyField, "key-field", o.src.KeyField, "jsonl field / Parquet column holding the sample key")
	f.StringVar(&o.src.TextField, "text-field", o.src.TextField, "jsonl field / Parquet column holding the text")
	f.StringVar(&o.src.LabelField, "label-field", o.src.LabelField, "jsonl field / Parquet column holding the label")
	f.StringVar(&o.src.ImageField, "image-field", o.src.ImageField, "jsonl field (relative path or base64) / Parquet column (struct{bytes,path} or binary) holding the image")
	f.StringVar(&o.src.AudioField, "audio-field", o.src.AudioField, "jsonl field / Parquet column holding the audio")
	f.Int64Var(&o.probe.Image.MaxPixels, "max-pixels", 100_000_000, "reject images with more pixels (0 = no limit)")
	f.IntVar(&o.probe.Image.MinSide, "min-side", 0, "reject images with a shorter side")
	f.Float64Var(&o.probe.Audio.MaxSeconds, "max-seconds", 0, "reject audio longer than this (0 = no limit)")
	f.IntVar(&o.probe.MinChars, "min-chars", 0, "reject texts with fewer characters")
	f.BoolVar(&o.noDedup, "no-dedup", false, "keep exact duplicates (same content sha256)")
	f.BoolVar(&o.resume, "resume", false, "continue a killed run: skip inputs already in committed parts")
	f.BoolVar(&o.strict, "strict", false, "exit non-zero when any input was rejected")
	f.Int64Var(&o.part.PartBytes, "part-bytes", o.part.PartBytes, "commit a part file once it holds this many bytes")
	f.Int64Var(&o.part.PartRows, "part-rows", 0, "commit a part file once it holds this many rows (0 = no row limit)")
	f.Int64Var(&o.part.RowGroupBytes, "row-group-bytes", o.part.RowGroupBytes, "Parquet row group size in bytes of data")
	f.BoolVar(&o.part.CompressMedia, "compress-media", false, "zstd-compress the image and audio bytes too (all other columns always are)")
	f.StringVar(&o.statsJSON, "stats-json", "", "also write the run's statistics as JSON to this path")
	f.Int64Var(&o.memLimitMiB, "memory-limit-mib", 256, "soft Go heap limit in MiB (0 = none; GOMEMLIMIT wins when set)")
	o.partition.AddFlags(f)
	return cmd
}

func runIngest(ctx context.Context, o *ingestOpts) error {
	if len(o.sources) == 0 {
		return cli.Usagef("ingest: give at least one source (directory, tar, jsonl, txt or parquet)")
	}
	if o.out == "" {
		return cli.Usagef("--out: must not be empty")
	}
	if err := o.partition.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	if err := o.src.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	if o.part.PartBytes <= 0 || o.part.RowGroupBytes <= 0 || o.part.PartRows < 0 {
		return cli.Usagef("--part-bytes and --row-group-bytes must be > 0 and --part-rows >= 0")
	}
	for _, s := range o.sources {
		if _, err := os.Stat(s); err != nil {
			return cli.Usagef("ingest: source %v", err)
		}
		if _, err := ingest.OpenSource(s, &o.src); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	if o.memLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(o.memLimitMiB << 20)
	}
	log, err := o.g.Logger()
	if err != nil {
		return cli.Usagef("%v", err)
	}
	o.part.Worker = o.partition.WorkerIndex
	cfg := ingest.Config{
		Sources: o.sources, Out: o.out, Source: o.src, Probe: o.probe, Part: o.part,
		Dedup: !o.noDedup, Resume: o.resume,
		Worker: o.partition.WorkerIndex, NumWorkers: o.partition.NumWorkers, Owns: o.partition.Owns,
		Probers: o.g.NumWorkers(), Log: log, ProgressOut: o.g.Stderr, Quiet: o.g.Quiet,
	}
	st, err := ingest.Run(ctx, cfg)
	if errors.Is(err, ingest.ErrOutputExists) {
		return cli.Usagef("%v", err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("ingest: interrupted; committed parts are kept, rerun with --resume to continue: %w", err)
	}
	if err != nil {
		return err
	}
	all, err := ingest.WriteStats(o.out)
	if err != nil {
		return err
	}
	if o.statsJSON != "" {
		if err := ingest.WriteStatsFile(o.statsJSON, all); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(o.stdout, "ingest: worker %d/%d: %d inputs, %d samples, %d duplicates, %d rejected%s, %.1f MiB in, %.1f MiB out, %.1fs -> %s\n",
		o.partition.WorkerIndex, o.partition.NumWorkers, st.Inputs, st.Samples, st.Duplicates, st.Rejected,
		reasons(st.RejectedByReason), float64(st.BytesIn)/(1<<20), float64(st.BytesOut)/(1<<20), st.Seconds, o.out)
	if err != nil {
		return err
	}
	if o.strict && st.Rejected > 0 {
		return fmt.Errorf("ingest: --strict: %d inputs rejected%s (see %s/rejects)", st.Rejected, reasons(st.RejectedByReason), o.out)
	}
	return nil
}

func reasons(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
