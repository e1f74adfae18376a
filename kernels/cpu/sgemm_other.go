//go:build !amd64

package cpu

const hasSgemmAVX2 = false

func sgemm6x16(k int, a, b, c *float32, ldc int, alpha, beta float32) {
	panic("cpu: sgemm6x16 needs amd64")
}
