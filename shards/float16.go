package shards

import "math"

// f16table maps every IEEE 754 half-precision bit pattern to its float32 value.
var f16table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = halfToFloat32(uint16(h))
	}
	return &t
}()

// halfToFloat32 converts one half-precision value exactly (every half is a float32).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0: // zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: normalise.
	e := uint32(113)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}

// Float16ToFloat32 converts half-precision bit patterns to float32:
//
//	for i := range src { dst[i] = float32(half(src[i])) }
//
// len(dst) must be at least len(src). On amd64 with F16C the bulk goes through VCVTPH2PS
// (float16_amd64.s), the rest through a 64 Ki-entry table; both are exact, except that a
// signalling NaN may come back quiet.
func Float16ToFloat32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	n := float16Vector(dst, src)
	float16Table(dst[n:], src[n:])
}

// float16Table is the table conversion, for every value of src.
func float16Table(dst []float32, src []uint16) {
	t := f16table
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = t[h]
	}
}
