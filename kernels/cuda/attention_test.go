package cuda

import (
	"fmt"
	"testing"

	"github.com/immkit/immkit/kernels"
)

// TestAttention checks Attention and AttentionGrad against the CPU (kernels.AttentionOps)
// on sequences shorter than, equal to and longer than the fused kernels' 64-row tiles,
// outputs poisoned first: the cuBLAS path in FP32, the fused bf16 kernels
// (IMMKIT_CUDA_ATTN=flash) and the cuBLAS path on a bf16 device that keeps P and dS in
// bf16 (gemm-bf16) with the tolerance of bf16 operands.
func TestAttention(t *testing.T) {
	for _, mode := range []string{"gemm", "flash", "gemm-bf16"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "flash" {
				t.Setenv("IMMKIT_CUDA_ATTN", "flash")
			}
			r := newRig(t)
			tol := fp32Tol
			if mode != "gemm" {
				tol = 2e-2
			}
			if mode == "gemm-bf16" {
				r.g = bf16Device(t, r.g, true, true)
			}
			for _, c := range []struct{ batch, l, heads, hd int }{{3, 40, 2, 16}, {2, 100, 3, 32}, {2, 130, 2, 64}, {1, 64, 1, 64}} {
				D := c.heads * c.hd
				shape := fmt.Sprintf("batch=%d l=%d heads=%d hd=%d", c.batch, c.l, c.heads, c.hd)
				qkv := r.in(c.batch*c.l*3*D, 1.5, 0)
				do := r.in(c.batch*c.l*D, 1, 0)
				o, dqkv := r.out(c.batch*c.l*D), r.out(c.batch*c.l*3*D)
				wg := r.g.Alloc(r.g.AttentionWorkspace(c.batch, c.l, c.heads, c.hd))
				wc := r.c.Alloc(r.c.AttentionWorkspace(c.batch, c.l, c.heads, c.hd))
				if gd, ok := r.g.(*Device); ok && (gd.flash(c.hd) != (mode == "flash") || gd.RoundsOutputs() != (mode == "gemm-bf16")) {
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

// TestAttentionRounded checks Attention and AttentionGrad with qkv, o and do in rounded
// storage (kernels.OperandRounder.RoundsOutputs) on a bf16 device, the cuBLAS path and
// the fused kernels, against the same ops on float32 buffers holding the same
// bf16 values: o is the float32 output rounded to bf16 (exactly on the emulator, within
// one bf16 ulp on a GPU), the saved state is the same, dqkv is the same given o's
// rounded values, and a rounded dqkv is that dqkv rounded. The fused kernels refuse a mix
// of rounded and float32 inputs.
func TestAttentionRounded(t *testing.T) {
	for _, mode := range []string{"gemm", "flash"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "flash" {
				t.Setenv("IMMKIT_CUDA_ATTN", "flash")
			}
			r := newRig(t)
			dev := bf16Device(t, r.g, true, true)
			tol := keptTol(dev)
			if mode == "flash" {
				tol = max(tol, 1e-6) // dQ is added up with atomics: in another order
			}
			for _, c := range []struct{ batch, l, heads, hd int }{{3, 40, 2, 16}, {2, 130, 2, 64}} {
				D := c.heads * c.hd
				n := c.batch * c.l * D
				shape := fmt.Sprintf("batch=%d l=%d heads=%d hd=%d", c.batch, c.l, c.heads, c.hd)
				qh, dh := make([]float32, 3*n), make([]float32, n)
				for i := range qh {
					qh[i] = bf16RNE(float32(1.5 * r.rng.NormFloat64()))
				}
				for i := range dh {
					dh[i] = bf16RNE(float32(r.rng.NormFloat64()))
				}
				qkv, do := r.put(qh), r.put(dh)
				qkvR, doR := dev.AllocRounded(3*n), dev.AllocRounded(n)
				dev.Round(qkvR, qkv.g)
				dev.Round(doR, do.g)
				nw := dev.AttentionWorkspace(c.batch, c.l, c.heads, c.hd)
				w0 := r.in(nw, 1, 0) // the same contents where the ops leave ws alone
				o, oR, ws, wsR := r.out(n), dev.AllocRounded(n), r.put(w0.host), r.put(w0.host)
				dev.Attention(o.g, ws.g, qkv.g, c.batch, c.l, c.heads, c.hd)
				dev.Attention(oR, wsR.g, qkvR, c.batch, c.l, c.heads, c.hd)
				want := make([]float32, n)
				dev.Read(want, o.g)
				bad := roundedWrong(t, dev, "Attention/"+mode+" "+shape+" o", readRounded(r, dev, oR, c.batch*c.l, D), want)
				t.Logf("PARITY\tAttention/%s into rounded storage (vs float32 rounded)\t%s\t%d wrong", mode, shape, bad)
				hw := make([]float32, nw)
				dev.Read(hw, ws.g)
				if d := relDiff(dev, wsR.g, hw); !(d <= tol) {
					t.Errorf("Attention/%s %s: the saved state differs by %.3g with rounded qkv and o", mode, shape, d)
				}
				// the gradient, given the same o values
				for i, v := range want {
					want[i] = bf16RNE(v)
				}
				o2, dqkv, dqkvR := r.put(want), r.out(3*n), r.out(3*n)
				dev.AttentionGrad(dqkv.g, do.g, o2.g, ws.g, qkv.g, c.batch, c.l, c.heads, c.hd)
				dev.AttentionGrad(dqkvR.g, doR, oR, wsR.g, qkvR, c.batch, c.l, c.heads, c.hd)
				hd := make([]float32, 3*n)
				dev.Read(hd, dqkv.g)
				d := relDiff(dev, dqkvR.g, hd)
				t.Logf("PARITY\tAttentionGrad/%s from rounded qkv, o and do (vs float32)\t%s\t%.3g", mode, shape, d)
				if !(d <= tol) {
					t.Errorf("AttentionGrad/%s %s: dqkv differs by %.3g with rounded qkv, o and do (tolerance %g)", mode, shape, d, tol)
				}
				// and into a rounded dqkv: the float32 one rounded (one ulp allowed where
				// dQ's atomics may add in another order)
				dqkvRR := dev.AllocRounded(3 * n)
				dev.AttentionGrad(dqkvRR, doR, oR, wsR.g, qkvR, c.batch, c.l, c.heads, c.hd)
				ulps := 0.0
				if tol != 0 {
					ulps = 1
				}
				bad = roundedWrongUlps(t, ulps, "AttentionGrad/"+mode+" "+shape+" dqkv", readRounded(r, dev, dqkvRR, c.batch*c.l, 3*D), hd)
				t.Logf("PARITY\tAttentionGrad/%s into a rounded dqkv (vs float32 rounded)\t%s\t%d wrong", mode, shape, bad)
			}
			if mode == "flash" {
				n := 2 * 16 * 16
				mustPanic(t, "both rounded storage, or neither", func() {
					dev.Attention(r.out(n).g, r.out(n).g, dev.AllocRounded(3*n), 2, 16, 1, 16)
				})
				mustPanic(t, "all rounded storage, or none", func() {
					dev.AttentionGrad(r.out(3*n).g, r.out(n).g, dev.AllocRounded(n), r.out(n).g, dev.AllocRounded(3*n), 2, 16, 1, 16)
				})
			}
		})
	}
}
