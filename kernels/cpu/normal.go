package cpu

import "math"

// The Box-Muller transform of RandNormal without calls into package math, where
// math.Log (a call into assembly that first checks for special cases) and math.Sin and
// math.Cos (a range reduction each, then branches on the octant, which a random angle
// mispredicts) took most of the op's time. These are the same algorithms (fdlibm's log,
// Cephes' sin and cos, with their coefficients), specialised to the arguments Box-Muller
// gives them and free of branches. They work on two lanes, the two pairs of a Philox
// block, so that two independent dependency chains interleave. randnormal_test.go bounds
// them against package math.

// boxMuller maps the four words of a Philox block to four N(0,1) draws: each pair of
// words (a, b), (w0, w1) then (w2, w3), gives sqrt(-2 ln u) cos(2 pi v), sqrt(-2 ln u)
// sin(2 pi v) with u = (a+1)/2^32 in (0,1] and v = b/2^32 in [0,1). The angle is rounded
// to float64 as 2*math.Pi*v before it is reduced, as in the formula's direct evaluation
// (and the CUDA kernel's).
func boxMuller(w0, w1, w2, w3 uint32) (float64, float64, float64, float64) {
	const s = 1.0 / 4294967296.0
	l := logUnit(lanes{(float64(w0) + 1) * s, (float64(w2) + 1) * s})
	sin, cos := sincos(lanes{float64(w1) * (2 * math.Pi * s), float64(w3) * (2 * math.Pi * s)})
	r0, r1 := math.Sqrt(-2*l.a), math.Sqrt(-2*l.b)
	return r0 * cos.a, r0 * sin.a, r1 * cos.b, r1 * sin.b
}

// lanes is a pair of float64 that the compiler keeps in two registers; its operations
// are written lane a first, then lane b.
type lanes struct{ a, b float64 }

func (x lanes) add(y lanes) lanes     { return lanes{x.a + y.a, x.b + y.b} }
func (x lanes) sub(y lanes) lanes     { return lanes{x.a - y.a, x.b - y.b} }
func (x lanes) mul(y lanes) lanes     { return lanes{x.a * y.a, x.b * y.b} }
func (x lanes) div(y lanes) lanes     { return lanes{x.a / y.a, x.b / y.b} }
func (x lanes) scale(c float64) lanes { return lanes{x.a * c, x.b * c} }
func (x lanes) plus(c float64) lanes  { return lanes{x.a + c, x.b + c} }

// logUnit is ln x for x in [2^-1022, 1]: fdlibm's e_log.c (the algorithm and
// coefficients of math.Log) without its special cases (NaN, infinities, zero, negative and
// subnormal x), the reduction to sqrt(2)/2 <= 1+f < sqrt(2) done on the bits as in musl.
func logUnit(x lanes) lanes {
	const (
		ln2Hi = 6.93147180369123816490e-01 // 3fe62e42 fee00000
		ln2Lo = 1.90821492927058770002e-10 // 3dea39ef 35793c76
		l1    = 6.666666666666735130e-01   // 3FE55555 55555593
		l2    = 3.999999999940941908e-01   // 3FD99999 9997FA04
		l3    = 2.857142874366239149e-01   // 3FD24924 94229359
		l4    = 2.222219843214978396e-01   // 3FCC71C5 1D8E78AF
		l5    = 1.818357216161805012e-01   // 3FC74664 96CB03DE
		l6    = 1.531383769920937332e-01   // 3FC39A09 D078C69F
		l7    = 1.479819860511658591e-01   // 3FC2F112 DF3E5244
		one   = 0x3ff0000000000000         // the bits of 1
		rt    = 0x3fe6a09e667f3bcd         // the bits of sqrt(2)/2
		mant  = 1<<52 - 1
	)
	ia, ib := math.Float64bits(x.a)+(one-rt), math.Float64bits(x.b)+(one-rt)
	k := lanes{float64(int64(ia>>52) - 0x3ff), float64(int64(ib>>52) - 0x3ff)}
	f := lanes{math.Float64frombits(ia&mant+rt) - 1, math.Float64frombits(ib&mant+rt) - 1}
	s := f.div(f.plus(2))
	s2 := s.mul(s)
	s4 := s2.mul(s2)
	t1 := s2.mul(s4.scale(l7).plus(l5).mul(s4).plus(l3).mul(s4).plus(l1))
	t2 := s4.mul(s4.scale(l6).plus(l4).mul(s4).plus(l2))
	hfsq := f.mul(f).scale(0.5)
	// k ln2Hi - ((hfsq - (s (hfsq + t1 + t2) + k ln2Lo)) - f)
	return k.scale(ln2Hi).sub(hfsq.sub(s.mul(hfsq.add(t1).add(t2)).add(k.scale(ln2Lo))).sub(f))
}

