// Package ingest turns raw multimodal corpora into the raw-sample Parquet dataset that the
// rest of immkit reads: one row per sample key with the original image and audio bytes
// (Hugging Face `datasets` Image/Audio struct columns), probed sizes and durations,
// NFC-normalised text, a label, remaining metadata as JSON and a content sha256.
//
// The main types:
//
//   - [Source] enumerates [Unit]s, the inputs assigned to workers and tracked by resume
//     (one sample group of a directory tree, one tar/webdataset shard, one jsonl, text or
//     Parquet file), and streams each unit's [Candidate]s: the files that share a key.
//   - [Probe] turns a Candidate into a [Sample] or a *[RejectError] by probing headers only:
//     image dimensions (jpeg, png, gif, webp, bmp, tiff) with structural checks that find
//     truncation and bad CRCs without allocating pixels, audio format and duration (wav,
//     flac, mp3), and text validity. Original bytes are kept unchanged.
//   - [PartWriter] writes Samples to OUT/parts/part-W-NNNNN.parquet and rejects to
//     OUT/rejects/, committing both atomically (temp file, fsync, rename) and recording
//     each commit in the worker's [Progress] file so that a rerun with resume skips the
//     units already committed.
//   - [Run] wires sources, probes, exact sha256 dedup and the part writer together and
//     returns the run's [Stats], whose invariant is inputs = samples + duplicates + rejected.
//
// The schema is [RawSchema]; docs/ingest.md documents it, the sample hash and the layout.
package ingest
