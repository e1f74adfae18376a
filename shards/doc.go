// Package shards turns part files (the Parquet output of ingest or encode) into a training
// dataset and reads it back.
//
// A dataset is a directory:
//
//	DIR/index.json                 the Manifest, written last
//	DIR/train/shard-00000.parquet  size-targeted zstd Parquet shards of the train split
//	DIR/val/shard-00000.parquet    ... and of the val split
//
// Build merges any number of part directories with one shared schema that has a utf8 `key`
// and a binary `sha256` column (32 bytes). It drops exact duplicates (same sha256),
// assigns every key to train or val by a stable hash of the key alone (adding data never
// moves an old sample between splits), orders each split by a seeded hash of the sample's
// sha256 (so the order depends on the set of samples, never on part files or worker
// counts), and writes shards through temporary files that are renamed into place, then the
// manifest. Build is schema-generic: columns are copied through Arrow unchanged.
//
// Verify recomputes every shard's hash, size and row count against the manifest.
//
// Loader streams fixed-shape batches (latents as float32, tokens as padded int32 with
// lengths) for rank r of a world of w ranks. The global sample order of an epoch is a pure
// function of (seed, epoch, manifest) and independent of w, so a training job can change
// its world size between epochs or at a resume point; State and Resume reproduce the exact
// remaining sequence.
//
// ExportWebDataset writes the shards as webdataset tar files.
package shards

// Column names the package relies on.
const (
	ColKey    = "key"    // utf8 sample key
	ColSHA256 = "sha256" // binary (32-byte) content hash, the dedup key
)

// ArtefactsMetadataKey is the Arrow schema metadata key under which part files list the
// encoder artefacts they depend on, as a JSON array of {"name","path","sha256"}. Build
// passes the union of the parts' artefacts into the manifest and the shard schemas.
const ArtefactsMetadataKey = "immkit.artefacts"
