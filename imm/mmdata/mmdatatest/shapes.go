// Package mmdatatest builds small real shard sets for tests and demos: the synthetic
// shapes corpus (testdata/gen) run through the library's ingest, encode and shard steps,
// exactly as `immdata gen | ingest | encode | shard` would.
package mmdatatest

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/shards"
	"github.com/immkit/immkit/testdata/gen"
)

// Options configure BuildShapes. Zero values take the defaults given per field.
type Options struct {
	Samples     int              // corpus size; default 40
	Seed        uint64           // corpus and encode seed
	ImageSize   int              // generated and encoded image side; default 32
	LabelBy     string           // gen label rule; default gen.LabelColorShape
	Background  string           // gen background; default gen.BackgroundTexture
	Layout      string           // gen layout; default gen.LayoutGrid
	ValFraction float64          // fraction of keys in the val split; default 0.1
	Encode      *encoders.Config // encode config; nil means the defaults with ImageSize
	Workers     int              // goroutines of each step; default 2
}

// Fixture is what BuildShapes wrote under its directory.
type Fixture struct {
	Corpus   string // gen output: <label>/<key>.png, .wav, .txt and manifest.jsonl
	Ingested string // ingest output (parts/*.parquet)
	Encoded  string // encode output (parts/, artefacts/, encode.json): Options.ArtefactsDir
	Shards   string // shard set (index.json, train/, val/)
	Gen      gen.Options
}

// BuildShapes writes a shapes corpus of PNG images, WAV clips and captions under dir and
// turns it into shards: dir/corpus, dir/ingested, dir/encoded, dir/shards.
func BuildShapes(ctx context.Context, dir string, o Options) (*Fixture, error) {
	if o.Samples == 0 {
		o.Samples = 40
	}
	if o.ImageSize == 0 {
		o.ImageSize = 32
	}
	if o.LabelBy == "" {
		o.LabelBy = gen.LabelColorShape
	}
	if o.ValFraction == 0 {
		o.ValFraction = 0.1
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	f := &Fixture{
		Corpus: filepath.Join(dir, "corpus"), Ingested: filepath.Join(dir, "ingested"),
		Encoded: filepath.Join(dir, "encoded"), Shards: filepath.Join(dir, "shards"),
		Gen: gen.Options{Seed: o.Seed, Samples: o.Samples, ImageSize: o.ImageSize, ImageFormat: gen.FormatPNG, LabelBy: o.LabelBy,
			Background: o.Background, Layout: o.Layout, Workers: o.Workers},
	}
	if _, err := gen.Generate(ctx, f.Corpus, f.Gen); err != nil {
		return nil, fmt.Errorf("mmdatatest: generate: %w", err)
	}
	so := ingest.DefaultSourceOptions()
	so.Exclude = []string{gen.ManifestName}
	st, err := ingest.Run(ctx, ingest.Config{Sources: []string{f.Corpus}, Out: f.Ingested, Source: so,
		Part: ingest.DefaultPartOptions(), Dedup: true, NumWorkers: 1, Quiet: true,
		Probe: ingest.ProbeOptions{Image: ingest.ImageLimits{MaxPixels: 1 << 26}}})
	if err != nil {
		return nil, fmt.Errorf("mmdatatest: ingest: %w", err)
	}
	if st.Samples != int64(o.Samples) {
		return nil, fmt.Errorf("mmdatatest: ingest kept %d of %d samples (rejects %v)", st.Samples, o.Samples, st.RejectedByReason)
	}
	var c encoders.Config
	if o.Encode != nil {
		c = *o.Encode
	} else {
		c.Seed = o.Seed
		c.Image.Size = o.ImageSize
	}
	if _, err := encoders.Run(ctx, encoders.RunOptions{In: f.Ingested, Out: f.Encoded, Config: c, Fit: true, Workers: o.Workers, Quiet: true}); err != nil {
		return nil, fmt.Errorf("mmdatatest: encode: %w", err)
	}
	if _, err := shards.Build(ctx, shards.BuildOptions{Inputs: []string{f.Encoded}, Out: f.Shards, Seed: o.Seed, ValFraction: o.ValFraction, Workers: o.Workers}); err != nil {
		return nil, fmt.Errorf("mmdatatest: shard: %w", err)
	}
	return f, nil
}
