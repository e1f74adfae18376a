// Package mmdata turns batches of encoded shards (shards.Loader) into multimodal IMM
// particles, and generated particles back into pictures, sounds and captions.
//
// A [Layout] is built from a shard directory (NewLayout reads index.json, the encoder
// artefacts it names and the statistics of the training split). It fixes one particle
// layout, the concatenation of up to three segments in the order image, audio, text
// (nn.Segment; segment k at Offset(k), Tokens x Features row-major):
//
//   - image: the image_latent column (C x H x W) cut into P x P patches in the patch order
//     of nn.Patchify (token gy*(W/P)+gx, feature c*P*P + py*P + px), each channel
//     normalised to standard deviation sigma_d with the per-channel mean and std of the
//     training split: x = sigma_d (v - mean_c) / std_c.
//   - audio: the audio_mel column (frames x n_mels log-mel) cut into groups of AudioGroup
//     frames (token g holds frames g*G .. g*G+G-1, feature j*n_mels + m is mel m of frame
//     g*G+j), normalised with the mean and std of all bins of the training split
//     (AudioNormGlobal, the default) or each bin's own (AudioNormBin):
//     x = sigma_d (v - mean_m) / std_m. Frames past the end of the clip are padding.
//   - text: TextLen positions of text_tokens embedded through a frozen, seeded Gaussian
//     table (imm.TextTable, RMS sigma_d) with one extra row, the end token. Position
//     text_len holds the end token; later positions are padding (TextPad "end", the
//     default) or also end tokens (TextPad "fill").
//
// Assemble writes a batch as particles plus a 0/1 mask (0 = padding, or a modality the
// sample lacks). Decode inverts every segment: image latents back through the image
// encoder to pixels, mels through Griffin-Lim to a waveform, text by nearest embedding up
// to the first end token, detokenised. WriteSheet writes the sample sheet of a run.
//
// docs/multimodal-data.md describes the mapping, its choices and its tests.
package mmdata
