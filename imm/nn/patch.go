package nn

import (
	"fmt"

	"github.com/immkit/immkit/kernels"
)

// Patchify cuts images into non-overlapping P x P patches and puts them back.
//
// An image is C x H x W row-major (channel-first, like one sample of PyTorch's NCHW):
// pixel (c, y, x) of image b is x[b*C*H*W + c*H*W + y*W + x]. Its tokens are the patches in
// row-major patch order; token l = gy*(W/P) + gx of image b is row b*L+l of the token
// matrix [batch*L, C*P*P], and its feature c*P*P + py*P + px is pixel
// (c, gy*P+py, gx*P+px), the layout of PyTorch's DiT patchify. Both directions are
// permutations done with Device.Embed on runs of P pixels, so each is the other's
// gradient.
type Patchify[T kernels.Float] struct {
	C, H, W, P int
	d          kernels.Device[T]
	batch      int
	fwd, inv   []int32 // fwd[token-run] = image-run, inv the inverse
	tok, img   scratch[T]
}

// NewPatchify checks the sizes and returns the layer.
func NewPatchify[T kernels.Float](d kernels.Device[T], c, h, w, p int) (*Patchify[T], error) {
	if c < 1 || p < 1 || h < p || w < p || h%p != 0 || w%p != 0 {
		return nil, fmt.Errorf("nn: image %dx%dx%d cannot be cut into %dx%d patches", c, h, w, p, p)
	}
	return &Patchify[T]{C: c, H: h, W: w, P: p, d: d}, nil
}

// Tokens is L = (H/P)(W/P).
func (pt *Patchify[T]) Tokens() int { return (pt.H / pt.P) * (pt.W / pt.P) }

// Features is C*P*P, the width of a token.
func (pt *Patchify[T]) Features() int { return pt.C * pt.P * pt.P }

func (pt *Patchify[T]) ids(batch int) {
	if pt.batch == batch && pt.fwd != nil {
		return
	}
	C, H, W, P := pt.C, pt.H, pt.W, pt.P
	gw := W / P
	L := pt.Tokens()
	n := batch * C * H * W / P
	pt.fwd, pt.inv, pt.batch = make([]int32, n), make([]int32, n), batch
	for b := 0; b < batch; b++ {
		for l := 0; l < L; l++ {
			gy, gx := l/gw, l%gw
			for c := 0; c < C; c++ {
				for py := 0; py < P; py++ {
					out := ((b*L+l)*C+c)*P + py
					src := (b*C*H*W + c*H*W + (gy*P+py)*W + gx*P) / P
					pt.fwd[out], pt.inv[src] = int32(src), int32(out)
				}
			}
		}
	}
}

// Patch returns the tokens [batch*L, C*P*P] of images x [batch, C*H*W].
func (pt *Patchify[T]) Patch(x kernels.Buffer, batch int) kernels.Buffer {
	pt.ids(batch)
	y := pt.tok.get(pt.d, len(pt.fwd)*pt.P)
	pt.d.Embed(y, x, pt.fwd, pt.P)
	return y
}

// Unpatch returns the images [batch, C*H*W] of tokens [batch*L, C*P*P]; it is also the
// gradient of Patch.
func (pt *Patchify[T]) Unpatch(tok kernels.Buffer, batch int) kernels.Buffer {
	pt.ids(batch)
	y := pt.img.get(pt.d, len(pt.inv)*pt.P)
	pt.d.Embed(y, tok, pt.inv, pt.P)
	return y
}
