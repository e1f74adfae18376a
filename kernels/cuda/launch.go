package cuda

import (
	_ "embed"
	"math"
	"strconv"
)

//go:embed kernels.ptx
var ptx []byte

// kernelParams is every kernel of kernels.cu with its parameter count; the launcher
// passes exactly that many arguments and ptx_test.go checks the PTX agrees.
var kernelParams = rowVariants(map[string]int{
	"add_row_vector":     4,
	"sum_rows":           5,
	"sum_rows_part":      6,
	"sum_rows_h":         5,
	"sum_rows_part_h":    6,
	"sum_rows_finish":    5,
	"row_comb":           7,
	"axpby":              5,
	"mul":                5,
	"modulate":           5,
	"mul_rows":           9,
	"mul_rows_h":         7,
	"to_bf16":            7,
	"round_bf16":         3,
	"modulate_rows":      8,
	"activate":           4,
	"activate_grad":      6,
	"bias_act_h":         7,
	"act_grad_h":         5,
	"layer_norm":         7,
	"layer_norm_grad":    8,
	"softmax":            4,
	"softmax_grad":       6,
	"softmax_h":          4,
	"softmax_grad_h":     6,
	"embed":              5,
	"embed_grad":         5,
	"time_embed":         4,
	"reduce_sum":         4,
	"adamw":              13,
	"ema":                4,
	"adamw_ema":          15,
	"laplace_mmd_rows":   11,
	"laplace_mmd_finish": 4,
	"rand_uniform":       4,
	"rand_normal":        5,
	"attn_fwd_16":        6,
	"attn_fwd_32":        6,
	"attn_fwd_64":        6,
	"attn_fwd_16_h":      6,
	"attn_fwd_32_h":      6,
	"attn_fwd_64_h":      6,
	"attn_bwd_16":        8,
	"attn_bwd_32":        8,
	"attn_bwd_64":        8,
	"attn_bwd_16_h":      8,
	"attn_bwd_32_h":      8,
	"attn_bwd_64_h":      8,
	"attn_bwd_dot":       7,
	"attn_bwd_dot_h":     7,
	"ada_ln":             11,
	"ada_ln_h":           11,
	"ada_ln_grad":        11,
})

// rowOps are the row ops that have register variants (kernels.cu): NAME_wK, one warp
// per row of at most 32*K columns for K in warpKs, and NAME_b16, one block of 256
// threads per row of at most blockRowMax columns.
var rowOps = []string{"layer_norm", "layer_norm_grad", "softmax", "softmax_grad", "softmax_h", "softmax_grad_h", "ada_ln", "ada_ln_h", "ada_ln_grad"}

// fusedRowOps are the row ops with register variants only: no NAME kernel for wider rows.
var fusedRowOps = []string{"softmax_h", "softmax_grad_h", "ada_ln", "ada_ln_h", "ada_ln_grad"}

var warpKs = []int{4, 8, 12, 16, 24, 32}

const blockRowMax = 256 * 16

// rowKernels[name] lists the kernel names of row op name: the warp variants in the
// order of warpKs, then the block one. Built once, so launches do not format names.
var rowKernels = map[string][]string{}

// rowVariants adds the register variants of every row op of m to m.
func rowVariants(m map[string]int) map[string]int {
	for _, op := range rowOps {
		for _, k := range warpKs {
			name := op + "_w" + strconv.Itoa(k)
			m[name] = m[op]
			rowKernels[op] = append(rowKernels[op], name)
		}
		m[op+"_b16"] = m[op]
		rowKernels[op] = append(rowKernels[op], op+"_b16")
	}
	for _, op := range fusedRowOps {
		delete(m, op)
	}
	return m
}

// Argument slots: each kernel parameter is one 8-byte value (see cudadrv.Context.Launch).
func f32(v float32) uint64 { return uint64(math.Float32bits(v)) }
func i32(v int) uint64     { return uint64(uint32(int32(v))) }
func i64(v int) uint64     { return uint64(int64(v)) }