// Quadrant signs: sin(z + q pi/2) = sinS[q] sin z + sinC[q] cos z, and likewise cos.
var (
	sinS = [4]float64{1, 0, -1, 0}
	sinC = [4]float64{0, 1, 0, -1}
	cosS = [4]float64{0, -1, 0, 1}
	cosC = [4]float64{1, 0, -1, 0}
)

// sincos is sin x, cos x for x in [0, 2 pi]: Cephes' sin and cos (the coefficients of
// math.Sincos) after the same reduction z = x - q pi/2 with pi/2 in three parts (exact
// products, so |z| <= pi/4 keeps its relative accuracy near the zeros), then the quadrant
// q applied by multiplying with 0 and +-1 (exact) instead of branching.
func sincos(x lanes) (sin, cos lanes) {
	const (
		pi2A = 2 * 7.85398125648498535156e-1  // 0x3ff921fb40000000: pi/2 in three parts,
		pi2B = 2 * 3.77489470793079817668e-8  // 0x3e74442d00000000: math's PI4A..PI4C
		pi2C = 2 * 2.69515142907905952645e-15 // 0x3cf8469898cc5170: times 2
		s0   = 1.58962301576546568060e-10     // 0x3de5d8fd1fd19ccd
		s1   = -2.50507477628578072866e-8     // 0xbe5ae5e5a9291f5d
		s2   = 2.75573136213857245213e-6      // 0x3ec71de3567d48a1
		s3   = -1.98412698295895385996e-4     // 0xbf2a01a019bfdf03
		s4   = 8.33333333332211858878e-3      // 0x3f8111111110f7d0
		s5   = -1.66666666666666307295e-1     // 0xbfc5555555555548
		c0   = -1.13585365213876817300e-11    // 0xbda8fa49a0861a9b
		c1   = 2.08757008419747316778e-9      // 0x3e21ee9d7b4e3f05
		c2   = -2.75573141792967388112e-7     // 0xbe927e4f7eac4bc6
		c3   = 2.48015872888517045348e-5      // 0x3efa01a019c844f5
		c4   = -1.38888888888730564116e-3     // 0xbf56c16c16c14f91
		c5   = 4.16666666666665929218e-2      // 0x3fa555555555554b
	)
	qa, qb := int64(x.a*(2/math.Pi)+0.5), int64(x.b*(2/math.Pi)+0.5)
	q := lanes{float64(qa), float64(qb)}
	z := x.sub(q.scale(pi2A)).sub(q.scale(pi2B)).sub(q.scale(pi2C))
	zz := z.mul(z)
	cp := zz.scale(c0).plus(c1).mul(zz).plus(c2).mul(zz).plus(c3).mul(zz).plus(c4).mul(zz).plus(c5)
	c := lanes{1, 1}.sub(zz.scale(0.5)).add(zz.mul(zz).mul(cp))
	sp := zz.scale(s0).plus(s1).mul(zz).plus(s2).mul(zz).plus(s3).mul(zz).plus(s4).mul(zz).plus(s5)
	s := z.add(z.mul(zz).mul(sp))
	qa, qb = qa&3, qb&3
	sin = lanes{sinS[qa]*s.a + sinC[qa]*c.a, sinS[qb]*s.b + sinC[qb]*c.b}
	cos = lanes{cosS[qa]*s.a + cosC[qa]*c.a, cosS[qb]*s.b + cosC[qb]*c.b}
	return sin, cos
}
