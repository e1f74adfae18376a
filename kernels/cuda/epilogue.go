package cuda

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/immkit/immkit/internal/cudadrv"
	"github.com/immkit/immkit/kernels"
)

// Fused GEMM epilogues through cuBLASLt. A dense layer's forward product takes its bias
// (and GELU, saving the pre-activation for the backward pass) in the epilogue of the
// matmul, and the backward product through a GELU multiplies by its derivative there:
// one pass over the output instead of two or three. What cuBLASLt has no epilogue for
// (SiLU), a shape it has no algorithm for, a bias or auxiliary matrix it cannot address,
// and IMMKIT_CUDA_LT=0 run as the separate ops of kernels.GemmBiasActOps.

// ltNoAlgo is the fallback reason when cuBLASLt's heuristic finds no algorithm.
const ltNoAlgo = "no cuBLASLt algorithm"

// ltStats counts the products that ran fused and those that fell back, with why.
type ltStats struct {
	mu       sync.Mutex
	fused    int
	fallback map[string]int
}

func (s *ltStats) add(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		s.fused++
		return
	}
	if s.fallback == nil {
		s.fallback = map[string]int{}
	}
	s.fallback[reason]++
}

// LtReport says how many GemmBiasAct and GemmActGrad calls ran as one cuBLASLt matmul
// with a fused epilogue and how many fell back to separate ops, and why.
func (d *Device) LtReport() (fused int, fallbacks map[string]int) {
	d.lts.mu.Lock()
	defer d.lts.mu.Unlock()
	fb := map[string]int{}
	for k, v := range d.lts.fallback {
		fb[k] = v
	}
	return d.lts.fused, fb
}

// ltSummary is LtReport in one line.
func (d *Device) ltSummary() string {
	fused, fb := d.LtReport()
	keys := make([]string, 0, len(fb))
	for k := range fb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", fb[k], k))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d fused, no fallbacks", fused)
	}
	return fmt.Sprintf("%d fused; fell back: %s", fused, strings.Join(parts, ", "))
}

// ltOff says why this process does not use cuBLASLt ("" when it does).
func (d *Device) ltOff() string {
	if os.Getenv("IMMKIT_CUDA_LT") == "0" {
		return "IMMKIT_CUDA_LT=0"
	}
	if err := d.ctx.Lt(); err != nil {
		return "no cuBLASLt"
	}
	return ""
}

// ltEpilogue is the cuBLASLt epilogue of GemmBiasAct for act, with a pre-activation
// saved or not and a bias or not (0: none applies).
func ltEpilogue(act kernels.Act, pre, bias bool) int {
	switch {
	case act == kernels.Identity && !pre && bias:
		return cudadrv.LtBias
	case act == kernels.GELUTanh && pre && bias:
		return cudadrv.LtGeluAuxBias
	case act == kernels.GELUTanh && pre:
		return cudadrv.LtGeluAux
	}
	return 0
}

// GemmBiasAct is kernels.Device.GemmBiasAct: one cuBLASLt matmul with the BIAS,
// GELU_AUX or GELU_AUX_BIAS epilogue where one applies, the separate ops otherwise.
//
// Into rounded storage (c, and pre when given, Rounded) the product, bias and activation
// are computed in float32 and rounded to bf16 once, so the next layer's products read c
// as it is and no float32 copy of it exists: the matmul has a bf16 D (with no epilogue
// where none applies), whose bias cuBLASLt takes in bf16, so the bias is rounded first;
// unfused, the float32 product goes into scratch and bias_act_h does the rest.
func (d *Device) GemmBiasAct(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, bias kernels.Buffer, act kernels.Act, c, pre kernels.Buffer) {
	if m == 0 || n == 0 {
		return
	}
	epi := ltEpilogue(act, pre != nil, bias != nil)
	cr, rounded := c.(*Rounded)
	var pr *Rounded
	cp, dt, bp, pp := cudadrv.Ptr(0), cudadrv.R32F, cudadrv.Ptr(0), cudadrv.Ptr(0)
	if rounded {
		if !d.opt.BF16 {
			panic("cuda: GemmBiasAct into rounded storage on a device without bf16 products")
		}
		cr.need("GemmBiasAct's output", m*n)
		pr = roundedOut("GemmBiasAct", pre, m*n)
		if bias != nil {
			bp = d.bfBias.get(d.ctx, max(2*n, 4))
			d.elementwise("round_bf16", n, uint64(bp), p(bias), i64(n))
			d.nbf[1] += int64(n)
		}
		if epi == 0 && act == kernels.Identity && pre == nil {
			epi = cudadrv.LtDefault
		}
		cp, dt, pp = cr.Ptr, cudadrv.R16BF, pr.ptr()
	} else {
		cp, bp, pp = ptrOf(c), ptrOf(bias), ptrOf(pre)
	}
	switch {
	case epi != 0:
		if d.lt(transA, transB, m, n, k, a, lda, b, ldb, cp, dt, epi, bp, pp) {
			return
		}
	case act != kernels.Identity:
		d.lts.add("no cuBLASLt epilogue for " + act.String())
	}
	if !rounded {
		kernels.GemmBiasActOps[float32](d, transA, transB, m, n, k, a, lda, b, ldb, bias, act, c, pre)
		return
	}
	z := d.epZ(m * n)
	d.Gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, z, n)
	d.rowBroadcast("bias_act_h", m, n, i32(int(act)), uint64(cp), uint64(pp), p(z), uint64(bp), i32(m), i32(n))
}

