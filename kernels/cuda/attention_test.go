package cuda

import (
	"fmt"
	"testing"

	"github.com/immkit/immkit/kernels"
)

// TestAttention checks Attention and AttentionGrad against the CPU (kernels.AttentionOps)
// on sequences shorter than, equal to and longer than the fused kernels' 64-row tiles,
// outputs poisoned first: the cuBLAS path in FP32, and the fused bf16 kernels
// (IMMKIT_CUDA_ATTN=flash) with the tolerance of bf16 operands.
func TestAttention(t *testing.T) {
	for _, mode := range []string{"gemm", "flash"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "flash" {
				t.Setenv("IMMKIT_CUDA_ATTN", "flash")
			}
			r := newRig(t)
			tol := fp32Tol
			if mode == "flash" {
				tol = 2e-2
			}
			for _, c := range []struct{ batch, l, heads, hd int }{{3, 40, 2, 16}, {2, 100, 3, 32}, {2, 130, 2, 64}, {1, 64, 1, 64}} {
				D := c.heads * c.hd
				shape := fmt.Sprintf("batch=%d l=%d heads=%d hd=%d", c.batch, c.l, c.heads, c.hd)
				qkv := r.in(c.batch*c.l*3*D, 1.5, 0)
				do := r.in(c.batch*c.l*D, 1, 0)
				o, dqkv := r.out(c.batch*c.l*D), r.out(c.batch*c.l*3*D)
				wg := r.g.Alloc(r.g.AttentionWorkspace(c.batch, c.l, c.heads, c.hd))
				wc := r.c.Alloc(r.c.AttentionWorkspace(c.batch, c.l, c.heads, c.hd))
				if gd, ok := r.g.(*Device); ok && gd.flash(c.hd) != (mode == "flash") {
					t.Fatalf("%s: the device does not take the %s path", shape, mode)
				}
				r.g.Attention(o.g, wg, qkv.g, c.batch, c.l, c.heads, c.hd)
				r.c.Attention(o.c, wc, qkv.c, c.batch, c.l, c.heads, c.hd)
				r.check("Attention/"+mode, shape, o, tol)
				r.g.AttentionGrad(dqkv.g, do.g, o.g, wg, qkv.g, c.batch, c.l, c.heads, c.hd)
				r.c.AttentionGrad(dqkv.c, do.c, o.c, wc, qkv.c, c.batch, c.l, c.heads, c.hd)
				// each of dQ, dK, dV against its own largest value
				for part, name := range []string{"dq", "dk", "dv"} {
					sub := pair{g: sliceCols(r.g, dqkv.g, c.batch*c.l, 3*D, part*D, D), c: sliceCols(r.c, dqkv.c, c.batch*c.l, 3*D, part*D, D)}
					r.check("AttentionGrad/"+mode+"/"+name, shape, sub, tol)
				}
				r.same("Attention", qkv)
				r.same("AttentionGrad", do)
			}
		})
	}
}

// sliceCols copies columns [off, off+n) of a rows x ld matrix into a new dense buffer.
func sliceCols(d kernels.Device[float32], b kernels.Buffer, rows, ld, off, n int) kernels.Buffer {
	out := d.Alloc(rows * n)
	for i := 0; i < rows; i++ {
		d.Copy(d.Slice(out, i*n, n), d.Slice(b, i*ld+off, n))
	}
	return out
}
