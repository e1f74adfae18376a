package cuda

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/immkit/immkit/internal/cudadrv"
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

// Attention is kernels.Device.Attention. qkv and o may be rounded storage: the GEMM
// path reads qkv as product operands and writes o from its P V product; the fused
// kernels take both rounded or both float32.
func (d *Device) Attention(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	if !d.flash(hd) {
		kernels.AttentionOps[float32](d, o, ws, qkv, batch, l, heads, hd)
		return
	}
	if batch == 0 || l == 0 {
		return
	}
	n := batch * l * heads * hd
	po, h := attnIO("Attention's o", o, n)
	pq, hq := attnIO("Attention's qkv", qkv, 3*n)
	if h != hq {
		panic(fmt.Sprintf("cuda: fused Attention with a %T qkv and a %T o (both rounded storage, or neither)", qkv, o))
	}
	grid := [3]uint32{uint32((l + 63) / 64), uint32(heads), uint32(batch)}
	d.launch(attnName("attn_fwd_", hd)+h, grid, [3]uint32{128, 1, 1}, attnShared(hd, false),
		uint64(po), p(ws), uint64(pq), i32(l), i32(heads), f32(float32(1/math.Sqrt(float64(hd)))))
}

// attnIO is the address of an input or output of the fused attention of at least n
// elements and the kernel suffix for its type: "" for float32, "_h" for rounded storage.
func attnIO(what string, b kernels.Buffer, n int) (cudadrv.Ptr, string) {
	if r, ok := b.(*Rounded); ok {
		if r.N < n {
			panic(fmt.Sprintf("cuda: %s: %d rounded elements for %d", what, r.N, n))
		}
		return r.Ptr, "_h"
	}
	return ptrOf(b), ""
}

// AttentionGrad is kernels.Device.AttentionGrad (qkv and o float32 or rounded storage, as
// Attention took them).
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
	po, ho := attnIO("AttentionGrad's o", o, n*hd)
	pq, hq := attnIO("AttentionGrad's qkv", qkv, 3*n*hd)
	d.elementwise("attn_bwd_dot"+ho, n, p(dvec), p(do), uint64(po), i32(batch), i32(l), i32(heads), i32(hd))
	d.Fill(dqkv, 0) // dQ is added up over the key tiles
	grid := [3]uint32{uint32((l + 63) / 64), uint32(heads), uint32(batch)}
	d.launch(attnName("attn_bwd_", hd)+hq, grid, [3]uint32{128, 1, 1}, attnShared(hd, true),
		p(dqkv), uint64(pq), p(do), p(lse), p(dvec), i32(l), i32(heads), f32(float32(1/math.Sqrt(float64(hd)))))
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
