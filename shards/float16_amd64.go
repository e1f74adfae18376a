//go:build amd64

package shards

import "golang.org/x/sys/cpu"

// hasF16C reports whether the CPU converts halves in hardware (VCVTPH2PS, with the AVX
// state saved by the OS).
var hasF16C = cpu.X86.HasF16C && cpu.X86.HasAVX && cpu.X86.HasOSXSAVE

// float16Vector converts the longest prefix of src that is a multiple of 32 values with
// VCVTPH2PS and returns its length; 0 when the CPU lacks F16C. The conversion is exact
// (every half is a float32); signalling NaNs come back quiet.
func float16Vector(dst []float32, src []uint16) int {
	n := len(src) &^ 31
	if !hasF16C || n == 0 {
		return 0
	}
	_ = dst[n-1]
	f16ToF32F16C(&dst[0], &src[0], n)
	return n
}

// f16ToF32F16C converts n halves (n a multiple of 32) at src to float32 at dst:
//
//	for i := range n { dst[i] = float32(half(src[i])) }
//
//go:noescape
func f16ToF32F16C(dst *float32, src *uint16, n int)
