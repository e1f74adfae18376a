//go:build !amd64

package shards

// float16Vector converts nothing on this architecture (no vector path): it returns 0 and
// Float16ToFloat32 uses its table for every value.
func float16Vector(dst []float32, src []uint16) int { return 0 }
