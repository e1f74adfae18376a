package cpu

import "golang.org/x/sys/cpu"

// fastmathAVX2 selects the AVX2 versions of the float32 fast paths (fastmath_amd64.s).
var fastmathAVX2 = cpu.X86.HasAVX2

// The AVX2 kernels (fastmath_amd64.s): each does the first n rounded down to 8 elements,
// stopping before a group of 8 that needs exp32's slow path, and returns how many it did.

//go:noescape
func actAVX2(gelu bool, y, x *float32, n int) int

//go:noescape
func actGradAVX2(gelu bool, dx, dy, x *float32, n int, beta float32) int

//go:noescape
func expSubAVX2(y, x *float32, n int, mx float32) int

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func sumExactAVX2(acc *[4]float64, x *float32, n int, lo, hi float32) bool
