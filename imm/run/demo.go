package run

import (
	"context"

	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
)

// BuildDemoData builds the demo's data under dir: the synthetic shapes corpus of n
// samples (32x32 PNG images with the given gen background and layout, 1 s WAV clips,
// captions; labels colour-shape), ingested, encoded (pixel latents, Whisper log-mel, a
// BPE tokenizer trained on the captions, label ids) and sharded with a 10% val split,
// through the same library calls as `immdata gen | ingest | encode | shard`: dir/corpus,
// dir/ingested, dir/encoded, dir/shards.
func BuildDemoData(ctx context.Context, dir string, n int, seed uint64, background, layout string, workers int) error {
	_, err := mmdatatest.BuildShapes(ctx, dir, mmdatatest.Options{Samples: n, Seed: seed, ImageSize: 32,
		Background: background, Layout: layout, Workers: workers})
	return err
}
