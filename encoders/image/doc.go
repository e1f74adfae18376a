// Package image turns encoded pictures into fixed-size training inputs and back: decode
// (jpeg with EXIF orientation, png incl. 16-bit/palette/alpha, gif first frame, webp, bmp,
// tiff) to opaque RGB, resize in the img2dataset modes (center-crop, keep-ratio, pad), then
// encode as continuous latents or discrete tokens, and decode latents and tokens back to
// pictures (PNG files and sample grids for the trainer).
//
// Main types:
//
//   - Decoder / Decode: bytes to an opaque *image.NRGBA, guarded by Limits, with the fast
//     JPEG path (libjpeg-turbo DCT-domain scaling via internal/turbojpeg) when the library is
//     present and the pure-Go decoder otherwise; Decoded reports which path ran.
//   - Resizer: the resize modes and filters (github.com/disintegration/imaging resamplers).
//   - Latent: a C×H×W float32 tensor. Pixels maps RGB to [-1,1]; PatchPCA projects p×p
//     patches on a learned PCA basis; external latents are read from .npy, safetensors or
//     Parquet fixed-size-list columns.
//   - VQ: a k-means++ codebook of p×p patches; Encode gives one token per patch.
//   - Grid and WritePNG write decoded samples.
//
// Learned state (PCA bases, codebooks, latent statistics) is saved as safetensors files
// (internal/safetensors) whose sha256 is returned by Save so that manifests can record it.
package image
