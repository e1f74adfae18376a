package cuda

import (
	"math"
	"os"
	"strconv"

	"github.com/immkit/immkit/kernels"
)

// Attention runs in one of two ways:
//   - batched GEMMs through cuBLAS and the softmax kernel (kernels.AttentionOps), with
//     the scores and probabilities in memory: the default;
//   - fused (IMMKIT_CUDA_ATTN=flash, head widths 16, 32 and 64): the flash-attention 2
//     kernels of kernels.cu on bf16 tensor cores (mma.sync), which keep the scores on
//     chip and save only each row's log-sum-exp. Operands are rounded to bf16 and
//     accumulated in fp32, as PyTorch's bf16 scaled-dot-product attention. It has run on
//     the CUDA emulator only, not yet on a GPU: opt-in until a GPU run confirms its parity
//     and speed.

// flash reports whether the fused kernels run this head width.
func (d *Device) flash(hd int) bool {
	return os.Getenv("IMMKIT_CUDA_ATTN") == "flash" && (hd == 16 || hd == 32 || hd == 64)
}

// attnShared is the dynamic shared memory of the fused kernels (bf16 tiles of 64 rows
// with rows padded by 8 elements; the backward pass adds the dS tile and two float rows).
func attnShared(hd int, bwd bool) int {
	if !bwd {
		return 2 * 64 * (hd + 8) * 2
	}
	return (3*64*(hd+8)+64*72)*2 + 2*64*4
}

// Attention is kernels.Device.Attention.
func (d *Device) Attention(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	if !d.flash(hd) {
		kernels.AttentionOps[float32](d, o, ws, qkv, batch, l, heads, hd)
		return
	}
	if batch == 0 || l == 0 {
		return
	}
	grid := [3]uint32{uint32((l + 63) / 64), uint32(heads), uint32(batch)}
	d.launch(attnName("attn_fwd_", hd), grid, [3]uint32{128, 1, 1}, attnShared(hd, false),
		p(o), p(ws), p(qkv), i32(l), i32(heads), f32(float32(1/math.Sqrt(float64(hd)))))
}

// AttentionGrad is kernels.Device.AttentionGrad.
func (d *Device) AttentionGrad(dqkv, do, o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	if !d.flash(hd) {
		kernels.AttentionGradOps[float32](d, dqkv, do, ws, qkv, batch, l, heads, hd)
		return
	}
	if batch == 0 || l == 0 {
		return
	}
	n := batch * heads * l
	lse, dvec := d.Slice(ws, 0, n), d.Slice(ws, n, n)
	d.elementwise("attn_bwd_dot", n, p(dvec), p(do), p(o), i32(batch), i32(l), i32(heads), i32(hd))
	d.Fill(dqkv, 0) // dQ is added up over the key tiles
	grid := [3]uint32{uint32((l + 63) / 64), uint32(heads), uint32(batch)}
	d.launch(attnName("attn_bwd_", hd), grid, [3]uint32{128, 1, 1}, attnShared(hd, true),
		p(dqkv), p(qkv), p(do), p(lse), p(dvec), i32(l), i32(heads), f32(float32(1/math.Sqrt(float64(hd)))))
}

// AttentionWorkspace is kernels.Device.AttentionWorkspace: the fused kernels keep each
// row's log-sum-exp and the backward pass's row terms, the GEMM path the scores.
func (d *Device) AttentionWorkspace(batch, l, heads, hd int) int {
	if d.flash(hd) {
		return 2 * batch * heads * l
	}
	return kernels.AttentionOpsWorkspace(batch, l, heads)
}

// attnName is the fused kernel of a head width that flash accepts (launch panics on a
// name kernels.cu lacks).
func attnName(prefix string, hd int) string { return prefix + strconv.Itoa(hd) }
