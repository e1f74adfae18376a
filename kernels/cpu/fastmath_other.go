//go:build !amd64

package cpu

const fastmathAVX2 = false

func actAVX2(gelu bool, y, x *float32, n int) int                          { return 0 }
func actGradAVX2(gelu bool, dx, dy, x *float32, n int, beta float32) int   { return 0 }
func expSubAVX2(y, x *float32, n int, mx float32) int                      { return 0 }
func maxAVX2(x *float32, n int) float32                                    { return 0 }
func sumExactAVX2(acc *[4]float64, x *float32, n int, lo, hi float32) bool { return false }
