package image

import (
	"fmt"
	"image"
	"strings"
)

// LatentDecoder turns latents back into pictures: Pixels and *PatchPCA implement it. The
// trainer decodes generated latents with it before writing PNGs and grids.
type LatentDecoder interface {
	Decode(Latent) (*image.NRGBA, error)
}

// OpenLatentDecoder returns the decoder for a latent column whose field metadata says
// encoder=name@version ("pixels@1", "patch-pca@1"), loading the artefact file (the PCA basis)
// where the encoder has one. When wantSHA256 is not empty the artefact's sha256 must equal it
// (the manifest records it).
func OpenLatentDecoder(encoder, artefact, wantSHA256 string) (LatentDecoder, error) {
	name, version, _ := strings.Cut(encoder, "@")
	switch name {
	case Pixels{}.Name():
		if version != "" && version != (Pixels{}).Version() {
			return nil, fmt.Errorf("image: encoder %q: unsupported version", encoder)
		}
		return Pixels{}, nil
	case (*PatchPCA)(nil).Name():
		if version != "" && version != (*PatchPCA)(nil).Version() {
			return nil, fmt.Errorf("image: encoder %q: unsupported version", encoder)
		}
		if artefact == "" {
			return nil, fmt.Errorf("image: encoder %q needs its basis file", encoder)
		}
		m, sum, err := LoadPatchPCA(artefact)
		if err != nil {
			return nil, err
		}
		if wantSHA256 != "" && !strings.EqualFold(sum, wantSHA256) {
			return nil, fmt.Errorf("image: %s: sha256 %s, manifest records %s", artefact, sum, wantSHA256)
		}
		return m, nil
	}
	return nil, fmt.Errorf("image: no latent decoder for encoder %q (want pixels@1 or patch-pca@1)", encoder)
}
