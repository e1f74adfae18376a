package image

import (
	"fmt"
	"image"
	"math/rand/v2"
)

// Patch vectors: a p×p patch of an RGB picture as a vector of dim 3p² with values in [-1, 1]
// (the Pixels scaling), element (dy*p + dx)*3 + c.

// patchDim is the length of a patch vector.
func patchDim(p int) int { return 3 * p * p }

// checkPatchable verifies the picture tiles exactly into p×p patches.
func checkPatchable(img *image.NRGBA, p int) error {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if p <= 0 || w%p != 0 || h%p != 0 || w == 0 || h == 0 {
		return fmt.Errorf("image: %dx%d picture does not tile into %dx%d patches", w, h, p, p)
	}
	return nil
}

// extractPatch writes patch (px, py) of img into v (len patchDim(p)).
func extractPatch(img *image.NRGBA, p, px, py int, v []float32) {
	for dy := range p {
		row := img.Pix[(py*p+dy)*img.Stride+px*p*4:]
		for dx := range p {
			for c := range 3 {
				v[(dy*p+dx)*3+c] = float32(row[dx*4+c])/127.5 - 1
			}
		}
	}
}

// placePatch writes patch vector v at patch position (px, py) of img, clamping and rounding.
func placePatch(img *image.NRGBA, p, px, py int, v []float32) {
	for dy := range p {
		row := img.Pix[(py*p+dy)*img.Stride+px*p*4:]
		for dx := range p {
			for c := range 3 {
				row[dx*4+c] = toByte(v[(dy*p+dx)*3+c])
			}
			row[dx*4+3] = 255
		}
	}
}

// samplePatches gathers up to maxPatches patch vectors (all of them when maxPatches <= 0 or
// there are fewer), chosen uniformly without replacement with a seeded generator, as an
// N×dim row-major matrix.
func samplePatches(imgs []*image.NRGBA, p, maxPatches int, seed uint64) ([]float32, int, error) {
	type ref struct{ img, px, py int }
	var refs []ref
	for i, img := range imgs {
		if err := checkPatchable(img, p); err != nil {
			return nil, 0, fmt.Errorf("picture %d: %w", i, err)
		}
		for py := range img.Rect.Dy() / p {
			for px := range img.Rect.Dx() / p {
				refs = append(refs, ref{i, px, py})
			}
		}
	}
	if len(refs) == 0 {
		return nil, 0, fmt.Errorf("image: no patches to fit on")
	}
	if maxPatches > 0 && len(refs) > maxPatches {
		rng := rand.New(rand.NewPCG(seed, 0x9a7c4))
		rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
		refs = refs[:maxPatches]
	}
	dim := patchDim(p)
	out := make([]float32, len(refs)*dim)
	for k, r := range refs {
		extractPatch(imgs[r.img], p, r.px, r.py, out[k*dim:(k+1)*dim])
	}
	return out, len(refs), nil
}
