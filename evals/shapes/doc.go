// Package shapes measures the cross-modal consistency of samples generated from the
// synthetic "shapes" corpus (testdata/gen): every corpus sample shows one coloured shape,
// says it in a caption ("a small red triangle in the upper left") and sounds it (the pitch
// encodes the colour, the number of notes the shape, the loudness the size). Because the
// generating rules are known, the attributes of a generated sample can be read back from
// each modality separately and compared.
//
// The detectors work on what a generative model's decoders produce: small images
// (16..64 px, decoded from pixel latents), waveforms reconstructed from log-mel spectrograms
// by Griffin-Lim, and captions decoded token by token. They use only the rules published as
// data by testdata/gen (palette RGB values and pitches, note counts, sizes, grid cells) and
// restate the shape outlines and the rhythm rule of its documentation; none of the
// generator's drawing or synthesis code is called:
//
//   - [FromImage] estimates the background colour, unmixes every pixel as a blend of the
//     background and one palette colour (which tolerates antialiasing, resampling blur and
//     JPEG chroma loss), takes the largest connected blob of one colour, and fits each shape
//     outline (rendered here with area coverage) to the blob's soft mask by least squares
//     over centre, radius and blur. The best fit names the shape, its radius the size and
//     its centre the grid cell.
//   - [FromAudio] correlates the RMS envelope (in dB) with each shape's rhythm (1..5 equal
//     notes over the clip) to name the shape, estimates the pitch of the notes from the
//     peak of a zero-padded power spectrum refined by parabolic interpolation (the palette
//     pitch within 1.5 semitones gives the colour), and reads the size from the notes'
//     level.
//   - [FromCaption] parses words.
//
// Each detector returns an [Attr] whose fields are caption words, or "" where the attribute
// is not recognised. [Agreement] turns a set of [Sample]s into a [Report]: for every pair
// of modalities (and each modality against the conditioning label) and every attribute, the
// rate of samples whose attributes agree, with n and two chance rates (from the attribute
// marginals and uniform); [Report.Markdown], [WriteMarkdown] (several reports side by side,
// e.g. per number of sampling steps) and JSON marshalling render it. [Detect] runs the
// three detectors over a batch of decoded samples in parallel.
//
// The detectors' accuracy on real corpus samples pushed through the same degradations as
// generated ones is measured by this package's tests and recorded in docs/eval.md.
package shapes
