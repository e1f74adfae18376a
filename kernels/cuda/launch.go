package cuda

import (
	_ "embed"
	"math"
)

//go:embed kernels.ptx
var ptx []byte

// kernelParams is every kernel of kernels.cu with its parameter count; the launcher
// passes exactly that many arguments and ptx_test.go checks the PTX agrees.
var kernelParams = map[string]int{
	"add_row_vector":     4,
	"sum_rows":           5,
	"sum_rows_part":      5,
	"sum_rows_finish":    5,
	"row_comb":           7,
	"axpby":              5,
	"mul":                5,
	"modulate":           5,
	"activate":           4,
	"activate_grad":      6,
	"layer_norm":         7,
	"layer_norm_grad":    8,
	"softmax":            4,
	"softmax_grad":       6,
	"layer_norm_w":       7,
	"layer_norm_grad_w":  8,
	"softmax_w":          4,
	"softmax_grad_w":     6,
	"embed":              5,
	"embed_grad":         5,
	"time_embed":         4,
	"reduce_sum":         4,
	"adamw":              13,
	"ema":                4,
	"laplace_mmd_rows":   9,
	"laplace_mmd_finish": 4,
	"rand_uniform":       4,
	"rand_normal":        5,
}

// Argument slots: each kernel parameter is one 8-byte value (see cudadrv.Context.Launch).
func f32(v float32) uint64 { return uint64(math.Float32bits(v)) }
func i32(v int) uint64     { return uint64(uint32(int32(v))) }
func i64(v int) uint64     { return uint64(int64(v)) }
