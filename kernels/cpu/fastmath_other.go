//go:build !amd64

package cpu

const fastmathAVX2 = false

func geluAVX2(y, x *float32, n int) int                        { return 0 }
func siluAVX2(y, x *float32, n int) int                        { return 0 }
func geluGradAVX2(dx, dy, x *float32, n int, beta float32) int { return 0 }
func siluGradAVX2(dx, dy, x *float32, n int, beta float32) int { return 0 }
func expSubAVX2(y, x *float32, n int, mx float32) int          { return 0 }
