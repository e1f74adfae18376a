package cpu

import "golang.org/x/sys/cpu"

// hasSgemmAVX2 selects the packed AVX2/FMA float32 GEMM (sgemm.go).
var hasSgemmAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func sgemm6x16(k int, a, b, c *float32, ldc int, alpha, beta float32)
