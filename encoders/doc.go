// Package encoders turns raw samples (the ingest schema, docs/ingest.md) into encoded
// samples for training (DESIGN.md sections 2 and 4): image latents or tokens, audio mel
// spectrograms or tokens, text tokens and a label id per sample.
//
// An [Encoder] is small: a name and version, the Arrow fields it fills and Encode, which
// turns one [Sample] into the values of those fields. Learned encoders also implement
// [Fitter] (their state is fitted on a seeded sample and saved as hashed artefact files)
// and invertible ones [Decoder]. Encoders are looked up by name in a registry ([Lookup],
// [Names]): "pixels", "patch-pca", "vq", "external" (images), "whisper-80", "whisper-128", "mulaw",
// "audio-vq" (audio), "bpe" (text) and "labels" (the label vocabulary).
//
// [Config] chooses the encoders of a run (YAML or JSON, see docs/encode.md); [Fit] fits the
// learned state into OUT/artefacts and writes OUT/encode.json; [Run] encodes every part of
// an ingest output into OUT/parts with the pipeline engine, resumable and partitionable
// over processes. The encoded schema is declared once, by [Set.Schema].
package encoders
