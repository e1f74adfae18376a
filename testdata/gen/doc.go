// Package gen writes the deterministic synthetic "shapes" corpus that immkit's tests,
// benchmarks and demo use.
//
// Every sample has a key (its zero-padded index), a class label (the shape name by default)
// and three files in OUT/<label>/: an image <key>.jpg or <key>.png showing one coloured
// shape on a textured background, a caption <key>.txt such as
// "a small red triangle in the upper left", and a WAV clip <key>.wav whose pitch encodes the
// colour, whose number of notes encodes the shape and whose loudness encodes the size.
// OUT/manifest.jsonl lists every sample's [Spec], one JSON object per line, in index order.
// With [Options.Tar] the same samples are also written as webdataset tar shards.
// With [Options.Bad] a malformed-input set is added under OUT/bad/; [BadFiles] lists each
// file with the reject reason ingest is expected to give.
//
// The generating rules are exported as data ([Colors], [Shapes], [Sizes], [Positions]) and
// [ParseCaption] reads a caption back into [Attributes], so evaluators can recover the
// attributes of generated samples with the same rules.
//
// Output is a pure function of [Options]: each sample draws from its own PCG stream
// seeded with (Seed, index), workers write samples in any order, and everything written in
// sequence (manifest, tar shards) is reordered by index first. The same options give
// byte-identical files on the same GOARCH.
package gen
