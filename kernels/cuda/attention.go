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
//   - batched GEMMs through cuBLAS and the softmax kernel (kernels.AttentionGemms), with
//     the scores and probabilities in memory: the default. Only the probabilities P are
//     kept for the backward pass (in ws, as bf16 when the device writes bf16 outputs
//     and rows fit the bf16 softmax kernels: the products read them rounded anyway);
//     the scores S and the gradients dP and dS (bf16 with P) live in scratch that every
//     call shares;
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
	if batch == 0 || l == 0 {
		return
	}
	if !d.flash(hd) {
		d.attentionGemm(o, ws, qkv, batch, l, heads, hd)
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
		r.need(what, n)
		return r.Ptr, "_h"
	}
	return ptrOf(b), ""
}

// AttentionGrad is kernels.Device.AttentionGrad. qkv, o and do may be rounded storage:
// the GEMM path reads qkv and do as product operands (and not o); the fused kernels take
// all three rounded or all float32. dqkv may be rounded storage: the GEMM path's products
// write it in bf16, the fused kernels add dQ up in float32 scratch and round it after.
func (d *Device) AttentionGrad(dqkv, do, o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	if batch == 0 || l == 0 {
		return
	}
	if !d.flash(hd) {
		d.attentionGemmGrad(dqkv, do, ws, qkv, batch, l, heads, hd)
		return
	}
	n := batch * heads * l
	lse, dvec := d.Slice(ws, 0, n), d.Slice(ws, n, n)
	po, ho := attnIO("AttentionGrad's o", o, n*hd)
	pq, hq := attnIO("AttentionGrad's qkv", qkv, 3*n*hd)
	pd, hd2 := attnIO("AttentionGrad's do", do, n*hd)
	if ho != hq || hd2 != hq {
		panic(fmt.Sprintf("cuda: fused AttentionGrad with a %T qkv, %T o and %T do (all rounded storage, or none)", qkv, o, do))
	}
	d.elementwise("attn_bwd_dot"+ho, n, p(dvec), uint64(pd), uint64(po), i32(batch), i32(l), i32(heads), i32(hd))
	// dQ is added up over the key tiles with float32 atomics: into dqkv, or float32
	// scratch rounded afterwards when dqkv is rounded storage
	out := dqkv
	if r, ok := dqkv.(*Rounded); ok {
		r.need("AttentionGrad's dqkv", 3*n*hd)
		out = &Buf{Ptr: d.att.get(d.ctx, 4*3*n*hd), N: 3 * n * hd}
	}
	d.Fill(out, 0)
	grid := [3]uint32{uint32((l + 63) / 64), uint32(heads), uint32(batch)}
	d.launch(attnName("attn_bwd_", hd)+hq, grid, [3]uint32{128, 1, 1}, attnShared(hd, true),
		p(out), uint64(pq), uint64(pd), p(lse), p(dvec), i32(l), i32(heads), f32(float32(1/math.Sqrt(float64(hd)))))
	if out != dqkv {
		d.Round(dqkv, out)
	}
}

// AttentionWorkspace is kernels.Device.AttentionWorkspace: the fused kernels keep each
// row's log-sum-exp and the backward pass's row terms, the GEMM path the probabilities
// (two bf16 to a float32 element when the device writes bf16 outputs).
func (d *Device) AttentionWorkspace(batch, l, heads, hd int) int {
	if d.flash(hd) {
		return 2 * batch * heads * l
	}
	n := batch * heads * l * l
	if d.attnBF16(l) {
		return (n + 1) / 2
	}
	return n
}

// attnBF16 reports whether the GEMM path keeps P and dS in bf16 for sequences of l
// tokens: when the device writes bf16 outputs, for rows the bf16 softmax kernels hold.
func (d *Device) attnBF16(l int) bool { return d.RoundsOutputs() && l <= blockRowMax }

// attnP is the GEMM path's probabilities P (n elements, rows of l) in ws: bf16 storage
// over ws's memory (attnBF16), else ws itself.
func (d *Device) attnP(ws kernels.Buffer, n, l int) kernels.Buffer {
	bf16, need := d.attnBF16(l), n
	if bf16 {
		need = (n + 1) / 2
	}
	if lenOf(ws) < need {
		panic(fmt.Sprintf("cuda: an attention workspace of %d elements for %d probabilities (AttentionWorkspace says %d)", lenOf(ws), n, need))
	}
	if bf16 {
		return &Rounded{Ptr: ptrOf(ws), N: n}
	}
	return d.Slice(ws, 0, n)
}

// attnTmp is scratch for the GEMM path's scores S (forward) or score gradients dP and dS
// (backward): two regions of n elements, the second bf16 when P is.
func (d *Device) attnTmp(n, l int) (s *Buf, ds kernels.Buffer) {
	ptr := d.att.get(d.ctx, 8*n)
	s = &Buf{Ptr: ptr, N: n}
	if d.attnBF16(l) {
		return s, &Rounded{Ptr: ptr + cudadrv.Ptr(4*n), N: n}
	}
	return s, &Buf{Ptr: ptr + cudadrv.Ptr(4*n), N: n}
}

// attentionGemm is kernels.AttentionGemms with P in ws (attnP), S in scratch and, with
// a bf16 P, the softmax_h kernels.
func (d *Device) attentionGemm(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	n := batch * heads * l * l
	s, _ := d.attnTmp(n, l)
	kernels.AttentionGemms[float32](d, o, d.attnP(ws, n, l), s, qkv, batch, l, heads, hd, func(p, s kernels.Buffer, rows, cols int) {
		if r, ok := p.(*Rounded); ok {
			d.rowOp("softmax_h", rows, cols, uint64(r.Ptr), uint64(ptrOf(s)), i32(rows), i32(cols))
			return
		}
		d.Softmax(p, s, rows, cols)
	})
}

// attentionGemmGrad is kernels.AttentionGradGemms from the P that attentionGemm kept,
// with dP and dS in scratch (dS bf16 when P is: only products read it).
func (d *Device) attentionGemmGrad(dqkv, do, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	n := batch * heads * l * l
	dp, ds := d.attnTmp(n, l)
	kernels.AttentionGradGemms[float32](d, dqkv, do, d.attnP(ws, n, l), dp, ds, qkv, batch, l, heads, hd, func(ds, dp, p kernels.Buffer, rows, cols int) {
		if r, ok := p.(*Rounded); ok {
			d.rowOp("softmax_grad_h", rows, cols, uint64(ds.(*Rounded).Ptr), uint64(ptrOf(dp)), uint64(r.Ptr), i32(rows), i32(cols), f32(0))
			return
		}
		d.SoftmaxGrad(ds, dp, p, rows, cols, 0)
	})
}

// attnName is the fused kernel of a head width that flash accepts (launch panics on a
// name kernels.cu lacks).
func attnName(prefix string, hd int) string { return prefix + strconv.Itoa(hd) }