// roundedOut returns the pre-activation of an op writing rounded storage: nil, or a
// Rounded of at least n elements (cuBLASLt's auxiliary matrix has the output's type).
func roundedOut(op string, pre kernels.Buffer, n int) *Rounded {
	if pre == nil {
		return nil
	}
	r, ok := pre.(*Rounded)
	if !ok {
		panic(fmt.Sprintf("cuda: %s into rounded storage with a %T pre-activation (it must be rounded storage too)", op, pre))
	}
	r.need(op+"'s pre-activation", n)
	return r
}

// epZ is float32 scratch for the product of an epilogue written in bf16 that cuBLASLt
// does not fuse.
func (d *Device) epZ(n int) *Buf { return &Buf{Ptr: d.ep.get(d.ctx, max(4*n, 4)), N: n} }

// GemmActGrad is kernels.Device.GemmActGrad: one cuBLASLt matmul with the DGELU
// epilogue for GELU-tanh, the separate ops otherwise. With a rounded pre-activation
// (from GemmBiasAct into rounded storage) c is rounded storage too: the DGELU matmul
// with a bf16 D, else the float32 product into scratch and act_grad_h.
func (d *Device) GemmActGrad(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, act kernels.Act, pre, c kernels.Buffer) {
	if m == 0 || n == 0 {
		return
	}
	cr, rounded := c.(*Rounded)
	if _, rp := pre.(*Rounded); rp != rounded {
		panic(fmt.Sprintf("cuda: GemmActGrad with a %T pre-activation into %T (both rounded storage, or neither)", pre, c))
	}
	cp, dt, pp := cudadrv.Ptr(0), cudadrv.R32F, cudadrv.Ptr(0)
	if rounded {
		cr.need("GemmActGrad's output", m*n)
		cp, dt, pp = cr.Ptr, cudadrv.R16BF, roundedOut("GemmActGrad", pre, m*n).Ptr
	} else {
		cp, pp = ptrOf(c), ptrOf(pre)
	}
	switch {
	case act == kernels.GELUTanh:
		if d.lt(transA, transB, m, n, k, a, lda, b, ldb, cp, dt, cudadrv.LtDGelu, 0, pp) {
			return
		}
	case act != kernels.Identity:
		d.lts.add("no cuBLASLt epilogue for the gradient of " + act.String())
	}
	if !rounded {
		kernels.GemmActGradOps[float32](d, transA, transB, m, n, k, a, lda, b, ldb, act, pre, c)
		return
	}
	z := d.epZ(m * n)
	d.Gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, z, n)
	d.elementwise("act_grad_h", m*n, i32(int(act)), uint64(cp), p(z), uint64(pp), i64(m*n))
}

// lt runs the row-major c [m, n] = A B with epilogue epi as the column-major
// c^T = B^T A^T (so the bias, one value per column of c, is one per row of c^T, as
// cuBLASLt applies it, and aux [m, n] row-major is c^T's layout with leading dimension
// n). c, bias and aux are of type dtype (R32F, or R16BF with bf16 products). It returns
// false, having done nothing, when the product must fall back.
func (d *Device) lt(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, c cudadrv.Ptr, dtype, epi int, bias, aux cudadrv.Ptr) bool {
	reason := d.ltOff()
	switch {
	case reason != "":
	case aux != 0 && n%8 != 0:
		reason = "aux leading dimension not a multiple of 8"
	case bias != 0 && cudadrv.Align(bias) < 16:
		// the heuristic does not see the bias address and may pick a kernel that
		// loads it 16 bytes at a time (pytorch/pytorch#194497)
		reason = "bias not 16-byte aligned"
	case aux != 0 && cudadrv.Align(aux) < 16:
		reason = "aux not 16-byte aligned"
	}
	if reason != "" {
		d.lts.add(reason)
		return false
	}
	s := cudadrv.LtShape{TA: transB, TB: transA, M: n, N: m, K: k, LDD: n, Epilogue: epi, ABType: cudadrv.R32F, DType: dtype, Compute: cudadrv.Compute32F}
	var pa, pb cudadrv.Ptr // cuBLASLt's A is our B and its B our A
	switch {
	case !d.opt.BF16:
		pa, pb, s.LDA, s.LDB = ptrOf(b), ptrOf(a), ldb, lda
		if d.opt.TF32 {
			s.Compute = cudadrv.Compute32FT
		}
	default:
		ra, ca := stored(transA, m, k)
		rb, cb := stored(transB, k, n)
		pb, s.LDB, _ = d.bf16Operand(d.bfA, a, 1, ra, ca, lda, 0)
		pa, s.LDA, _ = d.bf16Operand(d.bfB, b, 1, rb, cb, ldb, 0)
		s.ABType = cudadrv.R16BF
	}
	if aux != 0 {
		s.AuxLD = n
	}
	s.AlignA, s.AlignB, s.AlignD = cudadrv.Align(pa), cudadrv.Align(pb), cudadrv.Align(c)
	err := d.ctx.LtMatmul(s, pa, pb, c, bias, aux)
	if errors.Is(err, cudadrv.ErrLtUnsupported) {
		d.lts.add(ltNoAlgo)
		return false
	}
	check(err)
	d.lts.add("")
	return true
}
