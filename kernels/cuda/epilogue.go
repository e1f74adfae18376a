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

// GemmBiasAct is kernels.Device.GemmBiasAct: one cuBLASLt matmul with the BIAS,
// GELU_AUX or GELU_AUX_BIAS epilogue where one applies, the separate ops otherwise.
func (d *Device) GemmBiasAct(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, bias kernels.Buffer, act kernels.Act, c, pre kernels.Buffer) {
	if m == 0 || n == 0 {
		return
	}
	epi := 0
	switch {
	case act == kernels.Identity && pre == nil && bias != nil:
		epi = cudadrv.LtBias
	case act == kernels.GELUTanh && pre != nil && bias != nil:
		epi = cudadrv.LtGeluAuxBias
	case act == kernels.GELUTanh && pre != nil:
		epi = cudadrv.LtGeluAux
	}
	switch {
	case epi != 0:
		if d.lt(transA, transB, m, n, k, a, lda, b, ldb, c, epi, bias, pre) {
			return
		}
	case act != kernels.Identity:
		d.lts.add("no cuBLASLt epilogue for " + act.String())
	}
	kernels.GemmBiasActOps[float32](d, transA, transB, m, n, k, a, lda, b, ldb, bias, act, c, pre)
}

// GemmActGrad is kernels.Device.GemmActGrad: one cuBLASLt matmul with the DGELU
// epilogue for GELU-tanh, the separate ops otherwise.
func (d *Device) GemmActGrad(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, act kernels.Act, pre, c kernels.Buffer) {
	if m == 0 || n == 0 {
		return
	}
	switch {
	case act == kernels.GELUTanh:
		if d.lt(transA, transB, m, n, k, a, lda, b, ldb, c, cudadrv.LtDGelu, nil, pre) {
			return
		}
	case act != kernels.Identity:
		d.lts.add("no cuBLASLt epilogue for the gradient of " + act.String())
	}
	kernels.GemmActGradOps[float32](d, transA, transB, m, n, k, a, lda, b, ldb, act, pre, c)
}

// lt runs the row-major c [m, n] = A B with epilogue epi as the column-major
// c^T = B^T A^T (so the bias, one value per column of c, is one per row of c^T, as
// cuBLASLt applies it, and aux [m, n] row-major is c^T's layout with leading dimension
// n). It returns false, having done nothing, when the product must fall back.
func (d *Device) lt(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, c kernels.Buffer, epi int, bias, aux kernels.Buffer) bool {
	reason := d.ltOff()
	switch {
	case reason != "":
	case aux != nil && n%8 != 0:
		reason = "aux leading dimension not a multiple of 8"
	case bias != nil && cudadrv.Align(ptrOf(bias)) < 16:
		// the heuristic does not see the bias address and may pick a kernel that
		// loads it 16 bytes at a time (pytorch/pytorch#194497)
		reason = "bias not 16-byte aligned"
	case aux != nil && cudadrv.Align(ptrOf(aux)) < 16:
		reason = "aux not 16-byte aligned"
	}
	if reason != "" {
		d.lts.add(reason)
		return false
	}
	s := cudadrv.LtShape{TA: transB, TB: transA, M: n, N: m, K: k, LDD: n, Epilogue: epi, ABType: cudadrv.R32F, Compute: cudadrv.Compute32F}
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
	if aux != nil {
		s.AuxLD = n
	}
	s.AlignA, s.AlignB, s.AlignD = cudadrv.Align(pa), cudadrv.Align(pb), cudadrv.Align(ptrOf(c))
	err := d.ctx.LtMatmul(s, pa, pb, ptrOf(c), ptrOf(bias), ptrOf(aux))
	if errors.Is(err, cudadrv.ErrLtUnsupported) {
		d.lts.add(ltNoAlgo)
		return false
	}
	check(err)
	d.lts.add("")
	return true
}
